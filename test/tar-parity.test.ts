/**
 * Differential test: Carrier's tar reader against podman's (Go's archive/tar + containers/storage pkg/archive) over
 * public tar corpora installed from Debian (see .ci/run):
 *   golang-1.19-src                      /usr/share/go-1.19/src/archive/tar/testdata
 *   libpython3.11-testsuite              /usr/lib/python3.11/test/*.tar*
 *   golang-github-containers-storage-dev .../containers/storage/pkg/archive/testdata
 *   golang-github-docker-docker-dev      .../docker/docker/pkg/{archive,tarsum}/testdata
 *
 * For every tar: podman loads a one-layer docker-archive of it (built here) into a private store (its own --root,
 * --runroot, --tmpdir), and Carrier applies the same tar. Either both refuse, or Carrier's layer directory equals
 * podman's layer directory in names, types, sizes, contents, modes, owners, link targets, device numbers, mtimes,
 * xattrs and hard-link groups. podman's side is the layer's overlay `diff` directory (image inspect's UpperDir): what
 * `podman image mount` shows for a one-layer image, with whiteout devices and opaque xattrs still visible, so those
 * are compared too. Every layer Carrier accepts rebuilds byte for byte through its tar-split (assembleLayer), as root
 * and rootless. The few tars where Carrier deliberately refuses what podman accepts are listed in REFUSED_ON_PURPOSE
 * with the reason; the test checks that they still diverge exactly that way. Borderline headers (issue 16) are built
 * in code and go through the same comparison.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import crypto from 'node:crypto';
import { applyLayer, type AppliedLayer } from '../src/index.js';
import { openImageArchive } from '../src/load/index.js';
import { walkTree, compareTrees, ALL_FIELDS, type Tree } from './support/tree.js';
import { expectRoundTrip } from './support/layer.js';
import { Podman, removeWorkDir, requireTools } from './support/images.js';
import { run } from './support/fixtures.js';
import * as H from './support/hostile.js';

const CORPORA: { pkg: string; dirs: string[]; recursive: boolean }[] = [
  { pkg: 'golang-1.19-src', dirs: globDirs('/usr/share', /^go-1\.\d+$/, 'src/archive/tar/testdata'), recursive: false },
  { pkg: 'libpython3.11-testsuite', dirs: globDirs('/usr/lib', /^python3\.\d+$/, 'test'), recursive: false },
  {
    pkg: 'golang-github-containers-storage-dev',
    dirs: ['/usr/share/gocode/src/github.com/containers/storage/pkg/archive/testdata'],
    recursive: true,
  },
  {
    pkg: 'golang-github-docker-docker-dev',
    dirs: ['/usr/share/gocode/src/github.com/docker/docker/pkg/archive/testdata', '/usr/share/gocode/src/github.com/docker/docker/pkg/tarsum/testdata'],
    recursive: true,
  },
];

/**
 * Tars podman accepts and Carrier refuses on purpose (a corpus file by its last path components, or a borderline
 * case by its name), with the reason. The test checks they still diverge exactly so; anything else must match.
 */
const REFUSED_ON_PURPOSE: Record<string, string> = {
  'testdata/pax-nil-sparse-data.tar':
    'GNU PAX sparse file: extracting it expands the holes, and the tar-split can then no longer rebuild the layer byte for byte',
  'testdata/pax-nil-sparse-hole.tar': 'GNU PAX sparse file (as above)',
  'relative name climbing above the root (a/../../x)':
    'a relative name that climbs above the root is refused as hostile; podman only keeps it inside because it extracts in a chroot',
  'a whiteout, then a file of the same name':
    'a name given twice in one layer is refused (podman refuses a file given twice too); its whiteout-then-file order is kept by podman only',
  'PAX negative uid':
    'a negative id is not an id: podman hands it to chown, where -1 means "leave the owner" and -2 becomes 4294967294',
};

/** The reason a label (a corpus path, or a borderline case's name) is refused on purpose, if it is. */
function refusedOnPurpose(label: string): string | undefined {
  const key = Object.keys(REFUSED_ON_PURPOSE).find((k) => label === k || label.endsWith('/' + k));
  return key === undefined ? undefined : REFUSED_ON_PURPOSE[key];
}

function globDirs(base: string, name: RegExp, sub: string): string[] {
  if (!fs.existsSync(base)) return [];
  return fs
    .readdirSync(base)
    .filter((d) => name.test(d))
    .map((d) => path.join(base, d, sub))
    .filter((d) => fs.existsSync(d));
}

function tarsIn(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory() && recursive) out.push(...tarsIn(p, true));
    else if (ent.isFile() && /\.tar(\.bz2|\.xz)?$/.test(ent.name)) out.push(p);
  }
  return out.sort();
}

const TARS = CORPORA.flatMap((c) => c.dirs.flatMap((d) => tarsIn(d, c.recursive)));

/**
 * The two sparse giants of Go's testdata take minutes in podman (it writes their ~60 GB of holes); their formats are
 * compared through the small sparse tars, and here only Carrier's refusal is checked.
 */
const TOO_SLOW = new Set(['gnu-sparse-big.tar', 'pax-sparse-big.tar']);

const gnu = { magic: H.gnuMagic };
const payload = Buffer.from('payload\n');
/** Borderline headers (issue 16), built here, run through the same comparison as the corpora. */
const SYNTHETIC: Record<string, Buffer> = {
  'unknown type A': H.tar(H.file('ok', 'x'), H.entry({ name: 'acl', typeflag: 'A' }, payload)),
  'unknown type D (GNU dump dir)': H.tar(H.entry({ name: 'dumpdir/', typeflag: 'D', mode: 0o755, ...gnu }, Buffer.from('Yfoo\0\0'))),
  'unknown type N': H.tar(H.entry({ name: 'old-long-name', typeflag: 'N', ...gnu }, payload)),
  'unknown type X (Solaris extended header)': H.tar(H.entry({ name: 'X', typeflag: 'X' }, Buffer.from('10 uid=0\n')), H.file('after', 'x')),
  'unknown type Z': H.tar(H.entry({ name: 'z', typeflag: 'Z' }, payload)),
  'contiguous file (type 7)': H.tar(H.entry({ name: 'contig', typeflag: '7' }, payload)),
  'ustar prefix with version "  "': H.tar(
    H.entry({ name: 'file', prefix: 'some/dir', magic: Buffer.from('ustar\0  ', 'latin1') }, payload),
  ),
  'ustar prefix with version "\\0\\0"': H.tar(
    H.entry({ name: 'file', prefix: 'other/dir', magic: Buffer.from('ustar\0\0\0', 'latin1') }, payload),
  ),
  'GNU header with a prefix-like field that parses as times': H.tar(H.entry({ name: 'plain', ...gnu, prefix: '0000000' }, payload)),
  'v7 header (no magic) with a prefix field': H.tar(H.entry({ name: 'v7', magic: Buffer.alloc(8), prefix: 'ignored' }, payload)),
  'PAX numbers with leading zeros': H.tar(
    H.pax([
      ['size', '000000000000000000000008'],
      ['uid', '0000000000000000000001000'],
      ['gid', '+0000000000000000000001000'],
      ['mtime', '00000000000000000001700000000.5'],
    ]),
    H.entry({ name: 'zeros', size: 8 }, payload),
  ),
  'PAX mtime with a trailing dot': H.tar(H.pax([['mtime', '1700000000.']]), H.entry({ name: 'dot' }, payload)),
  'PAX size that overflows int64': H.tar(H.pax([['size', '99999999999999999999']]), H.entry({ name: 'big' }, payload)),
  'relative name climbing above the root (a/../../x)':
    'a relative name that climbs above the root is refused as hostile; podman only keeps it inside because it extracts in a chroot',
  'a whiteout, then a file of the same name':
    'a name given twice in one layer is refused (podman refuses a file given twice too); its whiteout-then-file order is kept by podman only',
  'PAX negative uid': H.tar(H.pax([['uid', '-1']]), H.entry({ name: 'neg' }, payload)),
  'PAX bad atime': H.tar(H.pax([['atime', 'yesterday']]), H.entry({ name: 'atime' }, payload)),
  'PAX comment with a NUL byte': H.tar(H.pax([['comment', Buffer.from('a\0b')]]), H.entry({ name: 'comment' }, payload)),
  'PAX empty path keeps the ustar name': H.tar(H.dir('bin'), H.pax([['path', '']]), H.entry({ name: 'bin/evil' }, payload)),
  'PAX empty linkpath and uid keep the ustar fields': H.tar(
    H.file('target', 'x'),
    H.pax([['linkpath', ''], ['uid', ''], ['mtime', '']]),
    H.entry({ name: 'link', typeflag: '2', linkname: 'target', uid: 7, mtime: 1_600_000_000 }),
  ),
  'PAX empty xattr value is ignored': H.tar(H.pax([['SCHILY.xattr.user.empty', ''], ['SCHILY.xattr.user.full', 'v']]), H.entry({ name: 'x' }, payload)),
  'GNU long name and PAX path together': H.tar(H.pax([['path', 'from-pax']]), H.gnuLong('L', 'from-gnu'), H.entry({ name: 'from-header' }, payload)),
  'empty GNU long name keeps the header name': H.tar(H.gnuLong('L', ''), H.entry({ name: 'kept' }, payload)),
  'PAX header followed by nothing': Buffer.concat([H.pax([['path', 'ghost']]), H.END]),
  'GNU long name followed by the end of the stream': H.gnuLong('L', 'ghost'),
  'uid 4294967295': H.tar(H.entry({ name: 'nobody-ish', uid: 4294967295, gid: 4294967295 }, payload)),
  'uid 4294967294': H.tar(H.entry({ name: 'max-id', uid: 4294967294, gid: 4294967294 }, payload)),
  'regular file named with a trailing slash, type NUL': H.tar(H.entry({ name: 'olddir/', typeflag: 0, mode: 0o755 }), H.pax([['path', 'paxdir/']]), H.entry({ name: 'x', typeflag: 0 })),
  'octal field with garbage after a NUL': H.tar(H.entry({ name: 'garbage', mode: Buffer.from('0000644\0', 'latin1'), uid: Buffer.from(' 12\0 34\0', 'latin1') }, payload)),
  'invalid devmajor on a regular file': H.tar(H.entry({ name: 'devmajor', devmajor: Buffer.from('zz\0', 'latin1') }, payload)),
  'hardlink header with its own mode, owner and mtime': H.tar(
    H.entry({ name: 'target', mode: 0o600, uid: 1, gid: 1, mtime: 1_500_000_000 }, payload),
    H.entry({ name: 'link', typeflag: '1', linkname: 'target', mode: 0o755, uid: 2, gid: 2, mtime: 1_600_000_000 }),
  ),
  'mtime before 1970': H.tar(
    H.entry({ name: 'old-file', mtime: -86400 }, payload),
    H.entry({ name: 'old-dir/', typeflag: '5', mode: 0o755, mtime: -86400 }),
    H.entry({ name: 'old-link', typeflag: '2', linkname: 'old-file', mtime: -86400 }),
  ),
  'PAX mtime before 1970 with a fraction': H.tar(H.pax([['mtime', '-1.25']]), H.entry({ name: 'frac' }, payload)),
  'mtime past 2262': H.tar(H.pax([['mtime', '9999999999999']]), H.entry({ name: 'future' }, payload)),
  'global header named like a nested path': H.tar(H.pax([['comment', 'x']], { typeflag: 'g', name: 'deep/er/pax_global_header' }), H.file('f', 'x')),
  'regular file named ./': H.tar(H.file('a', 'x'), H.entry({ name: './' , typeflag: '0'}, payload), H.file('b', 'y')),
  'empty regular file named .': H.tar(H.file('a', 'x'), H.entry({ name: '.', typeflag: '0' }), H.file('b', 'y')),
  'symlink named .': H.tar(H.file('a', 'x'), H.entry({ name: '.', typeflag: '2', linkname: 'a' }), H.file('b', 'y')),
  'rooted name climbing above the root (/../x)': H.tar(H.entry({ name: '/../../rooted' }, payload)),
  'relative name climbing above the root (a/../../x)': H.tar(H.entry({ name: 'a/../../climb' }, payload)),
  'hardlink target climbing from a rooted path (/../x)': H.tar(H.file('t', 'x'), H.entry({ name: 'l', typeflag: '1', linkname: '/../t' })),
  'absolute symlink and hardlink targets': H.tar(H.file('t', 'x'), H.symlink('s', '/t'), H.entry({ name: 'l', typeflag: '1', linkname: '/t' })),
  'the same file twice': H.tar(H.file('twice', 'first'), H.file('twice', 'second')),
  'a file, then a directory of the same name': H.tar(H.file('x', 'file'), H.dir('x')),
  'user xattr on a symlink': H.tar(H.file('t', 'x'), H.symlink('s', 't', { paxExtra: [['SCHILY.xattr.user.k', 'v']] })),
  'trusted xattr on a symlink': H.tar(H.file('t', 'x'), H.symlink('s', 't', { paxExtra: [['SCHILY.xattr.trusted.k', 'v']] })),
  'user xattr on a fifo': H.tar(H.entry({ name: 'p', typeflag: '6' }), H.pax([['SCHILY.xattr.user.k', 'v']]), H.entry({ name: 'q', typeflag: '6' })),
  'user xattr on a directory and a file': H.tar(H.dir('d', { paxExtra: [['SCHILY.xattr.user.d', 'dv']] }), H.file('d/f', 'x', { paxExtra: [['SCHILY.xattr.user.f', 'fv']] })),
  'setuid file owned by a user': H.tar(H.entry({ name: 'suid', mode: 0o4755, uid: 1000, gid: 1000 }, payload)),
  'whiteouts and an opaque directory': H.tar(
    H.dir('d'),
    H.entry({ name: 'd/.wh..wh..opq', uid: 3, gid: 3 }),
    H.entry({ name: 'd/.wh.gone', uid: 5, gid: 6, mode: 0o600 }),
    H.entry({ name: '.wh.top' }, Buffer.from('content of a whiteout')),
    H.file('d/kept', 'x'),
  ),
  'aufs metadata at the top and nested': H.tar(
    H.dir('.wh..wh.plnk'),
    H.entry({ name: '.wh..wh.plnk/1.2' }, payload),
    H.dir('n'),
    H.entry({ name: 'n/.wh..wh.meta' }, payload),
  ),
  'a whiteout, then a file of the same name': H.tar(H.entry({ name: '.wh.x' }), H.file('x', 'new')),
  'a whiteout under a whited-out name': H.tar(H.entry({ name: '.wh.foo' }), H.entry({ name: 'foo/.wh.bar' }), H.file('after', 'x')),
  'hardlink to a later entry': H.tar(H.entry({ name: 'early', typeflag: '1', linkname: 'late' }), H.file('late', 'x')),
  'hardlink to a symlink': H.tar(H.file('t', 'x'), H.symlink('s', 't'), H.entry({ name: 'h', typeflag: '1', linkname: 's', mode: 0o700, mtime: 1_000 })),
  'file type bits in the mode field': H.tar(H.entry({ name: 'typed', mode: 0o100755 }, payload), H.entry({ name: 'typed-dir', typeflag: '5', mode: 0o40750 })),
  'setgid directory and sticky directory': H.tar(H.entry({ name: 'sg', typeflag: '5', mode: 0o2775 }), H.entry({ name: 'st', typeflag: '5', mode: 0o1777 }), H.file('sg/f', 'x')),
  'security.selinux xattr is dropped': H.tar(H.file('labelled', 'x', { paxExtra: [['SCHILY.xattr.security.selinux', 'system_u:object_r:bin_t:s0\0'], ['SCHILY.xattr.user.kept', 'yes']] })),
};

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** The uncompressed tar of a corpus file (.tar.bz2 / .tar.xz decompressed with the Debian tools). */
function tarBytes(file: string): Buffer {
  if (file.endsWith('.bz2')) return run('bzip2', ['-dc', file]);
  if (file.endsWith('.xz')) return run('xz', ['-dc', file]);
  return fs.readFileSync(file);
}

/** A docker-archive holding one image whose only layer is `layer`; `manifestEntry` spells its manifest.json entry. */
function dockerArchive(layer: Buffer, name: string, manifestEntry = (data: Buffer): Buffer => H.entry({ name: 'manifest.json' }, data)): Buffer {
  const diffID = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffID}`] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'tar-parity' }],
    }),
  );
  const configName = `${sha256(config)}.json`;
  const layerName = `${diffID}/layer.tar`;
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [name], Layers: [layerName] }]));
  return H.tar(
    H.entry({ name: configName }, config),
    H.entry({ name: `${diffID}/`, typeflag: '5', mode: 0o755 }),
    H.entry({ name: layerName }, layer),
    manifestEntry(manifest),
  );
}

type Outcome = { ok: true; dir: string } | { ok: false; why: string };

let work: string;
let podman: Podman;
let seq = 0;

function podmanExtract(layer: Buffer): Outcome {
  const name = `localhost/parity-${seq}:latest`;
  const archive = path.join(work, `archive-${seq}.tar`);
  fs.writeFileSync(archive, dockerArchive(layer, name));
  try {
    podman.run(['--tmpdir', path.join(work, 'podman-tmp'), 'load', '-q', '-i', archive]);
  } catch (err) {
    return { ok: false, why: (err as Error).message };
  } finally {
    fs.rmSync(archive, { force: true });
  }
  const upper = podman.run(['image', 'inspect', '--format', '{{.GraphDriver.Data.UpperDir}}', name]).trim();
  return { ok: true, dir: upper };
}

async function carrierExtract(tarFile: string, rootless: boolean): Promise<{ outcome: Outcome; result?: AppliedLayer; split: string }> {
  const dir = fs.mkdtempSync(path.join(work, `carrier-${seq}-`));
  const split = path.join(work, `split-${seq}-${rootless ? 'rootless' : 'root'}.gz`);
  try {
    const result = await applyLayer(tarFile, dir, { compression: 'none', tarSplit: split, rootless });
    return { outcome: { ok: true, dir }, result, split };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { outcome: { ok: false, why: `${e.code}: ${e.message}` }, split };
  }
}

const lastLines = (s: string): string => s.trim().split('\n').slice(-2).join(' ');

/**
 * Tree differences. Directories the tar implies but does not list are made at extraction time by both sides, so
 * their mtimes are compared only when one of them predates the test (came from the tar).
 */
function sameTree(theirs: Tree, ours: Tree): string[] {
  const diffs = compareTrees(theirs, ours, { fields: ALL_FIELDS.filter((f) => f !== 'mtime') });
  for (const [p, t] of theirs.nodes) {
    const o = ours.nodes.get(p);
    if (!o || t.mtimeNs === o.mtimeNs) continue;
    if (t.mtimeNs >= startedNs && o.mtimeNs >= startedNs) continue;
    diffs.push(`${p}: mtime expected ${t.mtimeNs} got ${o.mtimeNs}`);
  }
  return diffs;
}

const startedNs = BigInt(Date.now() - 1000) * 1_000_000n;

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-tar-parity-'));
  podman = new Podman(path.join(work, 'podman'));
  fs.mkdirSync(path.join(work, 'podman-tmp'));
});

afterAll(() => {
  podman?.reset();
  removeWorkDir(work);
});

/** Podman and Carrier on the same tar: both refuse, or the same tree and a byte-exact rebuild (root and rootless). */
async function compareWithPodman(label: string, bytes: Buffer): Promise<void> {
  seq++;
  const tarFile = path.join(work, `layer-${seq}.tar`);
  fs.writeFileSync(tarFile, bytes);
  const theirs = podmanExtract(bytes);
  const ours = await carrierExtract(tarFile, false);
  const summary = `${label}: podman ${theirs.ok ? 'accepts' : 'refuses: ' + lastLines(theirs.why)}; carrier ${ours.outcome.ok ? 'accepts' : 'refuses: ' + ours.outcome.why}`;
  if (refusedOnPurpose(label) !== undefined) {
    expect(theirs.ok && !ours.outcome.ok, summary).toBe(true);
    return;
  }
  expect(ours.outcome.ok, summary).toBe(theirs.ok);
  if (!theirs.ok || !ours.outcome.ok) return;
  expect(sameTree(walkTree(theirs.dir), walkTree(ours.outcome.dir)), summary).toEqual([]);
  await expectRoundTrip(tarFile, ours.split, ours.outcome.dir, ours.result!);
  // Rootless: the same entries accepted (owners not applied, device nodes skipped), and the same bytes rebuilt.
  const rootless = await carrierExtract(tarFile, true);
  expect(rootless.outcome.ok, rootless.outcome.ok ? '' : rootless.outcome.why).toBe(true);
  if (rootless.outcome.ok) await expectRoundTrip(tarFile, rootless.split, rootless.outcome.dir, rootless.result!);
}

describe('tar parity with podman over public corpora', () => {
  it('finds the corpora installed', () => {
    for (const c of CORPORA) expect(c.dirs, `${c.pkg} not installed (apt-get install ${c.pkg})`).not.toEqual([]);
    expect(TARS.length).toBeGreaterThan(40);
  });

  for (const file of TARS) {
    const label = file.replace(/^\/usr\/(share|lib)\//, '');
    if (TOO_SLOW.has(path.basename(file))) {
      it(`${label}: refused by Carrier (a sparse file; podman's side left out for time)`, async () => {
        seq++;
        const tarFile = path.join(work, `layer-${seq}.tar`);
        fs.writeFileSync(tarFile, tarBytes(file));
        const ours = await carrierExtract(tarFile, false);
        expect(ours.outcome.ok ? 'accepted' : ours.outcome.why).toMatch(/CARRIER_BAD_TAR: .*sparse/);
      });
      continue;
    }
    it(`${label}: same tree as podman, or both refuse`, () => compareWithPodman(label, tarBytes(file)));
  }
});

describe('tar parity with podman on borderline headers', () => {
  for (const [label, bytes] of Object.entries(SYNTHETIC)) {
    it(`${label}: same tree as podman, or both refuse`, () => compareWithPodman(label, bytes));
  }
});

describe('archive entry names: carrier load reads them as podman load does', () => {
  const spellings: Record<string, (data: Buffer) => Buffer> = {
    'a GNU long name wins over a PAX path': (data) =>
      Buffer.concat([H.pax([['path', 'decoy.json']]), H.gnuLong('L', 'manifest.json'), H.entry({ name: 'placeholder' }, data)]),
    'an empty PAX path keeps the header name': (data) => Buffer.concat([H.pax([['path', '']]), H.entry({ name: 'manifest.json' }, data)]),
    'an empty GNU long name keeps the PAX path': (data) =>
      Buffer.concat([H.pax([['path', 'manifest.json']]), H.gnuLong('L', ''), H.entry({ name: 'placeholder' }, data)]),
  };
  for (const [label, spell] of Object.entries(spellings)) {
    it(`${label}`, async () => {
      seq++;
      const name = `localhost/names-${seq}:latest`;
      const archive = path.join(work, `names-${seq}.tar`);
      fs.writeFileSync(archive, dockerArchive(H.tar(H.file('f', 'x')), name, spell));
      const loaded = podman.load(archive);
      const a = await openImageArchive(archive);
      try {
        expect(a.images.map((i) => i.names)).toEqual([loaded]);
      } finally {
        await a.close();
      }
    });
  }
});

/**
 * Conformance of applyLayer with real tarballs from three writers: GNU tar (gnu and posix formats), bsdtar
 * (libarchive, pax format) and tar-stream. The reference for every tree is what GNU tar itself extracts from the
 * same tarball (as root, -p --xattrs --numeric-owner), compared entry by entry.
 *
 * The round trip (applyLayer with a tar-split, then assembleLayer) of these fixtures is checked here too, on the
 * same extraction, so the >100 MiB fixtures are built and applied once; layer-roundtrip.test.ts covers the rest.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { applyLayer, type AppliedLayer } from '../src/index.js';
import * as F from './support/fixtures.js';
import { walkTree, compareTrees, hardlinkGroups, type Tree, type Field } from './support/tree.js';
import { expectCarrierError, expectRoundTrip } from './support/layer.js';
import { unprivilegedRunner, nobodyDir, NOBODY, type ChildOutcome } from './support/unprivileged.js';

let work: string;
let src: F.SourceTree;

interface Writer {
  id: string;
  title: string;
  make: (out: string) => void | Promise<void>;
  /** Raw paths that must exist after extraction, byte for byte. */
  names: () => (string | Buffer)[];
}

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const SOURCE_NAMES = (): (string | Buffer)[] => [
  'long/' + 'n'.repeat(120) + '.txt',
  'long/' + 'N'.repeat(250),
  `${F.DEEP_DIR}/file-at-the-bottom-of-a-very-deep-tree.txt`,
  'names/café.txt',
  'names/日本/語.txt',
  'names/emoji-😀.txt',
  'names/tab\tand=equals.txt',
  latin1('names/bad-\xff\xfe.bin'),
  latin1('names/dir-\xe9/inner.txt'),
];

const WRITERS: Writer[] = [
  {
    id: 'gnu',
    title: 'GNU tar --format=gnu (././@LongLink names, base-256 ids, whole-second mtimes)',
    make: (out) => F.gnuTar(src, out, 'gnu', src.topLevel.filter((n) => n !== 'big')),
    names: SOURCE_NAMES,
  },
  {
    id: 'gnu-posix',
    title: 'GNU tar --format=posix (PAX names, xattrs, nanosecond mtimes, the big file)',
    make: (out) => F.gnuTar(src, out, 'posix'),
    names: SOURCE_NAMES,
  },
  {
    id: 'bsdtar',
    title: 'bsdtar --format=pax (libarchive: hdrcharset=BINARY, LIBARCHIVE and SCHILY xattrs, the big file)',
    make: (out) => F.bsdTar(src, out),
    names: SOURCE_NAMES,
  },
  {
    id: 'tar-stream',
    title: 'tar-stream (ustar prefix split, PAX path/linkpath/mtime/xattrs, devices, the big file)',
    make: (out) => F.tarStreamFixture(out, { big: true }),
    names: () => [
      'ts-long/' + 'p'.repeat(90) + '/' + 'q'.repeat(90) + '.txt',
      'ts-long/' + 'c'.repeat(150),
      'ts-names/café.txt',
      'ts-names/日本/語.txt',
      latin1('ts-names/bad-\xff\xfe.bin'),
    ],
  },
];

const tarOf = (id: string): string => path.join(work, `${id}.tar`);

const MAX_STORAGE_NS = 2n ** 63n - 1n;
/**
 * GNU tar's extraction as containers/storage would make it, where the two differ on purpose (Carrier matches podman,
 * issue 16): PAX records with an empty value (xattrs included) are ignored as Go's archive/tar ignores them, and
 * times before 1970 or past 2262 become the epoch on everything but symlinks.
 */
function asContainersStorage(tree: Tree): Tree {
  for (const node of tree.nodes.values()) {
    node.xattrs = Object.fromEntries(Object.entries(node.xattrs).filter(([, v]) => v !== ''));
    if (node.type !== 'symlink' && (node.mtimeNs < 0n || node.mtimeNs > MAX_STORAGE_NS)) node.mtimeNs = 0n;
  }
  return tree;
}
/**
 * Hard-linked names: containers/storage gives their shared inode the last hardlink header's mtime, GNU tar the
 * target's, so their mtimes are compared in tar-go-rules.test.ts instead.
 */
const hardLinked = (tree: Tree): ((p: string) => boolean) => {
  const names = new Set(hardlinkGroups(tree).flat());
  return (p) => names.has(p);
};

beforeAll(async () => {
  work = F.tempDir('writers');
  const root = path.join(work, 'src');
  fs.mkdirSync(root);
  src = F.buildSourceTree(root, { big: true });
  for (const w of WRITERS) await w.make(tarOf(w.id));
  // `tar -C dir .`: every name starts with ./ and the first entry is the root itself.
  F.run('tar', ['--sort=name', '--format=gnu', '-cf', tarOf('dot'), '-C', root, '--exclude=./big', '--exclude=./many', '.']);
  // A PAX global header, as git archive writes one; GNU tar names it /tmp/GlobalHead.<pid>.<n>.
  F.run('tar', ['--sort=name', '--format=posix', '--pax-option=comment=made by carrier tests', '-cf', tarOf('global'), '-C', root, 'dir-a', 'links', 'names']);
  // Older header formats: ustar (prefix/name split, no long names), oldgnu, and v7 (no magic, no fifos or devices).
  F.run('tar', ['--sort=name', '--format=ustar', '-cf', tarOf('ustar'), '-C', root, 'dir-a', 'empty', 'links', 'modes', 'names', 'special']);
  F.run('tar', ['--sort=name', '--format=oldgnu', '-cf', tarOf('oldgnu'), '-C', root, ...src.topLevel.filter((n) => n !== 'big' && n !== 'many')]);
  F.run('tar', ['--sort=name', '--format=v7', '-cf', tarOf('v7'), '-C', root, 'dir-a', 'empty', 'links']);
  // The source tree is no longer needed; the tarballs are the fixtures.
  fs.rmSync(root, { recursive: true, force: true });

  // Times GNU tar stores out of the octal field's range: before 1970 (base-256 / negative PAX) and after 2242.
  const times = path.join(work, 'times-src');
  fs.mkdirSync(times);
  const stamps: [string, string][] = [
    ['epoch', '@0'],
    ['day-before-epoch', '@-86400'],
    ['second-before-epoch', '@-1'],
    ['negative-fraction', '@-1.25'],
    ['year-2286', '@10000000000'],
    ['year-2286-fraction', '@10000000000.5'],
  ];
  for (const [n, stamp] of stamps) {
    fs.writeFileSync(path.join(times, n), `${stamp}\n`);
    F.run('touch', ['-h', '-d', stamp, path.join(times, n)]);
  }
  F.run('touch', ['-d', '@-3600', times]);
  const timeNames = stamps.map(([n]) => n);
  F.run('tar', ['--format=gnu', '-cf', tarOf('times-gnu'), '-C', times, ...timeNames]);
  F.run('tar', ['--format=posix', '-cf', tarOf('times-posix'), '-C', times, ...timeNames]);
  fs.rmSync(times, { recursive: true, force: true });

  const sparse = path.join(work, 'sparse-src');
  fs.mkdirSync(sparse);
  const hole = (name: string, size: number, writes: [number, string][]): void => {
    const fd = fs.openSync(path.join(sparse, name), 'w');
    fs.ftruncateSync(fd, size);
    for (const [at, text] of writes) fs.writeSync(fd, text, at);
    fs.closeSync(fd);
  };
  hole('sparse.bin', 64 * F.MiB, [[1_000_000, 'hello'], [50_000_000, 'world'], [64 * F.MiB - 3, 'end']]);
  hole('all-hole.bin', 10 * F.MiB, []);
  hole('data-then-hole.bin', 8 * F.MiB, [[0, 'x'.repeat(70_000)]]);
  F.setTimes(sparse);
  const names = ['all-hole.bin', 'data-then-hole.bin', 'sparse.bin'];
  F.run('tar', ['--sparse', '--format=gnu', '-cf', tarOf('sparse-gnu'), '-C', sparse, ...names]);
  F.run('tar', ['--sparse', '--format=posix', '--sparse-version=1.0', '-cf', tarOf('sparse-pax'), '-C', sparse, ...names]);
  fs.rmSync(sparse, { recursive: true, force: true });
}, 240_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, 120_000);

interface Applied {
  dir: string;
  ref: string;
  tarSplit: string;
  result: AppliedLayer;
  actual: Tree;
  expected: Tree;
  stats: F.TarStats;
  digest: string;
  size: number;
}

/** Applies a writer's tarball once (rootless: false) and extracts it with GNU tar; shared by that writer's tests. */
function applied(id: string): { get: () => Promise<Applied>; started: () => Promise<Applied> | undefined } {
  let p: Promise<Applied> | undefined;
  const get = (): Promise<Applied> =>
    (p ??= (async () => {
      const tarFile = tarOf(id);
      const dir = fs.mkdtempSync(path.join(work, `${id}-applied-`));
      const ref = fs.mkdtempSync(path.join(work, `${id}-gnutar-`));
      const tarSplit = path.join(work, `${id}.tar-split.gz`);
      const result = await applyLayer(tarFile, dir, { rootless: false, tarSplit });
      F.gnuExtract(tarFile, ref);
      return {
        dir,
        ref,
        tarSplit,
        result,
        actual: walkTree(dir),
        expected: asContainersStorage(walkTree(ref)),
        stats: await F.tarStats(tarFile),
        digest: await F.sha256File(tarFile),
        size: F.fileSize(tarFile),
      };
    })());
  return { get, started: () => p };
}

for (const w of WRITERS) {
  describe(`layers written by ${w.title}`, { timeout: 180_000 }, () => {
    const { get, started } = applied(w.id);
    const same = async (fields: Field[]): Promise<void> => {
      const a = await get();
      const ignore = fields.includes('mtime') ? hardLinked(a.expected) : undefined;
      expect(compareTrees(a.expected, a.actual, { fields, ignore })).toEqual([]);
    };

    afterAll(async () => {
      const a = await started()?.catch(() => undefined);
      if (a) for (const d of [a.dir, a.ref]) fs.rmSync(d, { recursive: true, force: true });
    }, 120_000);

    it('creates exactly the entries GNU tar creates, each with the same type and device numbers', async () => {
      await same(['type', 'rdev']);
    });

    it('writes the same file contents and sizes as GNU tar, the >100 MiB file included', async () => {
      await same(['size', 'content']);
    });

    it('sets permission bits like GNU tar -p, setuid, setgid and sticky included', async () => {
      await same(['mode']);
    });

    it('creates symlinks with the same relative, absolute, dangling and long targets', async () => {
      await same(['target']);
    });

    it('makes hard links names of one inode, grouped like in GNU tar’s extraction', async () => {
      await same(['links']);
    });

    it('chowns every entry (symlinks too) like GNU tar --numeric-owner when rootless is false', async () => {
      await same(['owner']);
    });

    it('sets mtimes like GNU tar, to the nanosecond where the tarball carries them, directories included', async () => {
      await same(['mtime']);
    });

    it('restores user.* and security.capability xattrs from PAX records like GNU tar --xattrs (empty values ignored, as Go does)', async () => {
      await same(['xattrs']);
    });

    it('keeps long (>100, >255 bytes), deep, non-ASCII and non-UTF-8 names byte for byte', async () => {
      const a = await get();
      for (const name of w.names()) {
        const abs = Buffer.concat([Buffer.from(a.dir + '/'), Buffer.isBuffer(name) ? name : Buffer.from(name)]);
        expect(fs.existsSync(abs), `${name.toString()} exists`).toBe(true);
      }
    });

    it('reports the tar’s digest and length, the blob’s digest and length, the entry count and owner id sets', async () => {
      const a = await get();
      expect(a.result.diffDigest).toBe(a.digest);
      expect(a.result.diffSize).toBe(a.size);
      // An uncompressed blob: the compressed digest is the tar's own.
      expect(a.result.compressedDigest).toBe(a.digest);
      expect(a.result.compressedSize).toBe(a.size);
      expect(a.result.compression).toBe('none');
      expect(a.result.entries).toBe(a.stats.entries);
      expect(a.result.uidset).toEqual(a.stats.uidset);
      expect(a.result.gidset).toEqual(a.stats.gidset);
      expect(a.result.skipped).toEqual([]);
    });

    it('round-trips: assembleLayer(tarSplit, dir) rebuilds the original tar byte for byte, hashing to diffDigest', async () => {
      const a = await get();
      await expectRoundTrip(tarOf(w.id), a.tarSplit, a.dir, a.result);
    });
  });
}

describe('other tar layouts found in real layers', { timeout: 120_000 }, () => {
  /** GNU tar names its global header /tmp/GlobalHead.N; containers/storage makes that name's parent, tmp/. */
  const ignoreIn: Record<string, (p: string) => boolean> = { global: (p) => p === 'tmp' };
  const applyAndCompare = async (id: string): Promise<{ dir: string; tarSplit: string; result: AppliedLayer }> => {
    const dir = fs.mkdtempSync(path.join(work, `${id}-applied-`));
    const ref = fs.mkdtempSync(path.join(work, `${id}-gnutar-`));
    const tarSplit = path.join(work, `${id}.tar-split.gz`);
    const result = await applyLayer(tarOf(id), dir, { rootless: false, tarSplit });
    F.gnuExtract(tarOf(id), ref);
    expect(compareTrees(asContainersStorage(walkTree(ref)), walkTree(dir), { ignore: ignoreIn[id] })).toEqual([]);
    expect(result.diffDigest).toBe(await F.sha256File(tarOf(id)));
    return { dir, tarSplit, result };
  };

  it("extracts a `tar -C dir .` layer (./-prefixed names, an entry for the root) like GNU tar, leaving the root alone", async () => {
    const { dir, tarSplit, result } = await applyAndCompare('dot');
    // The root entry is skipped (never applied to dir itself); nothing else is.
    for (const s of result.skipped) expect(s.path.replace(/^\.?\/*/, '').replace(/\/+$/, ''), `skipped ${s.path}: ${s.reason}`).toBe('');
    const st = fs.statSync(dir);
    expect((st.mode & 0o7777).toString(8), 'the layer root keeps its own mode').toBe('700');
    await expectRoundTrip(tarOf('dot'), tarSplit, dir, result);
  });

  for (const [id, what] of [
    ['ustar', 'tar --format=ustar (names split into prefix and name fields)'],
    ['oldgnu', 'tar --format=oldgnu (././@LongLink names, base-256 ids)'],
    ['v7', 'tar --format=v7 (no ustar magic, directories marked by a trailing slash)'],
  ] as const) {
    it(`extracts ${what} layers like GNU tar and round-trips them`, async () => {
      const { dir, tarSplit, result } = await applyAndCompare(id);
      expect(result.skipped).toEqual([]);
      expect(result.entries).toBe((await F.tarStats(tarOf(id))).entries);
      await expectRoundTrip(tarOf(id), tarSplit, dir, result);
    });
  }

  it('reads mtimes before 1970 and after 2242 (base-256 fields, GNU format), set as containers/storage sets them', async () => {
    const { dir, tarSplit, result } = await applyAndCompare('times-gnu');
    await expectRoundTrip(tarOf('times-gnu'), tarSplit, dir, result);
  });

  it('reads negative and far-future PAX mtimes, fractions included, set as containers/storage sets them', async () => {
    const { dir, tarSplit, result } = await applyAndCompare('times-posix');
    await expectRoundTrip(tarOf('times-posix'), tarSplit, dir, result);
  });

  it('ignores a PAX global header\'s records (GNU tar names it /tmp/GlobalHead.N) and extracts the rest like GNU tar', async () => {
    const { dir, tarSplit, result } = await applyAndCompare('global');
    // Not an entry, but containers/storage creates its name's parents, as podman's tree shows.
    expect(fs.readdirSync(path.join(dir, 'tmp')), 'the global header is not an entry').toEqual([]);
    expect(result.skipped).toEqual([]);
    await expectRoundTrip(tarOf('global'), tarSplit, dir, result);
  });

  it('refuses old GNU sparse entries (type S, tar --sparse --format=gnu) cleanly, as containers/storage does', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'sparse-gnu-'));
    const tarSplit = path.join(work, 'sparse-gnu.tar-split.gz');
    const err = await expectCarrierError(applyLayer(tarOf('sparse-gnu'), dir, { rootless: false, tarSplit }));
    expect(err.code).toBe('CARRIER_BAD_TAR');
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.existsSync(tarSplit)).toBe(false);
  });

  // Go's archive/tar expands PAX sparse files, but tar-split then records the expanded content, so such a layer
  // cannot be rebuilt byte for byte (the tar-split README says so). Carrier refuses it rather than store a layer
  // it could never push or save again.
  it('refuses PAX sparse files (tar --sparse --format=posix, GNU.sparse 1.0) cleanly: tar-split cannot rebuild them', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'sparse-pax-'));
    const tarSplit = path.join(work, 'sparse-pax.tar-split.gz');
    const err = await expectCarrierError(applyLayer(tarOf('sparse-pax'), dir, { rootless: false, tarSplit }));
    expect(err.code).toBe('CARRIER_BAD_TAR');
    expect(err.message).toMatch(/sparse/);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.existsSync(tarSplit)).toBe(false);
  });
});

describe('rootless extraction (rootless: true)', { timeout: 120_000 }, () => {
  let dir: string;
  let ref: string;
  let result: AppliedLayer;
  let actual: Tree;
  let expected: Tree;
  let stats: F.TarStats;
  const devices = ['ts-special/null', 'ts-special/loop0'];
  const norm = (p: string): string => p.replace(/^\.?\/+/, '').replace(/\/+$/, '');

  beforeAll(async () => {
    const tarFile = path.join(work, 'rootless.tar');
    await F.tarStreamFixture(tarFile, { big: false, many: 100 });
    dir = fs.mkdtempSync(path.join(work, 'rootless-applied-'));
    ref = fs.mkdtempSync(path.join(work, 'rootless-gnutar-'));
    result = await applyLayer(tarFile, dir, { rootless: true });
    F.gnuExtract(tarFile, ref);
    actual = walkTree(dir);
    expected = asContainersStorage(walkTree(ref));
    stats = await F.tarStats(tarFile);
  }, 120_000);

  it('skips device nodes and lists each in `skipped` with a reason', () => {
    const skipped = result.skipped.map((s) => norm(s.path));
    expect(skipped.filter((p) => p.startsWith('ts-special/')).sort()).toEqual([...devices].sort());
    for (const s of result.skipped) expect(s.reason).toEqual(expect.any(String));
    for (const d of devices) expect(actual.nodes.has(d), `${d} must not exist`).toBe(false);
  });

  it('drops the security.capability xattr (needs CAP_SETFCAP), keeps the file, and says so in `skipped`', () => {
    expect(actual.nodes.get('ts-xattr/ping')?.type).toBe('file');
    expect(actual.nodes.get('ts-xattr/ping')?.xattrs).toEqual({});
    expect(expected.nodes.get('ts-xattr/ping')?.xattrs['security.capability']).toBe(F.FILE_CAPS_HEX.slice(2));
    const skipped = result.skipped.filter((s) => norm(s.path) === 'ts-xattr/ping');
    expect(skipped.length).toBe(1);
    expect(skipped[0]!.reason).toMatch(/security\.capability/);
    expect(result.skipped.length, JSON.stringify(result.skipped)).toBe(devices.length + 1);
  });

  it('creates everything else like GNU tar (fifos included), except ownership', () => {
    const fields: Field[] = ['type', 'rdev', 'size', 'content', 'mode', 'target', 'links', 'mtime', 'xattrs'];
    const ignore = (p: string): boolean => devices.includes(p);
    const linked = hardLinked(expected);
    expect(compareTrees(expected, actual, { fields: fields.filter((f) => f !== 'xattrs' && f !== 'mtime'), ignore })).toEqual([]);
    expect(compareTrees(expected, actual, { fields: ['mtime'], ignore: (p) => ignore(p) || linked(p) })).toEqual([]);
    expect(compareTrees(expected, actual, { fields: ['xattrs'], ignore: (p) => ignore(p) || p === 'ts-xattr/ping' })).toEqual([]);
    expect(actual.nodes.get('ts-special/fifo')?.type).toBe('fifo');
  });

  it('does not chown: every entry belongs to the calling user', () => {
    const bad = [...actual.nodes.values()]
      .filter((n) => n.uid !== process.getuid!() || n.gid !== process.getgid!())
      .map((n) => `${n.path} ${n.uid}:${n.gid}`);
    expect(bad).toEqual([]);
  });

  it('still reports the owners recorded in the tar headers in uidset/gidset', () => {
    expect(stats.uidset.length).toBeGreaterThan(2);
    expect(result.uidset).toEqual(stats.uidset);
    expect(result.gidset).toEqual(stats.gidset);
  });

  afterAll(() => {
    for (const d of [dir, ref]) if (d) fs.rmSync(d, { recursive: true, force: true });
  }, 60_000);
});

describe('trusted.* xattrs', { timeout: 60_000 }, () => {
  let tarFile: string;
  beforeAll(async () => {
    tarFile = path.join(work, 'trusted-xattr.tar');
    await F.writeTarStream(tarFile, [
      { header: { name: 'x/', type: 'directory', mode: 0o755, mtime: new Date(1_700_000_000_000) } },
      {
        header: {
          name: 'x/file',
          type: 'file',
          mode: 0o644,
          mtime: new Date(1_700_000_000_000),
          pax: { 'SCHILY.xattr.trusted.carrier': 'privileged', 'SCHILY.xattr.user.carrier': 'anyone' },
        },
        content: 'xattrs\n',
      },
    ]);
  });

  it('are restored when rootless is false', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'trusted-rootful-'));
    await applyLayer(tarFile, dir, { rootless: false });
    expect(walkTree(dir).nodes.get('x/file')?.xattrs).toEqual({
      'trusted.carrier': Buffer.from('privileged').toString('hex'),
      'user.carrier': Buffer.from('anyone').toString('hex'),
    });
  });

  it('are dropped rootless while user.* xattrs and the file itself are kept', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'trusted-rootless-'));
    const result = await applyLayer(tarFile, dir, { rootless: true });
    const node = walkTree(dir).nodes.get('x/file');
    expect(node?.type).toBe('file');
    expect(node?.xattrs).toEqual({ 'user.carrier': Buffer.from('anyone').toString('hex') });
    for (const s of result.skipped) expect(s.path).toMatch(/x\/file$/);
  });
});

describe('whiteouts', { timeout: 60_000 }, () => {
  let tarFile: string;
  const Y = Buffer.from('y').toString('hex');
  beforeAll(async () => {
    tarFile = path.join(work, 'whiteouts.tar');
    await F.whiteoutFixture(tarFile);
  });

  const check = async (options: { whiteouts: 'overlay' | 'aufs'; rootless: boolean }): Promise<Tree> => {
    const dir = fs.mkdtempSync(path.join(work, `wh-${options.whiteouts}-${options.rootless}-`));
    const result = await applyLayer(tarFile, dir, options);
    expect(result.entries).toBe(7);
    expect(result.skipped).toEqual([]);
    const tree = walkTree(dir);
    expect(tree.nodes.get('wh/kept.txt')?.type).toBe('file');
    expect(tree.nodes.get('wh/opaque/new.txt')?.type, 'an opaque marker only hides lower layers').toBe('file');
    return tree;
  };

  const expectOverlay = (tree: Tree, opaqueXattr: string, otherXattr: string): void => {
    for (const p of ['wh/gone', 'top-level-gone']) {
      const n = tree.nodes.get(p);
      expect(n?.type, `${p} is a whiteout device`).toBe('char');
      expect(n?.rdev).toBe('0:0');
      expect(n?.perm, `${p} mode`).toBe(0);
    }
    for (const p of ['wh/.wh.gone', '.wh.top-level-gone', 'wh/opaque/.wh..wh..opq']) {
      expect(tree.nodes.has(p), `${p} must not exist`).toBe(false);
    }
    expect(tree.nodes.get('wh/opaque')?.xattrs[opaqueXattr]).toBe(Y);
    expect(tree.nodes.get('wh/opaque')?.xattrs[otherXattr]).toBeUndefined();
    expect(tree.nodes.get('wh')?.xattrs[opaqueXattr]).toBeUndefined();
  };

  it("turns .wh.NAME into a 0/0 char device and .wh..wh..opq into trusted.overlay.opaque=y (overlay, rootful)", async () => {
    expectOverlay(await check({ whiteouts: 'overlay', rootless: false }), 'trusted.overlay.opaque', 'user.overlay.opaque');
  });

  it('uses user.overlay.opaque=y for opaque directories when rootless, still with 0/0 whiteout devices', async () => {
    expectOverlay(await check({ whiteouts: 'overlay', rootless: true }), 'user.overlay.opaque', 'trusted.overlay.opaque');
  });

  it("keeps .wh. entries as plain empty files with whiteouts: 'aufs'", async () => {
    const tree = await check({ whiteouts: 'aufs', rootless: false });
    for (const p of ['wh/.wh.gone', '.wh.top-level-gone', 'wh/opaque/.wh..wh..opq']) {
      expect(tree.nodes.get(p)?.type, p).toBe('file');
      expect(tree.nodes.get(p)?.size, p).toBe(0);
    }
    expect([...tree.nodes.values()].filter((n) => n.type === 'char')).toEqual([]);
    expect(tree.nodes.get('wh/opaque')?.xattrs).toEqual({});
  });
});

describe('as an unprivileged user (uid 65534, no capabilities)', { timeout: 120_000 }, () => {
  // Root ignores permission bits; only a real unprivileged process shows what rootless users hit: read-only
  // directories, 0000 files (Fedora's /etc/shadow), cleaning up after a failure, reading files back to assemble.
  let uwork: string;
  let tarFile: string;
  let reference: Tree;
  let run: ReturnType<typeof unprivilegedRunner>;
  let n = 0;
  const fresh = (tag: string): string => nobodyDir(uwork, `${tag}-${n++}`);
  const norm = (p: string): string => p.replace(/^\.?\/+/, '').replace(/\/+$/, '');

  beforeAll(() => {
    uwork = F.tempDir('unprivileged');
    fs.chmodSync(uwork, 0o755);
    run = unprivilegedRunner(uwork);
    const src = path.join(uwork, 'src');
    const w = (rel: string, content: string, mode?: number): void => {
      fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      fs.writeFileSync(path.join(src, rel), content);
      if (mode !== undefined) fs.chmodSync(path.join(src, rel), mode);
    };
    w('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o000);
    w('etc/gshadow', 'root:::\n', 0o000);
    fs.linkSync(path.join(src, 'etc/shadow'), path.join(src, 'etc/shadow-hardlink'));
    w('ro/file', 'in a read-only dir\n', 0o444);
    w('ro/sub/file', 'in a 0500 dir\n', 0o400);
    fs.chmodSync(path.join(src, 'ro/sub'), 0o500);
    fs.chmodSync(path.join(src, 'ro'), 0o555);
    w('write-only', 'write only\n', 0o200);
    w('suid', '#!/bin/sh\n', 0o4755);
    fs.mkdirSync(path.join(src, 'sgid-dir'));
    fs.chmodSync(path.join(src, 'sgid-dir'), 0o2775);
    F.run('mkfifo', [path.join(src, 'fifo')]);
    fs.mkdirSync(path.join(src, 'dev'));
    F.run('mknod', [path.join(src, 'dev/null'), 'c', '1', '3']);
    w('wh/.wh.gone', '');
    w('wh/opq/.wh..wh..opq', '');
    w('wh/opq/kept', 'kept\n');
    w('x/file', 'xattrs\n');
    F.run('setfattr', ['-n', 'user.foo', '-v', 'bar', path.join(src, 'x/file')]);
    F.run('setfattr', ['-n', 'trusted.foo', '-v', 'root-only', path.join(src, 'x/file')]);
    fs.symlinkSync('../etc/shadow', path.join(src, 'x/link'));
    fs.chownSync(path.join(src, 'x/file'), 1000, 1000);
    fs.lchownSync(path.join(src, 'x/link'), 1000, 1000);
    F.setTimes(src);
    tarFile = path.join(uwork, 'unprivileged.tar');
    F.run('tar', ['--sort=name', '--format=posix', '--xattrs', '--xattrs-include=*', '-cf', tarFile, '-C', src, '.']);
    fs.chmodSync(tarFile, 0o644);
    const ref = path.join(uwork, 'ref');
    fs.mkdirSync(ref);
    F.gnuExtract(tarFile, ref);
    reference = walkTree(ref);
  }, 120_000);

  afterAll(() => {
    if (uwork) fs.rmSync(uwork, { recursive: true, force: true });
  }, 60_000);

  let applied: { dir: string; tarSplit: string; out: ChildOutcome<AppliedLayer> } | undefined;
  const applyOnce = (): NonNullable<typeof applied> => {
    if (!applied) {
      const dir = fresh('diff');
      const tarSplit = path.join(fresh('split'), 'layer.tar-split.gz');
      // No `rootless` option: the default must be rootless because euid is not 0.
      applied = { dir, tarSplit, out: run<AppliedLayer>('apply', tarFile, dir, { tarSplit }) };
    }
    return applied;
  };

  const whiteoutPaths = ['wh/.wh.gone', 'wh/gone', 'wh/opq/.wh..wh..opq'];

  it('applies read-only dirs, 0000 and write-only files, setuid bits and a fifo exactly like GNU tar (rootless by default)', () => {
    const { dir, out } = applyOnce();
    expect(out, JSON.stringify(out)).toMatchObject({ ok: true });
    const actual = walkTree(dir);
    const fields: Field[] = ['type', 'rdev', 'size', 'content', 'mode', 'target', 'links', 'mtime'];
    const ignore = (p: string): boolean => p === 'dev/null' || whiteoutPaths.includes(p);
    expect(compareTrees(reference, actual, { fields, ignore })).toEqual([]);
  });

  it('owns everything as the calling user, skips the device node and the trusted.* xattr, keeps user.* xattrs', () => {
    const { dir, out } = applyOnce();
    const actual = walkTree(dir);
    const foreign = [...actual.nodes.values()].filter((x) => x.uid !== NOBODY || x.gid !== NOBODY).map((x) => x.path);
    expect(foreign).toEqual([]);
    expect(actual.nodes.has('dev/null')).toBe(false);
    expect(actual.nodes.get('x/file')?.xattrs).toEqual({ 'user.foo': Buffer.from('bar').toString('hex') });
    const skipped = out.result!.skipped.map((s) => norm(s.path)).sort();
    expect(skipped).toEqual(['dev/null', 'x/file']);
    expect(out.result!.uidset).toEqual([0, 1000]);
  });

  it('creates overlay whiteouts unprivileged: a 0/0 char device and user.overlay.opaque=y', () => {
    const { dir } = applyOnce();
    const actual = walkTree(dir);
    expect(actual.nodes.get('wh/gone')).toMatchObject({ type: 'char', rdev: '0:0' });
    expect(actual.nodes.has('wh/.wh.gone')).toBe(false);
    expect(actual.nodes.has('wh/opq/.wh..wh..opq')).toBe(false);
    expect(actual.nodes.get('wh/opq')?.xattrs).toEqual({ 'user.overlay.opaque': Buffer.from('y').toString('hex') });
    expect(actual.nodes.get('wh/opq/kept')?.type).toBe('file');
  });

  it('rebuilds the tar unprivileged with assembleLayer, 0000 and write-only files included', async () => {
    const { dir, tarSplit, out } = applyOnce();
    expect(out.ok).toBe(true);
    const rebuilt = run('assemble', tarSplit, dir);
    expect(rebuilt, JSON.stringify(rebuilt)).toMatchObject({ ok: true, digest: await F.sha256File(tarFile), length: F.fileSize(tarFile) });
  });

  it('leaves dir empty after a DiffID mismatch, read-only directories and 0000 files included', () => {
    const dir = fresh('mismatch');
    const tarSplit = path.join(fresh('mismatch-split'), 'layer.tar-split.gz');
    const out = run('apply', tarFile, dir, { tarSplit, expectedDiffID: 'sha256:' + 'e'.repeat(64) });
    expect(out).toMatchObject({ ok: false, code: 'CARRIER_DIGEST_MISMATCH' });
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.existsSync(tarSplit)).toBe(false);
  });

  it('leaves dir empty when the blob is cut short after the read-only directories were made', () => {
    const cut = path.join(uwork, 'cut.tar');
    fs.writeFileSync(cut, fs.readFileSync(tarFile).subarray(0, F.tarDataEnd(tarFile) - 700));
    fs.chmodSync(cut, 0o644);
    const dir = fresh('cut');
    const out = run('apply', cut, dir, {});
    expect(out).toMatchObject({ ok: false, code: 'CARRIER_TRUNCATED' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

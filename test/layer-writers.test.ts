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
import { walkTree, compareTrees, type Tree, type Field } from './support/tree.js';
import { expectRoundTrip } from './support/layer.js';

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
  // The source tree is no longer needed; the tarballs are the fixtures.
  fs.rmSync(root, { recursive: true, force: true });

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
        expected: walkTree(ref),
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
      expect(compareTrees(a.expected, a.actual, { fields })).toEqual([]);
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

    it('restores user.* xattrs from PAX records like GNU tar --xattrs', async () => {
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
  const applyAndCompare = async (id: string): Promise<{ dir: string; tarSplit: string; result: AppliedLayer }> => {
    const dir = fs.mkdtempSync(path.join(work, `${id}-applied-`));
    const ref = fs.mkdtempSync(path.join(work, `${id}-gnutar-`));
    const tarSplit = path.join(work, `${id}.tar-split.gz`);
    const result = await applyLayer(tarOf(id), dir, { rootless: false, tarSplit });
    F.gnuExtract(tarOf(id), ref);
    expect(compareTrees(walkTree(ref), walkTree(dir))).toEqual([]);
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

  it('ignores a PAX global header (GNU tar names it /tmp/GlobalHead.N) and extracts the rest like GNU tar', async () => {
    const { dir, tarSplit, result } = await applyAndCompare('global');
    expect(fs.existsSync(path.join(dir, 'tmp')), 'the global header is not an entry').toBe(false);
    expect(result.skipped).toEqual([]);
    await expectRoundTrip(tarOf('global'), tarSplit, dir, result);
  });

  it('extracts GNU tar --sparse files (gnu format, type S) with the same size and content as GNU tar', async () => {
    await applyAndCompare('sparse-gnu');
  });

  it('extracts GNU tar --sparse files (posix format, GNU.sparse 1.0 PAX records) with the same size and content as GNU tar', async () => {
    await applyAndCompare('sparse-pax');
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
    expected = walkTree(ref);
    stats = await F.tarStats(tarFile);
  }, 120_000);

  it('skips device nodes and lists each in `skipped` with a reason', () => {
    expect(result.skipped.map((s) => norm(s.path)).sort()).toEqual([...devices].sort());
    for (const s of result.skipped) expect(s.reason).toEqual(expect.any(String));
    for (const d of devices) expect(actual.nodes.has(d), `${d} must not exist`).toBe(false);
  });

  it('creates everything else like GNU tar (fifos included), except ownership', () => {
    const fields: Field[] = ['type', 'rdev', 'size', 'content', 'mode', 'target', 'links', 'mtime', 'xattrs'];
    expect(compareTrees(expected, actual, { fields, ignore: (p) => devices.includes(p) })).toEqual([]);
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

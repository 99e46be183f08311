/**
 * Flattened checkouts (checkoutImage, `carrier checkout`) and container export, against real podman on the same
 * store: the checkout equals podman's merged overlay view (`podman image mount`) entry by entry; a hostile layer pair
 * cannot make the merge write outside the checkout; on loop-mounted XFS a ~300 MiB image checked out twice costs
 * almost no space (reflinks), on ext4 it is copied and says so; `carrier export` of a container is the checkout of
 * its image plus the container's own writes. Runs as root (podman's overlay store, loop mounts).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/store.js';
import { checkoutImage, mergeLayers, exportContainer } from '../src/index.js';
import * as H from './support/hostile.js';
import { buildTestImage, requireTools, Podman, type LayerSpec, removeWorkDir } from './support/images.js';
import { commitOf } from './support/store.js';
import { walkTree, compareTrees } from './support/tree.js';
import { withLoopFs, usage, xfsHasReflink } from './support/loopfs.js';

const MiB = 1024 * 1024;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(repo, 'dist/cli/main.js');
const o = { mtime: 1_700_000_000 };
let work: string;

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-checkout-'));
});

afterAll(() => removeWorkDir(work));

/** Three layers exercising every merge rule: whiteouts (file and whole tree), an opaque dir, entries replaced by other types, changed modes. */
function richLayers(): LayerSpec[] {
  return [
    {
      compression: 'gzip',
      entries: [
        H.dir('etc/', o),
        H.file('etc/hostname', 'base\n', o),
        H.file('etc/passwd', 'root:x:0:0::/root:/bin/sh\n', { ...o, mode: 0o644 }),
        H.dir('data/', o),
        H.file('data/gone.txt', 'removed by the next layer\n', o),
        H.file('data/kept.txt', 'kept\n', o),
        H.dir('data/opaque/', o),
        H.file('data/opaque/old.txt', 'hidden by the opaque marker\n', o),
        H.dir('data/opaque/olddir/', o),
        H.file('data/opaque/olddir/deep', 'hidden too\n', o),
        H.symlink('data/link', 'kept.txt', o),
        H.dir('gonedir/', o),
        H.dir('gonedir/sub/', o),
        H.file('gonedir/sub/x', 'x\n', o),
        H.dir('replace/', o),
        H.dir('replace/dir2file/', o),
        H.file('replace/dir2file/inner', 'inner\n', o),
        H.file('replace/file2dir', 'a file first\n', o),
        H.symlink('replace/link2file', '/etc/passwd', o),
        H.file('replace/file2link', 'a file, then a link\n', o),
        H.dir('bin/', o),
        H.file('bin/tool', '#!/bin/sh\necho tool\n', { ...o, mode: 0o755 }),
        H.file('bin/suid', 'suid\n', { ...o, mode: 0o4755, uid: 0, gid: 0 }),
        H.file('bin/owned', 'owned\n', { ...o, mode: 0o640, uid: 1234, gid: 5678 }),
        H.hardlink('bin/tool-alias', 'bin/tool', o),
        H.device('dev-null', 'char', 1, 3, o),
      ],
    },
    {
      compression: 'gzip',
      entries: [
        H.dir('data/', { ...o, mode: 0o750 }),
        H.file('data/.wh.gone.txt', '', o),
        H.dir('data/opaque/', o),
        H.file('data/opaque/.wh..wh..opq', '', o),
        H.file('data/opaque/new.txt', 'new in layer 2\n', o),
        H.file('.wh.gonedir', '', o),
        H.dir('replace/', o),
        H.file('replace/dir2file', 'now a file\n', o),
        H.dir('replace/file2dir/', o),
        H.file('replace/file2dir/inner', 'now a dir\n', o),
        H.file('replace/link2file', 'now a regular file\n', o),
        H.symlink('replace/file2link', '../etc/hostname', o),
      ],
    },
    {
      compression: 'none',
      entries: [
        H.dir('etc/', o),
        H.file('etc/hostname', 'top\n', { ...o, mode: 0o600 }),
        H.dir('data/', { ...o, mode: 0o750 }),
        H.symlink('data/link', 'opaque/new.txt', o),
        H.dir('top/', o),
        H.file('top/readme', 'top layer\n'.repeat(50), o),
        H.file('gonedir', 'a file where a directory was whited out\n', o),
      ],
    },
  ];
}

describe('checkoutImage', () => {
  it('equals podman\'s merged view of the same image (image mount), entry by entry', async () => {
    const p = new Podman(path.join(work, 'podman-rich'));
    const img = buildTestImage(path.join(work, 'rich'), { layers: richLayers(), label: 'rich' });
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    const dir = path.join(work, 'rich-checkout');
    try {
      await store.commitImage(commitOf(img, ['localhost/rich:1']));
      const r = await checkoutImage(store, 'rich:1', dir);
      expect(r).toMatchObject({ layers: 3, whiteouts: 2, opaqueDirs: 1, image: img.configDigest.slice(7) });
      expect(r.layerIds).toHaveLength(3);
      expect(r.replaced).toBeGreaterThanOrEqual(8);
      const mounted = p.run(['image', 'mount', 'localhost/rich:1']).trim();
      try {
        const diffs = compareTrees(walkTree(mounted), walkTree(dir));
        expect(diffs).toEqual([]);
      } finally {
        p.run(['image', 'unmount', 'localhost/rich:1']);
      }
      // What the merge rules must have produced, spelled out.
      expect(fs.existsSync(path.join(dir, 'data/gone.txt'))).toBe(false);
      expect(fs.readdirSync(path.join(dir, 'data/opaque'))).toEqual(['new.txt']);
      expect(fs.readFileSync(path.join(dir, 'gonedir'), 'utf8')).toMatch(/a file where/);
      expect(fs.lstatSync(path.join(dir, 'replace/dir2file')).isFile()).toBe(true);
      expect(fs.lstatSync(path.join(dir, 'replace/file2dir')).isDirectory()).toBe(true);
      expect(fs.lstatSync(path.join(dir, 'replace/link2file')).isFile()).toBe(true);
      expect(fs.readlinkSync(path.join(dir, 'replace/file2link'))).toBe('../etc/hostname');
      expect(fs.statSync(path.join(dir, 'data')).mode & 0o7777).toBe(0o750);
      // Neither whiteout devices nor overlay xattrs made it into the checkout.
      const t = walkTree(dir);
      for (const n of t.nodes.values()) {
        expect(n.type === 'char' && n.rdev === '0:0').toBe(false);
        expect(Object.keys(n.xattrs).filter((k) => k.includes('overlay'))).toEqual([]);
      }
      // An existing non-empty DIR is refused and left alone.
      await expect(checkoutImage(store, 'rich:1', dir)).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      await expect(checkoutImage(store, 'nosuch:1', path.join(work, 'x'))).rejects.toMatchObject({ code: 'CARRIER_NOT_FOUND' });
    } finally {
      await store.close();
      p.reset();
    }
  }, 120_000);

  it('a symlink from one layer and a write through it in the next cannot leave DIR', async () => {
    const outside = path.join(work, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    fs.writeFileSync(path.join(outside, 'victim'), 'untouched\n');
    const layers = path.join(work, 'hostile-layers');
    // Layer 1: `a` -> the outside dir, `b` -> the victim file; layer 2: a directory `a` holding `x`, a file `b`, and
    // a whiteout `c` under a symlinked parent `d` -> outside.
    const l1 = path.join(layers, 'l1');
    const l2 = path.join(layers, 'l2');
    fs.mkdirSync(l1, { recursive: true });
    fs.mkdirSync(path.join(l2, 'a'), { recursive: true });
    fs.mkdirSync(path.join(l2, 'd'), { recursive: true });
    fs.symlinkSync(outside, path.join(l1, 'a'));
    fs.symlinkSync(path.join(outside, 'victim'), path.join(l1, 'b'));
    fs.symlinkSync(outside, path.join(l1, 'd'));
    fs.writeFileSync(path.join(l2, 'a/x'), 'inside\n');
    fs.writeFileSync(path.join(l2, 'b'), 'replaced\n');
    execFileSync('mknod', [path.join(l2, 'd/victim'), 'c', '0', '0']);
    const dst = path.join(work, 'hostile-out');
    const r = await mergeLayers([l1, l2], dst);
    expect(r.layers).toBe(2);
    expect(fs.readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('untouched\n');
    expect(fs.readdirSync(outside)).toEqual(['victim']);
    expect(fs.lstatSync(path.join(dst, 'a')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(dst, 'a/x'), 'utf8')).toBe('inside\n');
    expect(fs.lstatSync(path.join(dst, 'b')).isFile()).toBe(true);
    expect(fs.lstatSync(path.join(dst, 'd')).isDirectory()).toBe(true);
    expect(fs.readdirSync(path.join(dst, 'd'))).toEqual([]);
    // The same through the store: a real image whose second layer writes through the first one's symlink.
    const p = new Podman(path.join(work, 'podman-hostile'));
    const img = buildTestImage(path.join(work, 'hostile-img'), {
      label: 'hostile',
      layers: [
        { compression: 'gzip', entries: [H.symlink('a', outside, o), H.symlink('etc', '/etc', o)] },
        { compression: 'gzip', entries: [H.dir('a/', o), H.file('a/victim', 'overwritten?\n', o), H.dir('etc/', o), H.file('etc/carrier-hostile', 'x', o)] },
      ],
    });
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    try {
      await store.commitImage(commitOf(img, ['localhost/hostile:1']));
      const out = path.join(work, 'hostile-checkout');
      await checkoutImage(store, 'hostile:1', out);
      expect(fs.readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('untouched\n');
      expect(fs.existsSync('/etc/carrier-hostile')).toBe(false);
      expect(fs.readFileSync(path.join(out, 'a/victim'), 'utf8')).toBe('overwritten?\n');
      expect(fs.lstatSync(path.join(out, 'etc')).isDirectory()).toBe(true);
    } finally {
      await store.close();
      p.reset();
    }
  }, 120_000);

  it('`carrier checkout` via the CLI, and abort leaves nothing', async () => {
    const p = new Podman(path.join(work, 'podman-cli'));
    const img = buildTestImage(path.join(work, 'cli-img'), { label: 'cli' });
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    try {
      await store.commitImage(commitOf(img, ['localhost/cli:1']));
      const dir = path.join(work, 'cli-checkout');
      const out = execFileSync('node', [cli, '--root', p.root, '--runroot', p.runroot, 'checkout', 'cli:1', dir]).toString();
      expect(out).toMatch(/Checked out [0-9a-f]{12} \(3 layers\)/);
      expect(fs.readFileSync(path.join(dir, 'top/readme'), 'utf8')).toBe('top layer a\n'.repeat(50));
      const bad = spawnSync('node', [cli, '--root', p.root, '--runroot', p.runroot, 'checkout', 'nosuch', path.join(work, 'n')]);
      expect(bad.status).toBe(125);
      expect(bad.stderr.toString()).toMatch(/nosuch: image not known/);
      const ac = new AbortController();
      ac.abort();
      const aborted = path.join(work, 'aborted');
      await expect(checkoutImage(store, 'cli:1', aborted, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
      expect(fs.existsSync(aborted)).toBe(false);
    } finally {
      await store.close();
      p.reset();
    }
  }, 120_000);
});

describe('exportContainer', () => {
  it('is the checkout of its image plus the container\'s own writes (and deletions)', async () => {
    const p = new Podman(path.join(work, 'podman-export'));
    const img = buildTestImage(path.join(work, 'export-img'), { layers: richLayers(), label: 'export' });
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    try {
      await store.commitImage(commitOf(img, ['localhost/export:1']));
      const c = await store.createContainer('export:1', { names: ['exp'] });
      const rw = store.layerDiffPath(c.layer);
      // The container's writes: a new file, a changed file, a deleted file (whiteout), a deleted tree, an opaque dir.
      fs.mkdirSync(path.join(rw, 'etc'));
      fs.writeFileSync(path.join(rw, 'etc/hostname'), 'container\n');
      fs.writeFileSync(path.join(rw, 'new-file'), 'written by the container\n');
      execFileSync('mknod', [path.join(rw, 'etc/passwd'), 'c', '0', '0']);
      execFileSync('mknod', [path.join(rw, 'bin'), 'c', '0', '0']);
      fs.mkdirSync(path.join(rw, 'top'));
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(rw, 'top')]);
      fs.writeFileSync(path.join(rw, 'top/only'), 'only this\n');

      const tarFile = path.join(work, 'export.tar');
      const r = await exportContainer(store, 'exp', tarFile);
      expect(r.id).toBe(c.id);
      expect(r.bytes).toBe(fs.statSync(tarFile).size);
      const extracted = path.join(work, 'export-x');
      fs.mkdirSync(extracted);
      execFileSync('tar', ['-xpf', tarFile, '-C', extracted, '--numeric-owner']);

      // Expected: the image's checkout with the same changes made by hand.
      const expected = path.join(work, 'export-expected');
      await checkoutImage(store, 'export:1', expected);
      fs.rmSync(path.join(expected, 'etc/hostname'));
      fs.writeFileSync(path.join(expected, 'etc/hostname'), 'container\n');
      fs.writeFileSync(path.join(expected, 'new-file'), 'written by the container\n');
      fs.rmSync(path.join(expected, 'etc/passwd'));
      fs.rmSync(path.join(expected, 'bin'), { recursive: true });
      fs.rmSync(path.join(expected, 'top'), { recursive: true });
      fs.mkdirSync(path.join(expected, 'top'));
      fs.writeFileSync(path.join(expected, 'top/only'), 'only this\n');
      const diffs = compareTrees(walkTree(expected), walkTree(extracted), { fields: ['type', 'mode', 'size', 'content', 'target', 'rdev', 'owner', 'links'] });
      expect(diffs).toEqual([]);

      // The CLI writes the same tar, to a file or to stdout.
      const cliTar = path.join(work, 'export-cli.tar');
      execFileSync('node', [cli, '--root', p.root, '--runroot', p.runroot, 'export', '-o', cliTar, 'exp']);
      const stdout = execFileSync('node', [cli, '--root', p.root, '--runroot', p.runroot, 'export', c.id.slice(0, 12)], { maxBuffer: 1 << 26 });
      const listing = (f: string | Buffer): string[] =>
        execFileSync('tar', ['-tvf', '-', '--numeric-owner'], { input: typeof f === 'string' ? fs.readFileSync(f) : f }).toString().split('\n').map((l) => l.replace(/\s+\d{4}-\d\d-\d\d \d\d:\d\d/, ''));
      expect(listing(cliTar)).toEqual(listing(tarFile));
      expect(listing(stdout)).toEqual(listing(tarFile));
      // Nothing left in the scratch area.
      expect(fs.readdirSync(path.join(p.root, 'carrier-tmp'))).toEqual([]);
      const bad = spawnSync('node', [cli, '--root', p.root, '--runroot', p.runroot, 'export', '-o', path.join(work, 'n.tar'), 'nosuch']);
      expect(bad.status).toBe(125);
    } finally {
      await store.close();
      p.reset();
    }
  }, 120_000);
});

/** A ~300 MiB image: 3 layers of incompressible files (fast to gzip at level 1). */
function bigImage(dir: string): ReturnType<typeof buildTestImage> {
  const layer = (i: number, files: number, size: number): LayerSpec => ({
    compression: 'none',
    entries: [H.dir(`l${i}/`, o), ...Array.from({ length: files }, (_, k) => H.file(`l${i}/f${k}`, crypto.randomBytes(size), o))],
  });
  return buildTestImage(dir, { label: 'big', layers: [layer(0, 10, 10 * MiB), layer(1, 100, MiB), layer(2, 2, 50 * MiB)] });
}

describe('reflinks', () => {
  it('on XFS and btrfs, a ~300 MiB image checked out twice grows used space by < 5% and reports reflinks; on ext4 it copies', async () => {
    const results: Record<string, unknown> = {};
    for (const kind of ['xfs', 'btrfs', 'ext4'] as const) {
      await withLoopFs(kind, 1600, async (mnt) => {
        if (kind === 'xfs') expect(xfsHasReflink(mnt)).toBe(true);
        const img = bigImage(path.join(mnt, 'img'));
        const imageBytes = img.layers.reduce((n, l) => n + l.tar.length, 0);
        expect(imageBytes).toBeGreaterThan(290 * MiB);
        const store = await Store.open({ root: path.join(mnt, 'root'), runroot: path.join(mnt, 'run') });
        try {
          await store.commitImage(commitOf(img, ['localhost/big:1']));
          fs.rmSync(path.join(mnt, 'img'), { recursive: true });
          const before = usage(mnt).used;
          const t0 = performance.now();
          const a = await checkoutImage(store, 'big:1', path.join(mnt, 'co1'));
          const t1 = performance.now();
          const b = await checkoutImage(store, 'big:1', path.join(mnt, 'co2'));
          const t2 = performance.now();
          const grown = usage(mnt).used - before;
          results[kind] = { grownMiB: +(grown / MiB).toFixed(1), imageMiB: +(imageBytes / MiB).toFixed(1), ms: [Math.round(t1 - t0), Math.round(t2 - t1)], method: a.method };
          expect(compareTrees(walkTree(path.join(mnt, 'co1')), walkTree(path.join(mnt, 'co2')), { fields: ['type', 'mode', 'content'] })).toEqual([]);
          if (kind !== 'ext4') {
            expect(a.method).toBe('reflink');
            expect(b.method).toBe('reflink');
            expect(a.bytesCopied).toBe(0);
            expect(a.bytesCloned).toBeGreaterThan(290 * MiB);
            expect(grown).toBeLessThan(imageBytes * 0.05);
            const out = execFileSync('node', [cli, '--root', path.join(mnt, 'root'), '--runroot', path.join(mnt, 'run'), 'checkout', 'big:1', path.join(mnt, 'co3')]).toString();
            expect(out).toMatch(/reflinked \(/);
          } else {
            expect(a.method).not.toBe('reflink');
            expect(a.bytesCloned).toBe(0);
            expect(a.bytesCopied).toBeGreaterThan(290 * MiB);
            expect(grown).toBeGreaterThan(imageBytes * 1.9);
            const out = execFileSync('node', [cli, '--root', path.join(mnt, 'root'), '--runroot', path.join(mnt, 'run'), 'checkout', 'big:1', path.join(mnt, 'co3')]).toString();
            expect(out).toMatch(/copied \(0 B cloned/);
            await expect(checkoutImage(store, 'big:1', path.join(mnt, 'co4'), { mode: 'reflink' })).rejects.toMatchObject({ code: 'CARRIER_NO_REFLINK' });
            expect(fs.existsSync(path.join(mnt, 'co4'))).toBe(false);
          }
        } finally {
          await store.close();
        }
      });
    }
    console.log('checkout space/time:', JSON.stringify(results));
  }, 600_000);
});

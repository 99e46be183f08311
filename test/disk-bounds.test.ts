/**
 * Disk and temp space have bounds (issue 18, 4c): runs of zeros in a layer become holes (a few MB of gzip no longer
 * becomes GBs of disk), the new layers of an image share a byte budget (maxImageBytes) whose excess fails the commit
 * and leaves the store as it was, and a compressed archive is decompressed into TMPDIR only up to a cap.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { applyLayer, assembleLayer, loadImage, CarrierError } from '../src/index.js';
import { Store } from '../src/store/store.js';
import { defaultImageBudget } from '../src/store/layer-pool.js';
import { buildTestImage } from './support/images.js';
import { commitOf, snapshot, storeDirs } from './support/store.js';
import { expectCarrierError, expectRoundTrip } from './support/layer.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

let work: string;
let seq = 0;
const fresh = (tag: string): string => {
  const d = path.join(work, `${tag}-${seq++}`);
  fs.mkdirSync(d);
  return d;
};

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-disk-bounds-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Bytes the file really occupies on disk. */
const onDisk = (file: string): number => fs.statSync(file).blocks * 512;

async function sha256Of(stream: Readable): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of stream) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

describe('runs of zeros are written as holes', { timeout: 300_000 }, () => {
  it('applies a layer holding 2 GiB of zeros (2 MB of gzip) in a few KB of disk, and exports it byte for byte', async () => {
    const size = 2 * GiB;
    const blob = path.join(work, 'zeros.tar.gz');
    // the header, the 2 GiB of content (a multiple of 512: no padding), then the end-of-archive marker
    const compressed = H.writeGzipMembers(blob, [H.header({ name: 'zeros', size, mode: 0o644 }), { fill: 0, length: size + 1024 }]);
    expect(compressed).toBeLessThan(4 * MiB);
    const dir = fresh('zeros');
    const split = path.join(work, 'zeros.tar-split.gz');
    const result = await applyLayer(blob, dir, { tarSplit: split, rootless: false });
    const file = path.join(dir, 'zeros');
    expect(fs.statSync(file).size).toBe(size);
    expect(onDisk(file)).toBeLessThan(1 * MiB);
    // the export reads the holes back as zeros: the same tar, to the byte
    expect(await sha256Of(assembleLayer(split, dir))).toBe(result.diffDigest);
  });

  it('keeps data between and after runs of zeros exact, whatever the chunking, with only the data on disk', async () => {
    const sparse = Buffer.concat([prng(4097, 'head'), Buffer.alloc(3 * MiB), Buffer.from('x'.repeat(10)), Buffer.alloc(100_000), prng(5, 'tail')]);
    const trailing = Buffer.concat([prng(2 * MiB, 'dense'), Buffer.alloc(5 * MiB + 3)]); // ends in a hole: ftruncate
    const smallZeros = Buffer.concat([Buffer.alloc(300 * KiB), Buffer.from('!')]); // a small file (the write pool's)
    const tar = path.join(work, 'mixed.tar');
    fs.writeFileSync(tar, H.tar(H.file('sparse', sparse), H.file('trailing', trailing), H.file('small', smallZeros)));
    for (const chunk of [1000, 4096, 1 << 20]) {
      const dir = fresh(`mixed-${chunk}`);
      const split = path.join(work, `mixed-${chunk}.tar-split.gz`);
      const result = await applyLayer(fs.createReadStream(tar, { highWaterMark: chunk }), dir, { tarSplit: split, rootless: false });
      expect(fs.readFileSync(path.join(dir, 'sparse')).equals(sparse)).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'trailing')).equals(trailing)).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'small')).equals(smallZeros)).toBe(true);
      expect(onDisk(path.join(dir, 'sparse'))).toBeLessThanOrEqual(64 * KiB);
      expect(onDisk(path.join(dir, 'trailing'))).toBeLessThan(2 * MiB + 64 * KiB);
      expect(onDisk(path.join(dir, 'small'))).toBeLessThanOrEqual(64 * KiB);
      await expectRoundTrip(tar, split, dir, result);
    }
  });
});

describe('holes in the stores of both drivers', { timeout: 300_000 }, () => {
  /** Every regular file named `name` under `dir`. */
  const findAll = (dir: string, name: string): string[] =>
    fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => path.basename(p) === name).map((p) => path.join(dir, p)).filter((p) => fs.lstatSync(p).isFile());

  for (const driver of ['overlay', 'vfs'] as const) {
    it(`keeps runs of zeros as holes in the ${driver} driver's store, through a child layer and a container's copy`, async () => {
      const zeros = Buffer.alloc(64 * MiB);
      const img = buildTestImage(fresh(`${driver}-image`), {
        layers: [
          { entries: [H.file('sparse-file', Buffer.concat([Buffer.from('start'), zeros, Buffer.from('end')]))], compression: 'gzip' },
          { entries: [H.file('other', 'x')], compression: 'gzip' },
        ],
      });
      const dirs = storeDirs(fresh(`${driver}-store`));
      const store = await Store.open({ ...dirs, driver });
      try {
        const { id } = await store.commitImage(commitOf(img, ['localhost/sparse:1']));
        await store.createContainer(id);
        const copies = findAll(dirs.root, 'sparse-file');
        expect(copies.length).toBeGreaterThanOrEqual(driver === 'vfs' ? 3 : 1); // vfs: the base, the child, the container
        for (const f of copies) {
          expect(fs.statSync(f).size).toBe(64 * MiB + 8);
          expect(onDisk(f), f).toBeLessThan(1 * MiB);
        }
      } finally {
        await store.close();
      }
    });
  }
});

describe('a byte budget per image', { timeout: 120_000 }, () => {
  const image = (dir: string) =>
    buildTestImage(dir, {
      layers: [
        { entries: [H.file('a', prng(600 * KiB, 'a')), H.file('zeros', Buffer.alloc(10 * MiB))], compression: 'gzip' },
        { entries: [H.file('b', prng(600 * KiB, 'b'))], compression: 'gzip' },
      ],
    });

  it('refuses an image whose layers write more than maxImageBytes, leaving the store as it was', async () => {
    const img = image(fresh('budget-image'));
    const dirs = storeDirs(fresh('budget-store'));
    const store = await Store.open(dirs);
    try {
      const other = buildTestImage(fresh('other-image'), { layers: [{ entries: [H.file('small', 'x')], compression: 'gzip' }] });
      await store.commitImage(commitOf(other, ['localhost/other:1']));
      const before = snapshot(dirs.root);
      const err = await expectCarrierError(store.commitImage(commitOf(img, ['localhost/budget:1']), { maxImageBytes: 1 * MiB }));
      expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
      expect(err.message).toMatch(/layers write more than its budget of 1048576 bytes to disk \(maxImageBytes\)/);
      expect(snapshot(dirs.root)).toEqual(before);
      expect((await store.images()).map((i) => i.names)).toEqual([['localhost/other:1']]);
      // 1.2 MB of data and 10 MiB of zeros: the zeros are holes and cost nothing
      const ok = await store.commitImage(commitOf(img, ['localhost/budget:1']), { maxImageBytes: 1_300_000 });
      expect(ok.id).toBe(img.configDigest.slice(7));
    } finally {
      await store.close();
    }
  });

  it('defaults to 50 times the declared compressed size, at least 8 GiB', () => {
    expect(defaultImageBudget([])).toBe(8 * GiB);
    expect(defaultImageBudget([2_300_000, undefined])).toBe(8 * GiB);
    expect(defaultImageBudget([1 * GiB, 1 * GiB])).toBe(100 * GiB);
  });
});

describe('compressed archives are decompressed into TMPDIR within a cap', { timeout: 120_000 }, () => {
  /** A gzip archive whose tar is `size` bytes: a header, then zeros (as small as a bomb can be). */
  function bomb(size: number): string {
    const file = path.join(work, `bomb-${seq++}.tar.gz`);
    H.writeGzipMembers(file, [H.header({ name: 'manifest.json', size: size - 512 - 1024 }), { fill: 0, length: size - 512 }]);
    return file;
  }

  it('refuses an archive that decompresses past maxDecompressedBytes, removing what it wrote', async () => {
    const tmpDir = fresh('tmp-cap');
    const dirs = storeDirs(fresh('archive-store'));
    const store = await Store.open(dirs);
    try {
      const before = snapshot(dirs.root);
      const err = await expectCarrierError(loadImage(store, bomb(100 * MiB), { tmpDir, maxDecompressedBytes: 10 * MiB }));
      expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
      expect(err.message).toMatch(/decompresses to more than 10485760 bytes \(maxDecompressedBytes\)/);
      expect(fs.readdirSync(tmpDir)).toEqual([]);
      expect(snapshot(dirs.root)).toEqual(before);
    } finally {
      await store.close();
    }
  });

  it('by default stops before the temp file system is full (a 32 MiB tmpfs, an archive of 200 MiB)', async () => {
    const tmpDir = fresh('tmpfs');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', tmpDir]);
    const dirs = storeDirs(fresh('archive-store'));
    const store = await Store.open(dirs);
    try {
      const err = await expectCarrierError(loadImage(store, bomb(200 * MiB), { tmpDir }));
      expect(err).toBeInstanceOf(CarrierError);
      expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
      expect(err.message).toMatch(/nine tenths of the free space in/);
      expect(fs.readdirSync(tmpDir)).toEqual([]);
    } finally {
      await store.close();
      execFileSync('umount', [tmpDir]);
    }
  });
});

/**
 * zstd-compressed archives are decoded by the addon's native zstd on a worker thread (src/load/compression.ts over
 * native/decompress_job.cc): multi-frame streams, long streams with flat memory and backpressure both ways, corrupt
 * or cut-short input refused with CARRIER_BAD_COMPRESSION, and `carrier load` of a zstd-compressed oci-archive.
 * Streams are made by the zstd CLI, never by Carrier.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { decompressor } from '../src/load/compression.js';
import { openImageArchive } from '../src/load/index.js';
import * as H from './support/hostile.js';
import { prng, tempDir, textContent } from './support/fixtures.js';
import { buildTestImage, requireTools, toDockerArchive, toOciArchive, Podman, removeWorkDir, type TestImage } from './support/images.js';

const T = 180_000;
const MiB = 1 << 20;
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

let work: string;

beforeAll(() => {
  work = tempDir('zstd-archive');
});
afterAll(() => removeWorkDir(work));

/** Everything the zstd decoder makes of `input` (fed in `chunk`-sized writes). */
async function decode(input: Buffer, chunk = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) parts.push(input.subarray(i, i + chunk));
  await pipeline(
    Readable.from(parts),
    decompressor('zstd'),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(Error);
  return err as { code?: string; message: string };
}

/**
 * Writes `zstd -1` of `blocks` MiB-sized blocks, each different, to `file`; returns the data's sha256. The blocks
 * are compressible text, or pseudo-random bytes that zstd cannot shrink.
 */
async function bigZstd(file: string, blocks: number, random = false): Promise<string> {
  const hash = crypto.createHash('sha256');
  const child = spawn('zstd', ['-q', '-c', '-1'], { stdio: ['pipe', fs.openSync(file, 'w'), 'inherit'] });
  const base = random ? prng(MiB, 'random') : textContent(MiB, 7);
  for (let i = 0; i < blocks; i++) {
    const block = Buffer.from(base);
    block.writeUInt32BE(i, (i * 4096) % (MiB - 4));
    hash.update(block);
    if (!child.stdin.write(block)) await once(child.stdin, 'drain');
  }
  child.stdin.end();
  const [code] = (await once(child, 'close')) as [number];
  expect(code).toBe(0);
  return hash.digest('hex');
}

describe('native zstd stream decoder', () => {
  it('decodes concatenated frames, a skippable frame among them, to the concatenation', async () => {
    const a = prng(300_000, 'a');
    const b = textContent(2 * MiB + 17, 3);
    const c = Buffer.from('tail');
    const skippable = Buffer.alloc(8 + 5);
    skippable.writeUInt32LE(0x184d2a50, 0);
    skippable.writeUInt32LE(5, 4);
    const stream = Buffer.concat([H.zstd(a), H.zstd(b), skippable, H.zstd(c)]);
    for (const chunk of [4096, 1_000_003, stream.length]) {
      expect((await decode(stream, chunk)).equals(Buffer.concat([a, b, c]))).toBe(true);
    }
    // One byte per write: every frame boundary and frame header falls across writes.
    expect(await decode(Buffer.concat([H.zstd(c), skippable, H.zstd(c)]), 1)).toEqual(Buffer.from('tailtail'));
  }, T);

  it('an empty frame decodes to nothing; an empty file is not a zstd stream', async () => {
    expect((await decode(H.zstd(Buffer.alloc(0)))).length).toBe(0);
    const err = await rejection(decode(Buffer.alloc(0)));
    expect(err.code).toBe('CARRIER_BAD_COMPRESSION');
  });

  it('decodes a 256 MiB stream with memory that does not grow with it', async () => {
    const file = path.join(work, 'big.zst');
    const want = await bigZstd(file, 256);
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    const before = process.memoryUsage().rss;
    let peak = before;
    await pipeline(
      fs.createReadStream(file, { highWaterMark: MiB }),
      decompressor('zstd'),
      new Writable({
        write(c: Buffer, _e, cb) {
          hash.update(c);
          bytes += c.length;
          peak = Math.max(peak, process.memoryUsage().rss);
          cb();
        },
      }),
    );
    expect(bytes).toBe(256 * MiB);
    expect(hash.digest('hex')).toBe(want);
    // Holding the output would take 256 MiB; the decoder keeps a few 1 MiB chunks in flight.
    expect(peak - before).toBeLessThan(96 * MiB);
  }, T);

  it('stops decoding while the reader is behind, and stops taking input while it is stopped', async () => {
    const file = path.join(work, 'slow.zst');
    const want = await bigZstd(file, 32, true);
    const dec = decompressor('zstd');
    const source = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    source.pipe(dec);
    // Nobody reads: the decoder fills its credit and waits; the file read then stalls on the full input queue.
    await new Promise((r) => setTimeout(r, 1500));
    expect(dec.readableLength).toBeLessThanOrEqual(8 * MiB);
    expect(source.bytesRead).toBeLessThan(16 * MiB);
    expect(fs.statSync(file).size).toBeGreaterThan(32 * MiB);
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    for await (const c of dec) {
      hash.update(c as Buffer);
      bytes += (c as Buffer).length;
    }
    expect(bytes).toBe(32 * MiB);
    expect(hash.digest('hex')).toBe(want);
  }, T);

  it('refuses corrupt, cut-short and non-zstd input with CARRIER_BAD_COMPRESSION', async () => {
    const good = H.zstd(textContent(4 * MiB, 11));
    const flipped = Buffer.from(good);
    for (let i = 0; i < 64; i++) flipped[Math.floor(good.length / 2) + i] ^= 0xa5;
    const cases: Array<[string, Buffer]> = [
      ['bytes flipped in the middle', flipped],
      ['cut short', good.subarray(0, Math.floor(good.length * 0.6))],
      ['cut inside the frame header', good.subarray(0, 5)],
      ['not zstd at all', Buffer.from('this is not a zstd stream, just text\n'.repeat(100))],
      ['a good frame followed by garbage', Buffer.concat([good, Buffer.from('garbage!')])],
    ];
    for (const [name, input] of cases) {
      const err = await rejection(decode(input));
      expect({ name, code: err.code }).toEqual({ name, code: 'CARRIER_BAD_COMPRESSION' });
      expect(err.message).toMatch(/^corrupt zstd data: /);
    }
  }, T);

  it('destroying the stream mid-way stops the native decoder and reports nothing more', async () => {
    const file = path.join(work, 'abort.zst');
    await bigZstd(file, 32);
    const dec = decompressor('zstd');
    const errors: unknown[] = [];
    dec.on('error', (e) => errors.push(e));
    fs.createReadStream(file).pipe(dec);
    await once(dec, 'readable');
    dec.destroy();
    await once(dec, 'close');
    await new Promise((r) => setTimeout(r, 200));
    expect(errors).toEqual([]);
  }, T);
});

describe('zstd-compressed archives', () => {
  let img: TestImage;

  beforeAll(() => {
    requireTools();
    img = buildTestImage(path.join(work, 'oci'), { tag: 'v1' });
  }, T);

  it('a docker-archive whose layer files are zstd: layers served decompressed, sized and addressed by DiffID', async () => {
    const plain = path.join(work, 'plain.docker.tar');
    toDockerArchive(img, plain, 'example.com/zstd/a:v1');
    const dir = tempDir('zstd-layers');
    try {
      spawnSync('tar', ['-C', dir, '-xf', plain], { stdio: 'inherit' });
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
      for (const layer of manifest[0]!.Layers) {
        const f = path.join(dir, layer);
        fs.writeFileSync(f, H.zstd(fs.readFileSync(f)));
      }
      const archive = path.join(work, 'zstd-layers.docker.tar');
      spawnSync('tar', ['-C', dir, '-cf', archive, ...fs.readdirSync(dir)], { stdio: 'inherit' });
      const a = await openImageArchive(archive);
      try {
        const layers = a.images[0]!.layers;
        expect(layers.map((l) => l.diffID)).toEqual(img.diffIDs);
        for (const [i, l] of layers.entries()) {
          const tar = Buffer.concat(await Readable.from(await l.open()).toArray());
          expect(tar.length).toBe(l.size);
          expect(`sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`).toBe(img.diffIDs[i]);
        }
      } finally {
        await a.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, T);

  it('`carrier load` of a zstd-compressed oci-archive stores the image podman then reads', () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
    const tar = path.join(work, 'b.oci.tar');
    toOciArchive(img, tar, 'example.com/zstd/b:v2');
    const zst = path.join(work, 'b.oci.tar.zst');
    fs.writeFileSync(zst, H.zstd(fs.readFileSync(tar)));
    const podman = new Podman(path.join(work, 'pz'));
    const r = spawnSync(process.execPath, [CLI, '--root', podman.root, '--runroot', podman.runroot, 'load', '-i', zst], {
      env: podman.env,
      encoding: 'utf8',
    });
    expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 0 });
    expect(r.stdout).toMatch(/Loaded image: example\.com\/zstd\/b:v2/);
    const inspected = JSON.parse(podman.run(['image', 'inspect', 'example.com/zstd/b:v2'])) as { Id: string; RootFS: { Layers: string[] } }[];
    expect(inspected[0]!.Id).toBe(img.configDigest.slice(7));
    expect(inspected[0]!.RootFS.Layers).toEqual(img.diffIDs);
  }, T);
});

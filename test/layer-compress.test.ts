/**
 * compressLayer: a layer's tar in, its compressed blob out, with the diff_id, the digest and the tar-split from the
 * same pass. Checked with real peers: the gzip and zstd CLIs decompress what it writes, applyLayer + assembleLayer
 * rebuild the tar byte for byte from the tar-split it records (and that tar-split is the one applyLayer records), a
 * 512 MiB layer passes through in flat memory, and an abort, a corrupt tar and a failing source stop it cleanly.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer, assembleLayer, compressLayer, version, type LayerCompression } from '../src/index.js';
import * as F from './support/fixtures.js';
import { expectCarrierError, firstDifference, neverEnding, readAll } from './support/layer.js';

let work: string;
let tarFile: string;
let tar: Buffer;
let seq = 0;
const fresh = (tag: string): string => path.join(work, `${tag}-${seq++}`);
const digestOf = (b: Buffer): string => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  work = F.tempDir('compress');
  // A few MiB over several compression blocks: text, an incompressible file, long names, links, xattrs (PAX).
  const src = F.buildMediumTree(path.join(work, 'medium-src'));
  fs.writeFileSync(path.join(src.root, 'dir4/zeros.bin'), Buffer.alloc(5 * F.MiB + 3));
  // Machine code (a slice of the node binary) over many compression blocks: real data, where a compressor that kept
  // state from one block to the next would give bytes that depend on which thread took which block.
  const fd = fs.openSync(process.execPath, 'r');
  const code = Buffer.alloc(12 * F.MiB);
  fs.readSync(fd, code, 0, code.length, 0);
  fs.closeSync(fd);
  fs.writeFileSync(path.join(src.root, 'dir5/code.bin'), code);
  fs.mkdirSync(path.join(src.root, 'n'.repeat(120)));
  fs.writeFileSync(path.join(src.root, 'n'.repeat(120), 'x'.repeat(140)), 'long name\n');
  F.run('setfattr', ['-n', 'user.note', '-v', 'kept', path.join(src.root, 'zz-last.txt')]);
  tarFile = path.join(work, 'medium.tar');
  F.gnuTar({ root: src.root, topLevel: fs.readdirSync(src.root).sort() }, tarFile, 'posix');
  tar = fs.readFileSync(tarFile);
}, 120_000);

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** `data` in chunks of odd, varying sizes (1 byte to ~300 KiB), so block edges fall everywhere. */
function oddChunks(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      let off = 0;
      for (let k = 0; off < data.length; k++) {
        const n = k % 3 === 0 ? 1 + (k % 7) : 4093 * (1 + (k % 75));
        yield data.subarray(off, off + n);
        off += n;
      }
    })(),
  );
}

async function compressToFile(source: Readable, out: string, options: Parameters<typeof compressLayer>[1]) {
  const job = compressLayer(source, options);
  await pipeline(job.stream, fs.createWriteStream(out));
  return job.result;
}

function cliDecompress(kind: 'gzip' | 'zstd', file: string): Buffer {
  return kind === 'gzip' ? F.run('gzip', ['-dc', file]) : F.run('zstd', ['-dcq', file]);
}

describe('compressLayer round trips', () => {
  for (const compression of ['gzip', 'zstd'] as const) {
    it(`${compression}: the CLI decompresses it to the tar, the digests and sizes are the stream's, and the tar-split rebuilds the tar`, async () => {
      const blob = fresh(`blob.${compression}`);
      const split = fresh('split.gz');
      const r = await compressToFile(fs.createReadStream(tarFile), blob, { compression, tarSplitPath: split });
      const compressed = fs.readFileSync(blob);
      expect(firstDifference(cliDecompress(compression, blob), tar)).toBe(-1);
      expect(r.diffID).toBe(digestOf(tar));
      expect(r.uncompressedSize).toBe(tar.length);
      expect(r.digest).toBe(digestOf(compressed));
      expect(r.size).toBe(compressed.length);
      expect(r.size).toBeLessThan(tar.length / 2);

      // The tar-split is the one applyLayer records for the same tar, and it rebuilds the tar byte for byte.
      const dir = fresh('tree');
      fs.mkdirSync(dir);
      const applySplit = fresh('apply-split.gz');
      const applied = await applyLayer(blob, dir, { tarSplit: applySplit });
      expect(applied.diffDigest).toBe(r.diffID);
      expect(applied.compressedDigest).toBe(r.digest);
      expect(zlib.gunzipSync(fs.readFileSync(split)).equals(zlib.gunzipSync(fs.readFileSync(applySplit)))).toBe(true);
      const rebuilt = await readAll(assembleLayer(split, dir));
      expect(firstDifference(rebuilt, tar)).toBe(-1);
    });
  }

  it("rebuilds an unread assembleLayer stream inside the job: the same bytes, progress counts the tar, an abort and a changed file stop it", async () => {
    const blob = fresh('blob.gz');
    const split = fresh('split.gz');
    const first = await compressToFile(fs.createReadStream(tarFile), blob, { compression: 'gzip', tarSplitPath: split });
    const dir = fresh('tree');
    fs.mkdirSync(dir);
    await applyLayer(blob, dir, {});
    for (const variant of [{ compression: 'gzip' }, { compression: 'gzip', isalLevel: 3 }, { compression: 'zstd' }] as const) {
      const fromStream = await compressToFile(fs.createReadStream(tarFile), fresh('blob'), variant);
      const seen: number[] = [];
      const rebuilt = await compressToFile(assembleLayer(split, dir), fresh('blob'), { ...variant, threads: 2, onTarBytes: (n) => seen.push(n) });
      expect(rebuilt, JSON.stringify(variant)).toEqual(fromStream);
      expect(rebuilt.diffID).toBe(first.diffID);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((n, i) => i === 0 || n >= seen[i - 1]!)).toBe(true);
      expect(seen[seen.length - 1]).toBe(tar.length);
    }
    // Aborted: ABORT_ERR, whatever the rebuilding thread was doing.
    const ac = new AbortController();
    const aborted = compressLayer(assembleLayer(split, dir), { compression: 'zstd', signal: ac.signal });
    aborted.stream.on('error', () => {});
    ac.abort();
    expect((await expectCarrierError(aborted.result)).code).toBe('ABORT_ERR');
    // A file that no longer matches the CRC-64 the tar-split records stops the job.
    fs.appendFileSync(path.join(dir, 'zz-last.txt'), 'changed');
    const job = compressLayer(assembleLayer(split, dir), { compression: 'gzip' });
    job.stream.on('error', () => {}).resume();
    expect((await expectCarrierError(job.result)).code).toBe('CARRIER_DIGEST_MISMATCH');
  });

  it('records the content of an entry no file will hold (a whiteout with data) in the tar-split as applyLayer does', async () => {
    const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);
    const odd = Buffer.concat([
      F.ustarHeader('d/', 0, '5', 0o755),
      F.ustarHeader('d/.wh.gone', 5),
      Buffer.from('hello'),
      pad(5),
      F.ustarHeader('d/f', 3),
      Buffer.from('abc'),
      pad(3),
      Buffer.alloc(1024),
    ]);
    const split = fresh('split.gz');
    const blob = fresh('blob.gz');
    await compressToFile(Readable.from([odd]), blob, { compression: 'gzip', tarSplitPath: split });
    const dir = fresh('tree');
    fs.mkdirSync(dir);
    const applySplit = fresh('apply-split.gz');
    await applyLayer(blob, dir, { tarSplit: applySplit });
    expect(zlib.gunzipSync(fs.readFileSync(split)).toString()).toBe(zlib.gunzipSync(fs.readFileSync(applySplit)).toString());
    expect((await readAll(assembleLayer(split, dir))).equals(odd)).toBe(true);
  });

  it('gives the same bytes whatever the number of threads and however the input is chunked', async () => {
    const variants = [{ compression: 'gzip', level: 1 }, { compression: 'gzip' }, { compression: 'gzip', isalLevel: 3 }, { compression: 'zstd' }, { compression: 'none' }] as const;
    for (const variant of variants) {
      const digests = new Set<string>();
      for (const threads of [1, 2, 5]) {
        const r = await compressToFile(fs.createReadStream(tarFile, { highWaterMark: 65_536 + threads }), fresh('blob'), { ...variant, threads });
        digests.add(r.digest);
      }
      const odd = await compressToFile(oddChunks(tar), fresh('blob'), { ...variant, threads: 2 });
      digests.add(odd.digest);
      expect([...digests], JSON.stringify(variant)).toHaveLength(1);
    }
  }, 120_000);

  it("'none' passes the tar through: its digest is the diff_id", async () => {
    const out = fresh('blob.tar');
    const r = await compressToFile(fs.createReadStream(tarFile), out, { compression: 'none' });
    expect(firstDifference(fs.readFileSync(out), tar)).toBe(-1);
    expect(r.digest).toBe(r.diffID);
    expect(r.size).toBe(tar.length);
  });

  it('honours the level: gzip -1 is larger than gzip -9, both decompress', async () => {
    const sizes: number[] = [];
    for (const level of [1, 9]) {
      const blob = fresh('blob.gz');
      const r = await compressToFile(fs.createReadStream(tarFile), blob, { compression: 'gzip', level });
      expect(firstDifference(cliDecompress('gzip', blob), tar)).toBe(-1);
      sizes.push(r.size);
    }
    expect(sizes[0]).toBeGreaterThan(sizes[1]!);
  });

  it("gzip through ISA-L's deflate (where libisal loads) decompresses to the tar; the addon's version names it when used", async () => {
    const zlibBlob = fresh('zlib.gz');
    const zlibResult = await compressToFile(fs.createReadStream(tarFile), zlibBlob, { compression: 'gzip' });
    for (const isalLevel of [1, 3]) {
      const blob = fresh('isal.gz');
      const r = await compressToFile(fs.createReadStream(tarFile), blob, { compression: 'gzip', isalLevel });
      expect(firstDifference(cliDecompress('gzip', blob), tar)).toBe(-1);
      expect(r.diffID).toBe(digestOf(tar));
      expect(r.digest).toBe(digestOf(fs.readFileSync(blob)));
      // With libisal the bytes are ISA-L's; without it, zlib's at the (default) level.
      if (/ isa-l\//.test(version)) expect(r.digest).not.toBe(zlibResult.digest);
      else expect(r.digest).toBe(zlibResult.digest);
    }
  });

  it('compresses an empty tar (only the end-of-archive blocks) to a valid stream', async () => {
    const empty = Buffer.alloc(1024);
    for (const options of [{ compression: 'gzip' }, { compression: 'gzip', isalLevel: 3 }, { compression: 'zstd' }] as const) {
      const blob = fresh('blob');
      const r = await compressToFile(Readable.from([empty]), blob, options);
      expect(cliDecompress(options.compression, blob).equals(empty)).toBe(true);
      expect(r.entries).toBe(0);
    }
  });
});

/** A tar holding one file of `size` zero bytes, generated as it is read (1 MiB chunks, one shared buffer). */
function zeroTar(size: number): Readable {
  const zeros = Buffer.alloc(F.MiB);
  return Readable.from(
    (function* () {
      yield zeroTarHead('zeros.bin', size);
      let left = size;
      while (left > 0) {
        const n = Math.min(left, zeros.length);
        yield zeros.subarray(0, n);
        left -= n;
      }
      yield Buffer.alloc(((512 - (size % 512)) % 512) + 1024);
    })(),
  );
}

/** The ustar header of a regular file `name` of `size` bytes (sizes past 8 GiB do not fit: not needed here). */
function zeroTarHead(name: string, size: number): Buffer {
  const head = Buffer.alloc(512);
  head.write(name, 0, 'latin1');
  head.write('0000644\0', 100, 'latin1');
  head.write('0000000\0', 108, 'latin1');
  head.write('0000000\0', 116, 'latin1');
  head.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  head.write((1_700_000_000).toString(8).padStart(11, '0') + '\0', 136, 'latin1');
  head.write('0', 156, 'latin1');
  head.write('ustar\0' + '00', 257, 'latin1');
  F.writeChecksum(head);
  return head;
}

describe('compressLayer at scale', () => {
  it('streams a 512 MiB layer through in flat memory, and zstd -d agrees on every byte', async () => {
    const size = 512 * F.MiB;
    const expected = crypto.createHash('sha256');
    const source = zeroTar(size);
    source.on('data', (c: Buffer) => expected.update(c));
    const job = compressLayer(source, { compression: 'zstd', tarSplitPath: fresh('split.gz') });
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const unzstd = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const decompressed = crypto.createHash('sha256');
    const drained = pipeline(unzstd.stdout, async function* (chunks) {
      for await (const c of chunks) decompressed.update(c as Buffer);
    });
    try {
      await pipeline(job.stream, unzstd.stdin);
      await drained;
      const r = await job.result;
      const tarDigest = 'sha256:' + expected.digest('hex');
      expect(r.diffID).toBe(tarDigest);
      expect('sha256:' + decompressed.digest('hex')).toBe(tarDigest);
      expect(r.uncompressedSize).toBe(size + 512 + 1024);
    } finally {
      clearInterval(timer);
    }
    // Generous: the native queues hold a few tens of MiB at most; buffering the layer would be 512 MiB.
    expect(peak - rssBefore).toBeLessThan(160 * F.MiB);
  }, 300_000);
});

describe('compressLayer failures', () => {
  it('stops on abort mid-stream: ABORT_ERR, the source destroyed, the partial tar-split removed', async () => {
    const head = zeroTarHead('endless.bin', 8 * 1024 * F.MiB - 1);
    const source = neverEnding(head, Buffer.alloc(F.MiB));
    const split = fresh('split.gz');
    const ac = new AbortController();
    const job = compressLayer(source, { compression: 'gzip', level: 1, tarSplitPath: split, signal: ac.signal });
    let received = 0;
    const consumed = (async () => {
      for await (const c of job.stream) {
        received += (c as Buffer).length;
        if (received > 64 * 1024) ac.abort();
      }
    })();
    const err = await expectCarrierError(job.result);
    expect(err.code).toBe('ABORT_ERR');
    await expect(consumed).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(source.destroyed).toBe(true);
    expect(fs.existsSync(split)).toBe(false);
  });

  it('stops when the reader destroys the compressed stream early', async () => {
    const source = neverEnding(zeroTarHead('endless.bin', 8 * 1024 * F.MiB - 1), Buffer.alloc(F.MiB));
    const job = compressLayer(source, { compression: 'zstd' });
    for await (const _ of job.stream) break; // destroys the stream
    expect((await expectCarrierError(job.result)).code).toBe('ABORT_ERR');
    expect(source.destroyed).toBe(true);
  });

  it('refuses input that is not a tar (CARRIER_BAD_TAR) and removes the tar-split', async () => {
    const split = fresh('split.gz');
    const job = compressLayer(Readable.from([F.prng(3 * F.MiB, 'not a tar')]), { compression: 'gzip', tarSplitPath: split });
    job.stream.on('error', () => {}).resume();
    expect((await expectCarrierError(job.result)).code).toBe('CARRIER_BAD_TAR');
    expect(fs.existsSync(split)).toBe(false);
  });

  it('refuses a corrupted header in the middle of a tar, and a truncated tar', async () => {
    const corrupt = Buffer.from(tar);
    const second = F.tarHeaders(tarFile)[3]!;
    corrupt[second.offset + 5] ^= 0xff;
    const bad = compressLayer(Readable.from([corrupt]), { compression: 'zstd' });
    bad.stream.on('error', () => {}).resume();
    expect((await expectCarrierError(bad.result)).code).toBe('CARRIER_BAD_TAR');

    const cut = compressLayer(Readable.from([tar.subarray(0, second.offset + 100)]), { compression: 'zstd' });
    cut.stream.on('error', () => {}).resume();
    expect((await expectCarrierError(cut.result)).code).toBe('CARRIER_TRUNCATED');
  });

  it("reports the source stream's failure", async () => {
    const source = new Readable({ read() {} });
    const job = compressLayer(source, { compression: 'gzip' });
    job.stream.on('error', () => {}).resume();
    source.push(tar.subarray(0, 4096));
    setImmediate(() => source.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' })));
    const err = await expectCarrierError(job.result);
    expect(err.code).toBe('EIO');
    expect(err.message).toContain('disk on fire');
  });

  it('refuses unknown compressions, levels out of range and bad thread counts', () => {
    const s = (): Readable => Readable.from([]);
    expect(() => compressLayer(s(), { compression: 'xz' as LayerCompression })).toThrow(/unknown compression/);
    expect(() => compressLayer(s(), { compression: 'gzip', level: 10 })).toThrow(/level/);
    expect(() => compressLayer(s(), { compression: 'zstd', level: 0 })).toThrow(/level/);
    expect(() => compressLayer(s(), { threads: 0 })).toThrow(/threads/);
    expect(() => compressLayer(s(), { compression: 'gzip', isalLevel: 4 })).toThrow(/ISA-L gzip level/);
  });
});

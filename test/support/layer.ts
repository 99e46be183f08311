/** Small helpers shared by the layer tests: expecting CarrierErrors, collecting streams, feeding odd streams. */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import crypto from 'node:crypto';
import { expect } from 'vitest';
import { CarrierError, assembleLayer, type AppliedLayer } from '../../src/index.js';

/** Awaits a promise that must reject with a CarrierError and returns that error. */
export async function expectCarrierError(p: Promise<unknown>): Promise<CarrierError> {
  let result: unknown;
  try {
    result = await p;
  } catch (err) {
    expect(err, `rejected with ${String(err)}`).toBeInstanceOf(CarrierError);
    return err as CarrierError;
  }
  const shown = Buffer.isBuffer(result) ? `a ${result.length}-byte Buffer` : JSON.stringify(result)?.slice(0, 500);
  throw new Error(`expected a CarrierError, but it resolved with ${shown}`);
}

/** Collects a readable stream into one buffer. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Index of the first differing byte, or -1 when equal. */
export function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let off = 0; off < n; off += 1 << 16) {
    const end = Math.min(n, off + (1 << 16));
    if (!a.subarray(off, end).equals(b.subarray(off, end))) {
      for (let i = off; i < end; i++) if (a[i] !== b[i]) return i;
    }
  }
  return a.length === b.length ? -1 : n;
}

/** The file's bytes as a stream of tiny chunks (1..7 bytes each, cycling). */
export function tinyChunks(file: string): Readable {
  const data = fs.readFileSync(file);
  return Readable.from(
    (function* () {
      let off = 0;
      let k = 0;
      while (off < data.length) {
        const n = 1 + (k++ % 7);
        yield data.subarray(off, off + n);
        off += n;
      }
    })(),
  );
}

/** The bytes of `data`, then an endless stream of `filler` chunks: a layer download that never finishes. */
export function neverEnding(data: Buffer, filler: Buffer): Readable & { produced: () => number } {
  let sentHead = false;
  let produced = 0;
  const r = new Readable({
    read() {
      // Produce asynchronously so the event loop (and the abort timer) keeps running.
      setImmediate(() => {
        if (r.destroyed) return;
        const chunk = sentHead ? filler : data;
        sentHead = true;
        produced += chunk.length;
        r.push(chunk);
      });
    },
  }) as Readable & { produced: () => number };
  r.produced = () => produced;
  return r;
}

export function emptyDir(dir: string): string[] {
  return fs.readdirSync(dir);
}

/**
 * The round-trip property: assembleLayer(tarSplit, dir) yields the original uncompressed tar, byte for byte, and
 * hashes to the diffDigest applyLayer reported.
 */
export async function expectRoundTrip(tarFile: string, tarSplit: string, dir: string, result: AppliedLayer): Promise<void> {
  const rebuilt = await readAll(assembleLayer(tarSplit, dir));
  const original = fs.readFileSync(tarFile);
  expect('sha256:' + crypto.createHash('sha256').update(rebuilt).digest('hex')).toBe(result.diffDigest);
  expect(rebuilt.length).toBe(result.diffSize);
  const at = firstDifference(rebuilt, original);
  expect(at, `first differing byte at offset ${at} (rebuilt ${rebuilt.length} bytes, original ${original.length})`).toBe(-1);
}

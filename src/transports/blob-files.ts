// What the archive and layout writers share: blobs waiting to be written (bytes in memory, or a stream checked
// against its digest and size as it is written — the writer is the boundary that owns that check), a spool
// directory for blobs whose size is only known once they are made (a recompressed layer), and the tar stream.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CarrierError, abortError } from '../errors.js';
import { decompressor, compressionError } from '../load/compression.js';
import { layerCompression } from '../oci/mediatypes.js';
import { END_OF_ARCHIVE, padding, tarHeader, type TarHeaderFields } from '../save/tar.js';
import type { LayerBlob, OpenBlobOptions } from './types.js';
import { chain, tap } from './stream-taps.js';
import { writeOutput, type OutputFileOptions } from './archive-output.js';

/** A blob to write: small bytes, or a stream that must hash to `digest` and be `size` bytes long. */
export type PendingBlob =
  | { kind: 'bytes'; data: Buffer }
  | { kind: 'stream'; digest: string; size: number; what: string; open(options?: OpenBlobOptions): Promise<Readable> };

/** A blob read from a stream (a source's blob, or a file of the spool). */
export type StreamBlob = Extract<PendingBlob, { kind: 'stream' }>;

export function blobSize(b: PendingBlob): number {
  return b.kind === 'bytes' ? b.data.length : b.size;
}

export function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

/** The blob's bytes; a stream is checked against its digest and size as it goes (CARRIER_DIGEST_MISMATCH). */
export async function* blobChunks(blob: PendingBlob, signal?: AbortSignal): AsyncGenerator<Buffer> {
  if (blob.kind === 'bytes') {
    yield blob.data;
    return;
  }
  const stream = await blob.open(signal ? { signal } : {});
  const hash = createHash('sha256');
  let n = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw abortError(signal);
      n += chunk.length;
      if (n > blob.size) break;
      hash.update(chunk);
      yield chunk;
    }
  } finally {
    stream.destroy();
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if (n !== blob.size || digest !== blob.digest) {
    throw new CarrierError('CARRIER_DIGEST_MISMATCH', `${blob.what} gave ${n > blob.size ? 'more than ' : ''}${n} bytes with ${digest}, expected ${blob.size} bytes with ${blob.digest}`);
  }
}

/** A directory for made blobs, created on first use and removed with everything in it. */
export class Spool {
  private dir: string | undefined;
  constructor(private readonly parent: string = tmpdir()) {}

  async path(name: string): Promise<string> {
    this.dir ??= await mkdtemp(join(this.parent, 'carrier-copy-'));
    return join(this.dir, name);
  }

  async remove(): Promise<void> {
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

/** A file of the spool as a blob (its digest is checked again as it is written out). */
function spooled(file: string, digest: string, size: number): StreamBlob {
  return {
    kind: 'stream',
    digest,
    size,
    what: `blob ${digest} (${file})`,
    open: async () => (await open(file, 'r')).createReadStream({ highWaterMark: 1 << 20 }),
  };
}

/** The layer's uncompressed tar, checked against its diff_id, and how to read it. */
async function tarStream(layer: LayerBlob, signal?: AbortSignal): Promise<{ stream: Readable; check: () => void }> {
  const kind = layerCompression(layer.mediaType);
  const tarHash = createHash('sha256');
  let tarBytes = 0;
  const tarCount = tap(tarHash, (n) => void (tarBytes += n));
  const checkTar = (): void => {
    const got = `sha256:${tarHash.digest('hex')}`;
    if (got !== layer.diffID || (layer.diffSize !== undefined && tarBytes !== layer.diffSize)) {
      throw new CarrierError('CARRIER_DIGEST_MISMATCH', `layer ${layer.diffID} read as ${tarBytes} bytes with ${got}`);
    }
  };
  if (layer.openTar) return { stream: chain(await layer.openTar(signal ? { signal } : {}), tarCount), check: checkTar };
  const blob = await layer.open(signal ? { signal } : {});
  if (kind === 'none' || kind === undefined) return { stream: chain(blob, tarCount), check: checkTar };
  const blobHash = createHash('sha256');
  let blobBytes = 0;
  const blobCount = tap(blobHash, (n) => void (blobBytes += n));
  const inflate = decompressor(kind);
  inflate.on('error', (err) => tarCount.destroy(compressionError(kind, err) as Error));
  return {
    stream: chain(blob, blobCount, inflate, tarCount),
    check: () => {
      const got = `sha256:${blobHash.digest('hex')}`;
      if (got !== layer.digest || blobBytes !== layer.size) {
        throw new CarrierError('CARRIER_DIGEST_MISMATCH', `layer blob ${layer.digest} read as ${blobBytes} bytes with ${got}`);
      }
      checkTar();
    },
  };
}

/** The layer's tar, written to the spool (to learn its size), checked against its digests. */
export async function spoolTar(layer: LayerBlob, spool: Spool, signal?: AbortSignal): Promise<StreamBlob> {
  const file = await spool.path(`${hexOf(layer.diffID)}.tar`);
  const { stream, check } = await tarStream(layer, signal);
  await pipeline(stream, createWriteStream(file, { mode: 0o600 }), signal ? { signal } : {});
  check();
  return spooled(file, layer.diffID, (await stat(file)).size);
}

/** The layer's tar gzip-compressed into the spool (podman save's recompression), checked against its diff_id. */
export async function spoolGzip(layer: LayerBlob, spool: Spool, signal?: AbortSignal): Promise<StreamBlob> {
  const file = await spool.path(`${hexOf(layer.diffID)}.tar.gz`);
  const { stream, check } = await tarStream(layer, signal);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(stream, createGzip(), tap(hash, (n) => void (size += n)), createWriteStream(file, { mode: 0o600 }), signal ? { signal } : {});
  check();
  return spooled(file, `sha256:${hash.digest('hex')}`, size);
}

export interface ArchiveEntry {
  header: TarHeaderFields;
  blob?: PendingBlob;
}

async function* archiveChunks(entries: readonly ArchiveEntry[], counter: { bytes: number }, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const e of entries) {
    if (signal?.aborted) throw abortError(signal);
    const h = tarHeader(e.header);
    counter.bytes += h.length;
    yield h;
    if (e.blob) {
      for await (const chunk of blobChunks(e.blob, signal)) {
        counter.bytes += chunk.length;
        yield chunk;
      }
      const pad = padding(blobSize(e.blob));
      counter.bytes += pad.length;
      if (pad.length > 0) yield pad;
    }
  }
  counter.bytes += END_OF_ARCHIVE.length;
  yield END_OF_ARCHIVE;
}

/**
 * Writes the entries as a tar to a file (see archive-output.ts: a regular file is replaced only once complete, a FIFO
 * or device is written as it is, nothing Carrier did not create is removed) or a stream. Returns its size.
 */
export async function writeTar(entries: readonly ArchiveEntry[], output: string | Writable, signal?: AbortSignal, options: OutputFileOptions = {}): Promise<number> {
  const counter = { bytes: 0 };
  await writeOutput(output, Readable.from(archiveChunks(entries, counter, signal)), options);
  return counter.bytes;
}

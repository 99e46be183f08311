// A layer out of an overlay upper directory in one native pass: the walk and the tar (the bytes overlayDiffStream
// yields), the diff_id, the compression on several cores, the digest, and the blob written to a file — no tar bytes
// cross into JavaScript. What a commit of an overlay container runs instead of reading the driver's diff stream.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarrierError, abortError, fromNative } from '../errors.js';
import type { NativeFailure } from '../errors.js';
import { awaitNativeJob } from '../fs/clone.js';
import { native } from '../native.js';
import { compressSettings, type CompressedLayer, type LayerCompression } from './compress.js';

export interface DiffLayerOptions {
  /** The blob file to write (created, or truncated when it exists). */
  out: string;
  /** Default none: the blob is the tar itself (digest = diff_id). */
  compression?: LayerCompression;
  /** As CompressLayerOptions.level. */
  level?: number;
  /** As CompressLayerOptions.threads. */
  threads?: number;
  /** Flush the blob to disk before settling (a blob a cache keeps). Default false. */
  sync?: boolean;
  /**
   * Start writing each file's dirty pages to disk as soon as it has been read (asynchronously), for a caller that
   * syncs the file system afterwards (a commit): changes just written into the container then do not all wait for
   * that sync. Default false.
   */
  writeback?: boolean;
  signal?: AbortSignal;
}

/**
 * Archives the overlay upper directory `upper` as a layer tar (whiteout devices and opaque directories as `.wh.`
 * entries, containers/storage's format: byte for byte what {@link overlayDiffStream} yields), compresses it as
 * asked into `options.out`, and settles with the tar's and the blob's digests and sizes. Read the directory under the
 * store's layers lock. Fails with CARRIER_CHANGED when a file shrinks while it is read, ABORT_ERR on abort; the blob
 * file is then incomplete (the caller removes it).
 */
export async function diffLayerToFile(upper: string, options: DiffLayerOptions): Promise<CompressedLayer> {
  const { compression, level, threads } = compressSettings({ compression: options.compression ?? 'none', ...pick(options) });
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  return awaitNativeJob(native.diffLayer(upper, { out: options.out, compression, level, threads, sync: options.sync ?? false, writeback: options.writeback ?? false }), signal);
}

function pick(o: DiffLayerOptions): { level?: number; threads?: number } {
  return { ...(o.level !== undefined ? { level: o.level } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}) };
}

/** An uncompressed layer tar streaming through a FIFO: see {@link streamLayerTar}. */
export interface StreamedLayerTar {
  /** The FIFO to open and read (once). */
  path: string;
  /**
   * Stops the stream if it still runs, removes the FIFO, and settles with the stream's own failure, if it failed for
   * a reason of its own (not an abort, not a reader that went away). Idempotent.
   */
  close(): Promise<CarrierError | undefined>;
}

/**
 * Archives the overlay upper directory `upper` again, uncompressed, into a FIFO made for it (in a private temporary
 * directory), for a reader that takes a path: the store applies a committed layer from it, so its tar is never
 * stored as a file. The bytes are those of {@link diffLayerToFile} for the same directory, as long as it has not
 * changed meanwhile (the reader checks the diff_id). The walk waits for a reader, so close it whatever happens.
 */
export async function streamLayerTar(upper: string, signal?: AbortSignal): Promise<StreamedLayerTar> {
  if (signal?.aborted) throw abortError(signal);
  const dir = await mkdtemp(join(tmpdir(), 'carrier-layer-'));
  const path = join(dir, 'layer.tar');
  const job = native.diffLayer(upper, { out: path, compression: 'none', level: 0, threads: 1, sync: false, fifo: true });
  const onAbort = (): void => job.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const outcome = job.promise.then(
    () => undefined,
    (f: NativeFailure) => (f.code === 'ABORT_ERR' || f.code === 'EPIPE' ? undefined : fromNative(f)),
  );
  let closing: Promise<CarrierError | undefined> | undefined;
  const close = (): Promise<CarrierError | undefined> =>
    (closing ??= (async () => {
      job.abort();
      const failure = await outcome;
      signal?.removeEventListener('abort', onAbort);
      await rm(dir, { recursive: true, force: true });
      return failure;
    })());
  try {
    await job.ready;
  } catch (err) {
    await close();
    throw fromNative(err as NativeFailure);
  }
  return { path, close };
}

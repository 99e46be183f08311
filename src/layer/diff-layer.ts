// A layer out of an overlay upper directory in one native pass: the walk and the tar (the bytes overlayDiffStream
// yields), the diff_id, the compression on several cores, the digest, and the blob written to a file — no tar bytes
// cross into JavaScript. What a commit of an overlay container runs instead of reading the driver's diff stream.
import { abortError, fromNative } from '../errors.js';
import type { NativeFailure } from '../errors.js';
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
  const job = native.diffLayer(upper, { out: options.out, compression, level, threads, sync: options.sync ?? false });
  const onAbort = (): void => job.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job.promise;
  } catch (err) {
    const f = err as NativeFailure;
    throw f.code === 'ABORT_ERR' ? abortError(signal) : fromNative(f);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function pick(o: DiffLayerOptions): { level?: number; threads?: number } {
  return { ...(o.level !== undefined ? { level: o.level } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}) };
}

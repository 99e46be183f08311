// A layer out: its uncompressed tar (what a driver's diff() yields) becomes the compressed blob, in one pass on
// native threads that also hash the tar (diff_id) and the blob (digest) and record the tar-split.
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { CarrierError, abortError, fromNative } from '../errors.js';
import { native, type CompressJobEvent, type NativeCompressJob, type NativeCompressOptions, type NativeCompressedLayer } from '../native.js';
import { feed } from './apply.js';
import { unreadTarSource } from './assemble.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export interface CompressLayerOptions {
  /** Default gzip. */
  compression?: LayerCompression;
  /**
   * gzip 0–9 (default 4), zstd 1–19 (default 3); ignored for none. gzip's default is 4, not zlib's 6: its output is
   * within a few percent of what podman's push makes (Go's compressor; measured on the bench's /usr layers: podman's
   * gzip layers 4–5.5% larger than `gzip -6`, zlib level 4 2.8% larger) for about 0.6 of level 6's CPU time.
   */
  level?: number;
  /**
   * gzip only: compress with ISA-L's deflate at this level (1–3) where the machine has libisal (loaded at run time;
   * `level` applies where it has not). About four times less CPU than zlib's level 4 for output a few percent larger.
   */
  isalLevel?: number;
  /**
   * Threads that compress (default: the cores this process may use, at most 8). The bytes produced do not depend on
   * it: the same tar, compression and level always give the same digest. Memory grows with it: about 2 MiB (gzip) or
   * 8 MiB (zstd) per thread, plus zstd's own tables (small at the default level, tens of MiB per thread at 19).
   */
  threads?: number;
  /** Write the layer's tar-split here (what containers/storage keeps beside a layer to rebuild its tar). */
  tarSplitPath?: string;
  /** The tar's bytes taken in so far, as compression proceeds (progress). */
  onTarBytes?: (total: number) => void;
  signal?: AbortSignal;
}

/** What compressing a layer found, available once the compressed stream has been produced to its end. */
export type CompressedLayer = NativeCompressedLayer;

export interface CompressingLayer {
  /** The compressed blob; reading it drives the work (nothing runs far ahead of the reader). */
  stream: Readable;
  /**
   * Settles after the stream's last byte: the digests and sizes, or the failure that also destroyed the stream
   * (CARRIER_BAD_TAR for input that is not a tar, ABORT_ERR on abort or when the stream is destroyed early).
   */
  result: Promise<CompressedLayer>;
}

const LEVELS: Record<LayerCompression, [number, number, number]> = {
  gzip: [0, 9, 4],
  zstd: [1, 19, 3],
  none: [0, 0, 0],
};

/** The compression, level and threads `options` ask for, checked and with their defaults (and the tar-split path). */
export function compressSettings(options: CompressLayerOptions): NativeCompressOptions {
  const compression = options.compression ?? 'gzip';
  const range = LEVELS[compression];
  if (!range) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown compression '${String(compression)}': use gzip, zstd or none`);
  const [min, max, fallback] = range;
  const level = compression === 'none' ? 0 : (options.level ?? fallback);
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `${compression} level must be an integer from ${min} to ${max}, got ${String(options.level)}`);
  }
  const threads = options.threads ?? Math.min(availableParallelism(), 8);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `threads must be an integer from 1 to 256, got ${String(options.threads)}`);
  }
  const out: NativeCompressOptions = { compression, level, threads };
  if (options.isalLevel !== undefined && compression === 'gzip') {
    if (!Number.isInteger(options.isalLevel) || options.isalLevel < 1 || options.isalLevel > 3) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', `the ISA-L gzip level must be an integer from 1 to 3, got ${String(options.isalLevel)}`);
    }
    out.isalLevel = options.isalLevel;
  }
  if (options.tarSplitPath !== undefined) out.tarSplit = options.tarSplitPath;
  return out;
}

/**
 * Compresses a layer's uncompressed tar stream on native threads (gzip or zstd on several cores) and, in the same
 * pass, hashes the tar (the diff_id) and the compressed bytes (the digest), checks that the input is a well-formed
 * tar, and writes its tar-split when asked — the tar-split {@link assembleLayer} rebuilds the tar from, byte for byte.
 * Backpressure holds both ways and memory stays flat whatever the layer's size. On failure or abort the partial
 * tar-split is removed.
 */
export function compressLayer(tar: Readable, options: CompressLayerOptions = {}): CompressingLayer {
  const opts = compressSettings(options);
  // A tar assembleLayer would rebuild, not yet read: the native job rebuilds it on a thread of its own instead (no trip
  // of every chunk through JS and back).
  const source = unreadTarSource(tar);
  if (source) {
    opts.sourceTarSplit = source.tarSplit;
    opts.sourceDir = source.diffDir;
    tar.destroy();
  }
  return runCompressJob<NativeCompressedLayer, NativeCompressedLayer>(source ? undefined : tar, (onEvent) => new native.CompressJob(opts, onEvent), {
    what: 'the compressed layer stream',
    result: (r) => r,
    ...(options.onTarBytes ? { onTarBytes: options.onTarBytes } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Drives a native compress job (plain or zstd:chunked) from a tar stream (none: the job rebuilds the tar itself): the
 * tar is fed with backpressure, the compressed chunks come out as a Readable that acknowledges them as it is read, and
 * `result` settles after its last byte (mapped by `result`). An abort, a failed tar stream or a destroyed output
 * stops the job and rejects `result`.
 */
export function runCompressJob<R, Out>(
  tar: Readable | undefined,
  start: (onEvent: (event: CompressJobEvent<R>) => void) => NativeCompressJob,
  options: { what: string; result: (r: R) => Out; onTarBytes?: (total: number) => void; signal?: AbortSignal },
): { stream: Readable; result: Promise<Out> } {
  const { signal } = options;
  let settle!: { resolve: (r: Out) => void; reject: (e: Error) => void };
  const result = new Promise<Out>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(() => {}); // the stream carries the same failure; a caller reading only the stream is not left with an unhandled rejection
  let done = false;
  let owed = 0; // 'data' chunks pushed while the reader was full, acknowledged when it asks for more
  let drained: (() => void) | undefined;
  let streamError: unknown;

  const stream = new Readable({
    read() {
      if (owed > 0 && !done) {
        job.ack(owed);
        owed = 0;
      }
    },
    destroy(err, callback) {
      if (!done) {
        done = true;
        job.abort();
        settle.reject(err instanceof CarrierError ? err : new CarrierError('ABORT_ERR', `${options.what} was destroyed before its end`, { cause: err ?? signal?.reason }));
      }
      if (tar && !tar.destroyed) tar.destroy();
      signal?.removeEventListener('abort', onAbort);
      callback(err);
    },
  });

  const fail = (err: Error): void => {
    done = true;
    drained?.();
    settle.reject(err);
    stream.destroy(err);
  };

  const onEvent = (event: CompressJobEvent<R>): void => {
    if (event.type === 'drain') {
      drained?.();
      return;
    }
    if (done) return;
    if (event.type === 'data') {
      if (!tar && event.tarBytes !== undefined) options.onTarBytes?.(event.tarBytes);
      if (stream.push(event.chunk)) job.ack(1);
      else owed++;
    } else if (event.type === 'done') {
      done = true;
      signal?.removeEventListener('abort', onAbort);
      settle.resolve(options.result(event.result));
      stream.push(null);
    } else if (event.error.code === 'ABORT_ERR' && streamError !== undefined && !signal?.aborted) {
      const cause = streamError as NodeJS.ErrnoException;
      fail(new CarrierError(cause.code ?? 'CARRIER_STREAM_ERROR', `reading the layer's tar failed: ${cause.message}`, { cause }));
    } else {
      fail(event.error.code === 'ABORT_ERR' ? abortError(signal) : fromNative(event.error));
    }
  };

  const job = start(onEvent);
  const onAbort = (): void => job.abort();
  if (signal?.aborted) job.abort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  if (tar) {
    feed(tar, job, () => done, (wake) => (drained = wake), options.onTarBytes).catch((err: unknown) => {
      streamError = err;
      job.abort();
    });
  }
  return { stream, result };
}

// A layer's tar compressed as zstd:chunked (native/chunked_job.cc says the format): every file's content in a zstd
// frame of its own, then the TOC, the tar-split and the footer in skippable frames. Any zstd reader gets the tar back;
// a puller that reads the annotations can fetch single files.
import { Readable } from 'node:stream';
import { CarrierError, abortError, fromNative } from '../errors.js';
import { native, type ChunkedCompressEvent, type NativeChunkedLayer } from '../native.js';
import { feed } from '../layer/apply.js';
import { chunkedAnnotations } from './annotations.js';

export interface ChunkedLayer extends NativeChunkedLayer {
  /** The annotations the manifest's layer descriptor must carry for pullers to find the TOC and tar-split. */
  annotations: Record<string, string>;
}

export interface CompressChunkedOptions {
  /** zstd level 1–19 (default 3). */
  level?: number;
  signal?: AbortSignal;
}

/**
 * Compresses a layer's tar as zstd:chunked on a native thread, hashing the tar (diff_id) and the blob (digest) on the
 * way. The stream drives the work; `result` settles after its last byte.
 */
export function compressChunked(tar: Readable, options: CompressChunkedOptions = {}): { stream: Readable; result: Promise<ChunkedLayer> } {
  const level = options.level ?? 3;
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `zstd:chunked level must be an integer from 1 to 19, got ${String(options.level)}`);
  }
  const { signal } = options;
  let settle!: { resolve: (r: ChunkedLayer) => void; reject: (e: Error) => void };
  const result = new Promise<ChunkedLayer>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(() => {});
  let done = false;
  let owed = 0;
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
        settle.reject(err instanceof CarrierError ? err : new CarrierError('ABORT_ERR', 'the zstd:chunked stream was destroyed before its end', { cause: err ?? signal?.reason }));
      }
      if (!tar.destroyed) tar.destroy();
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
  const onEvent = (event: ChunkedCompressEvent): void => {
    if (event.type === 'drain') {
      drained?.();
      return;
    }
    if (done) return;
    if (event.type === 'data') {
      if (stream.push(event.chunk)) job.ack(1);
      else owed++;
    } else if (event.type === 'done') {
      done = true;
      signal?.removeEventListener('abort', onAbort);
      settle.resolve({ ...event.result, annotations: chunkedAnnotations(event.result) });
      stream.push(null);
    } else if (event.error.code === 'ABORT_ERR' && streamError !== undefined && !signal?.aborted) {
      const cause = streamError as NodeJS.ErrnoException;
      fail(new CarrierError(cause.code ?? 'CARRIER_STREAM_ERROR', `reading the layer's tar failed: ${cause.message}`, { cause }));
    } else {
      fail(event.error.code === 'ABORT_ERR' ? abortError(signal) : fromNative(event.error));
    }
  };
  const job = new native.ChunkedCompressJob({ level }, onEvent);
  const onAbort = (): void => job.abort();
  if (signal?.aborted) job.abort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  feed(tar, job, () => done, (wake) => (drained = wake)).catch((err: unknown) => {
    streamError = err;
    job.abort();
  });
  return { stream, result };
}

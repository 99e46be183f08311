// A layer's tar compressed as zstd:chunked (native/chunked_job.cc says the format): every file's content in a zstd
// frame of its own, then the TOC, the tar-split and the footer in skippable frames. Any zstd reader gets the tar back;
// a puller that reads the annotations can fetch single files.
import { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import { native, type NativeChunkedLayer } from '../native.js';
import { runCompressJob } from '../layer/compress.js';
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
  return runCompressJob<NativeChunkedLayer, ChunkedLayer>(tar, (onEvent) => new native.ChunkedCompressJob({ level }, onEvent), {
    what: 'the zstd:chunked stream',
    result: (r) => ({ ...r, annotations: chunkedAnnotations(r) }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

import type { Readable } from 'node:stream';
import {
  native,
  type NativeApplyOptions,
  type NativeRebuildPlan,
  type NativeAppliedLayer,
  type NativeImageBudget,
  type ApplyEvent,
  type AppliedLayer,
} from '../native.js';
export type { AppliedLayer, SkippedEntry } from '../native.js';
import { CarrierError, abortError, fromNative } from '../errors.js';
import { isRootless } from '../host.js';

export type Compression = 'auto' | 'gzip' | 'zstd' | 'none';

export interface ApplyLayerLimits {
  /** Most uncompressed tar bytes accepted before the layer is refused (default 64 GiB). */
  maxUncompressedBytes?: number;
  /** Most tar entries accepted (default 4,000,000). */
  maxEntries?: number;
  /**
   * A budget this layer shares with others (the layers of one image): every byte of file content written to disk is
   * charged to it (runs of zeros are left as holes and cost nothing), and the layer that passes its limit is refused
   * with CARRIER_LIMIT_EXCEEDED. Default: none.
   */
  budget?: ImageBudget;
}

/** A byte budget shared by the layers applied under it; see {@link imageBudget}. */
export type ImageBudget = NativeImageBudget;

/** A budget of `limitBytes` bytes of file content for the layers of one image (see ApplyLayerLimits.budget). */
export function imageBudget(limitBytes: number): ImageBudget {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `an image budget must be a non-negative integer of bytes, got ${limitBytes}`);
  }
  return new native.ImageBudget(limitBytes);
}

export interface ApplyLayerOptions {
  /** How the blob is compressed; 'auto' (default) detects gzip and zstd by their magic bytes. */
  compression?: Compression;
  /** `sha256:<hex>` the compressed bytes must hash to. */
  expectedDigest?: string;
  /** Exact length of the compressed blob. */
  expectedSize?: number;
  /** `sha256:<hex>` the uncompressed tar must hash to (the config's rootfs.diff_ids entry). */
  expectedDiffID?: string;
  /** 'overlay' (default) turns `.wh.` entries into 0/0 char devices and opaque xattrs; 'aufs' keeps them as files. */
  whiteouts?: 'overlay' | 'aufs';
  /** Unprivileged rules: no chown, no device nodes, no trusted.* xattrs. Default: true unless running as root. */
  rootless?: boolean;
  /** Write the tar-split file (gzip of JSON lines) podman keeps beside each layer to this path. */
  tarSplit?: string;
  limits?: ApplyLayerLimits;
  signal?: AbortSignal;
  /**
   * An open file descriptor that also receives every compressed byte, in order, written from a native thread (a
   * pull's blob cache file). It must stay open until the call settles; nothing is written to it afterwards.
   */
  teeFd?: number;
  /** For a stream source: called with the running count of compressed bytes taken from it. */
  onBytes?: (total: number) => void;
  /**
   * Regular files (by tar name) whose content a file already on this filesystem holds (a partial pull's store
   * files): each is made a reflink of that file where the filesystem can clone, and the content the tar carries is
   * compared with the clone instead of written (a difference fails the layer). Elsewhere the content is written.
   */
  cloneFrom?: ReadonlyMap<string, string>;
  /**
   * A `cloneFrom` file whose owner, mode, mtime and xattrs are exactly the entry's is hard-linked instead (the user's
   * opt-in, as containers-storage's `use_hard_links`); its content is still compared with the tar's.
   */
  hardlinkClones?: boolean;
  /**
   * The file system is synced once the layer is in place (the store's syncfs): each file's writeback is started as soon
   * as it is written (sync_file_range, asynchronous), so the disk works during the extraction and the sync has little
   * left to do.
   */
  writeback?: boolean;
}



/**
 * A layer's tar that the native apply rebuilds from parts (a partial pull, src/chunked/partial.ts builds it): the
 * tar-split's segments, store files and remote contents, so the layer's bytes never pass through JS. Every file is
 * hashed against its TOC digest on the way, and the tar's digest is checked against expectedDiffID as usual.
 */
export interface RebuiltTar {
  plan: NativeRebuildPlan;
  /**
   * Writes the remote contents' zstd frames, in tar order, through `write` (which waits while the job holds enough);
   * `signal` aborts when the apply has settled or was aborted. Started as soon as the job is, so fetches overlap the
   * reading of store files.
   */
  remote(write: (frames: Uint8Array) => Promise<void>, signal: AbortSignal): Promise<void>;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DEFAULT_MAX_UNCOMPRESSED = 64 * 1024 ** 3;
const DEFAULT_MAX_ENTRIES = 4_000_000;

function nativeOptions(options: ApplyLayerOptions): NativeApplyOptions {
  const out: NativeApplyOptions = {
    compression: options.compression ?? 'auto',
    whiteouts: options.whiteouts ?? 'overlay',
    rootless: options.rootless ?? isRootless(),
    maxUncompressedBytes: options.limits?.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED,
    maxEntries: options.limits?.maxEntries ?? DEFAULT_MAX_ENTRIES,
  };
  if (!['auto', 'gzip', 'zstd', 'none'].includes(out.compression)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown compression '${String(out.compression)}'`);
  }
  if (!['overlay', 'aufs'].includes(out.whiteouts)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown whiteout format '${String(out.whiteouts)}'`);
  }
  for (const key of ['expectedDigest', 'expectedDiffID'] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (!DIGEST.test(value)) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', `${key} must look like sha256:<64 hex digits>, got '${value}'`);
    }
    out[key] = value;
  }
  if (options.expectedSize !== undefined) {
    if (!Number.isSafeInteger(options.expectedSize) || options.expectedSize < 0) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'expectedSize must be a non-negative integer');
    }
    out.expectedSize = options.expectedSize;
  }
  if (options.tarSplit !== undefined) out.tarSplit = options.tarSplit;
  if (options.cloneFrom && options.cloneFrom.size > 0) out.clones = [...options.cloneFrom].flat();
  if (options.hardlinkClones) out.hardlinkClones = true;
  if (options.writeback) out.writeback = true;
  if (options.limits?.budget !== undefined) out.budget = options.limits.budget;
  if (options.teeFd !== undefined) {
    if (!Number.isSafeInteger(options.teeFd) || options.teeFd < 0) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'teeFd must be an open file descriptor');
    }
    out.teeFd = options.teeFd;
  }
  return out;
}

/**
 * Extracts a compressed layer blob into `dir` (an empty directory that becomes the layer's `diff`) in one streaming
 * pass on native worker threads: hash the compressed bytes, decompress, hash the tar, parse it, and create its
 * entries safely inside `dir`. On any failure, including a digest mismatch or an abort, `dir` is left empty.
 *
 * @param source the compressed blob: a file path, or a readable stream of its bytes; or a tar to rebuild from parts.
 */
export async function applyLayer(
  source: string | Readable | RebuiltTar,
  dir: string,
  options: ApplyLayerOptions = {},
): Promise<AppliedLayer> {
  const rebuilt = typeof source === 'object' && 'plan' in source ? source : undefined;
  const stream = typeof source === 'string' || 'plan' in source ? undefined : source;
  const opts = nativeOptions(rebuilt ? { ...options, compression: 'none' } : options);
  if (rebuilt) opts.rebuild = rebuilt.plan;
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);

  let drained: (() => void) | undefined;
  let settle!: { resolve: (r: NativeAppliedLayer) => void; reject: (e: Error) => void };
  const finished = new Promise<NativeAppliedLayer>((resolve, reject) => {
    settle = { resolve, reject };
  });
  let done = false;
  const onEvent = (event: ApplyEvent): void => {
    if (event.type === 'drain') {
      drained?.();
      return;
    }
    done = true;
    drained?.();
    if (event.type === 'done') settle.resolve(event.result);
    else settle.reject(event.error.code === 'ABORT_ERR' ? abortError(signal) : fromNative(event.error));
  };

  const job = new native.ApplyJob(dir, typeof source === 'string' ? source : null, opts, onEvent);
  const onAbort = (): void => job.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let streamError: unknown;
  const settled = new AbortController();
  if (rebuilt) {
    // A failure of the producer (a fetch) stops the job; once the job has settled, nothing it does matters.
    const write = (frames: Uint8Array): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const go = (): void => (done ? reject(new CarrierError('ABORT_ERR', 'the layer was settled')) : resolve());
        if (done || job.push(frames)) return go();
        drained = () => {
          drained = undefined;
          go();
        };
      });
    const stop = signal ? AbortSignal.any([signal, settled.signal]) : settled.signal;
    rebuilt.remote(write, stop).then(
      () => {
        if (!done) job.end();
      },
      (err: unknown) => {
        if (done) return;
        streamError = err;
        job.abort();
      },
    );
  } else if (stream) {
    // Not awaited: a stalled stream must not keep an abort or a native failure from settling the call.
    feed(stream, job, () => done, (wake) => (drained = wake), options.onBytes).catch((err: unknown) => {
      streamError = err;
      job.abort();
    });
  }
  try {
    return await finished;
  } catch (err) {
    if (stream && !stream.destroyed) stream.destroy();
    if (streamError !== undefined && !signal?.aborted) {
      const cause = streamError as NodeJS.ErrnoException;
      const what = rebuilt ? "fetching the layer's files" : 'reading the layer stream';
      throw new CarrierError(cause.code ?? 'CARRIER_STREAM_ERROR', `${what} failed: ${cause.message}`, {
        cause,
      });
    }
    throw err;
  } finally {
    settled.abort();
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Chunks are handed to the native job once this many bytes are held (and at the end of each event-loop turn). */
const BATCH_BYTES = 1 << 20;

/**
 * Pushes a stream's chunks into the native job, pausing the stream whenever the native queue is full until 'drain'.
 * Flowing mode rather than an async iterator: a layer is a thousand or more chunks, and each iterator step costs
 * promise and tick round trips on the main thread. The chunks that arrive in one turn of the event loop are handed
 * over in one call, as a list (a body over TLS comes in 16 KiB records: one call per record, or one join of them in
 * JS, cost the main thread more than the rest of the hand-over); the apply job reads them in place, so they must not
 * be changed once the stream has passed them on (Node's streams never do). Ends the job when the stream ends;
 * rejects on a stream error or a close before the end; stops (and destroys the stream) once the job has settled.
 */
export function feed(
  stream: Readable,
  job: { push(c: Uint8Array | Uint8Array[]): boolean; end(): void },
  isDone: () => boolean,
  onDrain: (wake: (() => void) | undefined) => void,
  onBytes?: (total: number) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let total = 0;
    let held: Uint8Array[] = [];
    let heldBytes = 0;
    let soon: NodeJS.Immediate | undefined;
    const stop = (): void => {
      if (soon) clearImmediate(soon);
      soon = undefined;
      held = [];
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const quit = (): void => {
      stop();
      stream.destroy();
      resolve();
    };
    /** Hands the held chunks to the job, pausing the stream until 'drain' when its queue is full. */
    const flush = (): void => {
      if (soon) clearImmediate(soon);
      soon = undefined;
      if (heldBytes === 0) return;
      if (isDone()) return quit();
      const chunks = held;
      held = [];
      heldBytes = 0;
      onBytes?.(total);
      let more: boolean;
      try {
        more = job.push(chunks.length === 1 ? chunks[0]! : chunks);
      } catch (err) {
        // (flush runs from setImmediate too: a throw there would escape the promise)
        stop();
        stream.destroy();
        return reject(err);
      }
      if (!more) {
        stream.pause();
        onDrain(() => {
          onDrain(undefined);
          if (isDone()) quit();
          else stream.resume();
        });
      }
    };
    const onData = (chunk: Uint8Array | string): void => {
      if (isDone()) return quit();
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += bytes.length;
      held.push(bytes);
      heldBytes += bytes.length;
      if (heldBytes >= BATCH_BYTES) flush();
      else soon ??= setImmediate(flush);
    };
    const onEnd = (): void => {
      if (isDone()) return quit();
      const chunks = held;
      stop();
      try {
        if (chunks.length > 0) {
          onBytes?.(total);
          job.push(chunks);
        }
        job.end();
      } catch (err) {
        return reject(err);
      }
      resolve();
    };
    const onError = (err: unknown): void => {
      stop();
      reject(err);
    };
    const onClose = (): void => {
      stop();
      const err = new Error('the layer stream closed before its end') as NodeJS.ErrnoException;
      err.code = 'ERR_STREAM_PREMATURE_CLOSE';
      reject(err);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

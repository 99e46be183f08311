/**
 * Every error Carrier raises is a {@link CarrierError}: a stable `code` to branch on, the `path` inside the layer or
 * store it concerns, and, when an OS call failed, that call's `errno`/`syscall`.
 */
export type CarrierErrorCode =
  | 'CARRIER_DIGEST_MISMATCH'
  | 'CARRIER_BAD_TAR'
  | 'CARRIER_BAD_COMPRESSION'
  | 'CARRIER_TRUNCATED'
  | 'CARRIER_UNSAFE_PATH'
  | 'CARRIER_DUPLICATE_ENTRY'
  | 'CARRIER_LIMIT_EXCEEDED'
  | 'CARRIER_BAD_TAR_SPLIT'
  | 'CARRIER_BAD_TOC' // a zstd:chunked TOC or tar-split that is malformed or disagrees with itself
  | 'CARRIER_STALE_INDEX' // a store file does not hold what its layer's file index claimed (the pull fetches whole)
  | 'CARRIER_INVALID_ARGUMENT'
  | 'CARRIER_INVALID_DIGEST' | 'CARRIER_INVALID_MANIFEST' | 'CARRIER_INVALID_ARCHIVE' // OCI documents and image archives
  | 'CARRIER_INVALID_REFERENCE' | 'CARRIER_INVALID_CONFIG' | 'CARRIER_UNSUPPORTED' // references, config files
  | 'CARRIER_NOT_FOUND' | 'CARRIER_IN_USE' | 'CARRIER_EXISTS' | 'CARRIER_CORRUPT_STORE' | 'CARRIER_CLOSED' // the store
  | 'CARRIER_NO_REFLINK' // cloneTree in reflink mode on a filesystem that cannot clone
  | 'CARRIER_STREAM_ERROR' // the source stream failed without an errno code of its own
  | 'CARRIER_UNAUTHORIZED' | 'CARRIER_REGISTRY_ERROR' | 'CARRIER_BLOCKED' // registries (404s use CARRIER_NOT_FOUND)
  | 'CARRIER_TIMEOUT' // a registry that took longer than the caller's deadline (`timeout`)
  | 'ABORT_ERR'
  | (string & {}); // OS errors keep their errno name: 'ENOENT', 'ENOSPC', ...

export interface CarrierErrorDetails {
  path?: string;
  errno?: number;
  syscall?: string;
  cause?: unknown;
}

export class CarrierError extends Error {
  readonly code: CarrierErrorCode;
  readonly path?: string;
  readonly errno?: number;
  readonly syscall?: string;

  constructor(code: CarrierErrorCode, message: string, details: CarrierErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = code === 'ABORT_ERR' ? 'AbortError' : 'CarrierError';
    this.code = code;
    if (details.path !== undefined) this.path = details.path;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
  }
}

/** The shape native code rejects with; turned into a CarrierError at the boundary. */
export interface NativeFailure {
  code: string;
  message: string;
  path?: string;
  errno?: number;
  syscall?: string;
}

export function fromNative(f: NativeFailure): CarrierError {
  const details: CarrierErrorDetails = {};
  if (f.path) details.path = f.path;
  if (f.errno) details.errno = f.errno;
  if (f.syscall) details.syscall = f.syscall;
  return new CarrierError(f.code, f.message, details);
}

/** Waits for every one of `steps`, then throws the first failure: none is left running when a failure is thrown. */
export async function settled(steps: Promise<unknown>[]): Promise<void> {
  const done = await Promise.allSettled(steps);
  const failed = done.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export function abortError(signal: AbortSignal | undefined): CarrierError {
  return new CarrierError('ABORT_ERR', 'The operation was aborted', { cause: signal?.reason });
}

/** The codes that say a blob's or a layer's bytes are wrong (a cached copy failing so is evicted and copied again). */
export const CONTENT_ERRORS: ReadonlySet<string> = new Set(['CARRIER_DIGEST_MISMATCH', 'CARRIER_BAD_COMPRESSION', 'CARRIER_TRUNCATED', 'CARRIER_BAD_TAR']);

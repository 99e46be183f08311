import { CarrierError, abortError, fromNative, type NativeFailure } from '../errors.js';
import { native, type CloneResult } from '../native.js';
export type { CloneResult } from '../native.js';

/**
 * How file contents reach the destination.
 * - `auto`: reflink (FICLONE) where the filesystem can, else copy_file_range, else read/write — per file.
 * - `reflink`: reflink every file or fail with `CARRIER_NO_REFLINK` (nothing is left behind).
 * - `copy`: never ask for a reflink: copy_file_range, else read/write. Some filesystems (XFS, btrfs) may still
 *   share extents inside copy_file_range; that is the kernel's choice.
 * - `hardlink`: every regular file becomes a hard link to the source file (same filesystem only, `EXDEV`
 *   otherwise); directories, symlinks and special files are still created anew.
 */
export type CloneMode = 'auto' | 'reflink' | 'copy' | 'hardlink';

export interface CloneOptions {
  /** Default `auto`. */
  mode?: CloneMode;
  /** Stops between files and between chunks of a long copy; the call then rejects with `ABORT_ERR`. */
  signal?: AbortSignal;
  /**
   * Give every entry the source's uid/gid (needs CAP_CHOWN). Default: true when running as root. Unprivileged
   * copies belong to the caller.
   */
  preserveOwnership?: boolean;
}


const MODES: readonly CloneMode[] = ['auto', 'reflink', 'copy', 'hardlink'];

/**
 * Copies the directory tree `src` into `dst` (which must not exist, or be an empty directory), on a native thread.
 *
 * The source is walked through directory fds without following symlinks; everything under `dst` is created with
 * *at() calls. Kept: file contents (holes included on the copying paths), types, modes with setuid/setgid/sticky,
 * ownership (when `preserveOwnership`), atime/mtime, xattrs the caller may set, symlink targets, hard-link
 * identity within the tree, fifos and device nodes the caller may create. Sockets are skipped.
 *
 * On any failure, abort included, the destination is removed again (or emptied, if it existed) and the call rejects
 * with a {@link CarrierError} whose `path` is relative to the tree.
 */
export async function cloneTree(src: string, dst: string, options: CloneOptions = {}): Promise<CloneResult> {
  const mode = options.mode ?? 'auto';
  if (!MODES.includes(mode)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `cloneTree: unknown mode '${String(mode)}'; use ${MODES.join(', ')}`);
  }
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const preserveOwnership = options.preserveOwnership ?? process.geteuid?.() === 0;
  return awaitNativeJob(native.cloneTree(src, dst, { mode, preserveOwnership }), signal);
}

/** Awaits a native job that runs on its own thread, aborting it when `signal` fires; failures become CarrierErrors. */
export async function awaitNativeJob<T>(job: { promise: Promise<T>; abort(): void }, signal: AbortSignal | undefined): Promise<T> {
  const onAbort = (): void => job.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job.promise;
  } catch (err) {
    const failure = err as NativeFailure;
    throw failure.code === 'ABORT_ERR' ? abortError(signal) : fromNative(failure);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

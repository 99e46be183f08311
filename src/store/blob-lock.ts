// One download per blob: a per-digest lock in the blob cache, so that several pulls (processes or stores sharing the
// cache) that need the same missing blob fetch it once. The first takes the lock and downloads; the others wait for
// it, then find the verified blob in the cache and apply it from disk.
//
//   <cache>/<algorithm>/.lock-<hex>   the lock file of one digest, present only while someone holds or waits for it
//
// The lock is an fcntl OFD lock (released by the kernel when its holder dies, so a crashed pull never leaves a blob
// locked). Its holder unlinks the file before it lets go; a waiter that then gets the lock finds its file unlinked
// (or replaced) and starts over on the current one, so two holders never believe they hold the same digest.
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest } from '../oci/digest.js';
import { native } from '../native.js';
import { abortError, fromNative, type NativeFailure } from '../errors.js';
import { makeDirs } from '../fs/batch.js';

/** The name prefix of per-digest lock files. */
export const LOCK_PREFIX = '.lock-';

const READ_ONLY = new Set(['EACCES', 'EPERM', 'EROFS']);

export interface BlobLock {
  /** Lets go of the lock (idempotent); its file is removed first. */
  release(): Promise<void>;
}

/** The lock file of `digest` in the cache at `root`. */
export function blobLockPath(root: string, digest: string): string {
  const d = parseDigest(digest);
  return join(root, d.algorithm, `${LOCK_PREFIX}${d.hex}`);
}

/**
 * Takes the download lock of `digest` in the cache at `root`, waiting while another pull holds it. The wait ends
 * early with ABORT_ERR when `signal` fires.
 */
export async function lockBlob(root: string, digest: string, signal?: AbortSignal): Promise<BlobLock> {
  const path = blobLockPath(root, digest);
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    let fh: FileHandle;
    try {
      await makeDirs(join(path, '..'), 0o700);
      fh = await open(path, 'a', 0o600);
    } catch (err) {
      // A cache this user cannot write (shared read-only) can still serve its blobs; it cannot be filled, so there
      // is no download to share either.
      if (READ_ONLY.has((err as NodeJS.ErrnoException).code ?? '')) return { release: async () => {} };
      throw err;
    }
    await waitForLock(fh, signal);
    // The lock is ours only if the file is still the one under that name (a holder unlinks it as it lets go).
    const [mine, current] = await Promise.all([fh.stat(), stat(path).catch(() => undefined)]);
    if (current && mine.nlink > 0 && mine.ino === current.ino && mine.dev === current.dev) return heldLock(fh, path);
    await fh.close();
  }
}

/**
 * Waits for the lock on `fh`, trying again every few tens of milliseconds: a blocking wait would sit on a thread that
 * keeps the process alive until the holder lets go, so a cancelled pull (Ctrl-C) could not exit before the other
 * pull's download ends. A waiter waits for a whole download; the polling costs nothing next to that. On failure or
 * abort `fh` is closed.
 */
async function waitForLock(fh: FileHandle, signal: AbortSignal | undefined): Promise<void> {
  try {
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const held = await native.lockFile(fh.fd, true, false).catch((f: unknown) => {
        throw fromNative(f as NativeFailure);
      });
      if (held) return;
      await sleep(delay, signal);
    }
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function heldLock(fh: FileHandle, path: string): BlobLock {
  let released: Promise<void> | undefined;
  return {
    release(): Promise<void> {
      released ??= (async () => {
        await unlink(path).catch(() => {});
        await fh.close(); // closing the descriptor drops the lock
      })();
      return released;
    },
  };
}

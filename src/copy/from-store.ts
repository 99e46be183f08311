// Copying images out of the store (push, copy from containers-storage, save). A store source hands out a layer's
// compressed blob from the blob cache where the cache has it, and the cache checks only a blob's size: one a crash
// left corrupt (same size, other bytes) is handed out as it is, and the destination's digest check fails the copy
// (CARRIER_DIGEST_MISMATCH). A pull drops such a blob and fetches it again; here the bad blobs are evicted and the
// copy runs once more with the sources opened again, those layers rebuilt from the store as when the cache never had
// them. That needs a destination a failed copy leaves as it was (a registry, a layout directory the copy removes on
// failure, an archive file renamed into place only when complete). A copy into a stream, a FIFO or a device cannot
// take back what it wrote, so it does not wait for the failure: it hashes the cached blobs first (on a worker thread)
// and evicts the bad ones before anything is written.
import { CONTENT_ERRORS } from '../errors.js';
import type { BlobCache } from '../store/blobs.js';
import type { StoreImageSource } from '../transports/store-source.js';

export interface FromStoreOptions {
  /** The cache the sources take blobs from (none: nothing to recover from). */
  cache?: BlobCache;
  /**
   * The copy writes where bytes cannot be taken back (a stream, a FIFO, a device): the cached blobs are verified
   * before it starts, and a failed copy is not run again.
   */
  once?: boolean;
}

/**
 * Runs `copy` on the sources `open` gives. A copy that fails with a content error on a cached blob that no longer
 * verifies has the bad blobs evicted and runs once more on the sources opened again (see the file comment); with
 * `once`, the cached blobs are verified (and the bad ones evicted) before the copy starts instead.
 */
export async function copyFromStore<T>(open: () => Promise<StoreImageSource[]>, copy: (sources: StoreImageSource[]) => Promise<T>, options: FromStoreOptions): Promise<T> {
  const { cache } = options;
  const evictBad = async (sources: readonly StoreImageSource[]): Promise<boolean> =>
    cache !== undefined && (await cache.evictBad(sources.flatMap((s) => s.cachedBlobs))).length > 0;
  const sources = await open();
  if (options.once) return copy((await evictBad(sources)) ? await open() : sources);
  try {
    return await copy(sources);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    // (A check that cannot run leaves the copy's own failure to report.)
    if (typeof code !== 'string' || !CONTENT_ERRORS.has(code) || !(await evictBad(sources).catch(() => false))) throw err;
    return copy(await open());
  }
}

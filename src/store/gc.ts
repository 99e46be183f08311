// Blob cache garbage collection: blobs no stored image refers to are removed, then, under a size cap, the least
// recently used ones are evicted; temp files of writers that died are removed.
//
// Safety against concurrent users of the cache (this process or others):
// - a blob being written is a `.tmp-*` file its writer holds an OFD lock on (blobs.ts); it is removed only when the
//   collector can take that lock itself, which proves the writer is gone;
// - a blob used (looked up, which refreshes its mtime) or written within `minAge` is never removed, so a pull that
//   just chose a cached blob, or cached one for an image it has not committed yet, does not lose it under its feet.
import { open, readdir, lstat, unlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { native } from '../native.js';
import { parseByteSize } from '../quota.js';
import { TEMP_PREFIX } from './blobs.js';
import { otherCacheUsers } from './cache-users.js';
import type { Store } from './store.js';

/** Default for {@link PruneBlobCacheOptions.minAge}: one minute. */
export const DEFAULT_BLOB_MIN_AGE_MS = 60_000;

export interface CachedBlob {
  /** `sha256:<hex>`. */
  digest: string;
  path: string;
  /** Bytes the blob takes on disk (st_blocks × 512, as du counts). */
  size: number;
  /** Its length. */
  length: number;
  /** Last use or write (lookup refreshes it). */
  mtimeMs: number;
}

export interface CacheTempFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** True when no writer holds it (its writer is gone): safe to remove. Undefined when not probed. */
  abandoned?: boolean;
}

export interface BlobCacheScan {
  root: string;
  blobs: CachedBlob[];
  temps: CacheTempFile[];
  /** Everything under the cache root, as `du -s` counts it (directories included, hardlinks once). */
  diskUsage: number;
}

export interface PruneBlobCacheOptions {
  /**
   * Cap for the cache (bytes on disk of its blobs): least recently used blobs are evicted until the rest fit.
   * Default: `CARRIER_CACHE_MAX_SIZE` from `env` (e.g. "10G"); no cap when neither is set.
   */
  maxSize?: number;
  /** Keep blobs unreferenced by any image (only the size cap removes blobs). Default false. */
  keepUnreferenced?: boolean;
  /** Blobs used or written less than this long ago (ms) are kept whatever else applies. Default 60 000. */
  minAge?: number;
  /** The cache to collect (default: the store's). */
  cacheDir?: string;
  /** Environment read for CARRIER_CACHE_MAX_SIZE (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Report what would be removed without removing it. */
  dryRun?: boolean;
  /** Clock (ms since the epoch), for tests. */
  now?: number;
}

export interface RemovedBlob {
  /** The blob's digest; absent for temp files. */
  digest?: string;
  path: string;
  size: number;
  reason: 'unreferenced' | 'evicted' | 'abandoned';
}

export interface PruneBlobCacheResult {
  removed: RemovedBlob[];
  /** Bytes on disk freed (sum of removed sizes). */
  freed: number;
  /** What stays: committed blobs and their bytes on disk. */
  kept: { count: number; size: number };
  /** Temp files left alone because a writer holds them. */
  inFlight: number;
  /** The cap applied, if any. */
  maxSize?: number;
  /**
   * Other stores recorded as users of this cache (cache-users.ts). When any is, no blob was removed as unreferenced:
   * this store cannot see which of them the others need; only the size cap and dead writers' temp files applied.
   */
  sharedWith: string[];
}

/** CARRIER_CACHE_MAX_SIZE as bytes ("10G", "512M", "1073741824"); undefined when unset or empty. */
export function cacheMaxSizeFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.CARRIER_CACHE_MAX_SIZE;
  return v === undefined || v.trim() === '' ? undefined : parseByteSize(v);
}

function isHex(name: string, algorithm: string): boolean {
  if (algorithm === 'sha256') return /^[0-9a-f]{64}$/.test(name);
  if (algorithm === 'sha512') return /^[0-9a-f]{128}$/.test(name);
  return /^[0-9a-f]{32,}$/.test(name);
}

/** Allocated bytes of one path and everything below it, as `du -s` counts them. `seen` de-duplicates hardlinks. */
export async function diskUsage(path: string, seen: Set<string> = new Set()): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return 0;
  return usageOf(path, st, seen);
}

async function usageOf(path: string, st: Awaited<ReturnType<typeof lstat>>, seen: Set<string>): Promise<number> {
  if (st.isDirectory() || st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return 0;
    seen.add(key);
  }
  let total = Number(st.blocks) * 512;
  if (!st.isDirectory()) return total;
  const names = await readdir(path).catch(() => [] as string[]);
  // Bounded batches: enough in flight to keep the pool busy without thousands of pending stat calls.
  for (let i = 0; i < names.length; i += 64) {
    const batch = names.slice(i, i + 64).map(async (name) => {
      const p = join(path, name);
      const cst = await lstat(p).catch(() => undefined);
      if (!cst) return 0;
      if (cst.isDirectory() && cst.dev !== st.dev) return 0; // another filesystem mounted here (a live overlay mount)
      return usageOf(p, cst, seen);
    });
    for (const n of await Promise.all(batch)) total += n;
  }
  return total;
}

/** True when no writer holds the temp file (we could take its lock); the lock is released again unless `keep`. */
async function probeTemp(path: string, remove: boolean): Promise<boolean> {
  const fh = await open(path, 'r+').catch(() => undefined);
  if (!fh) return false; // gone already (committed or removed by someone else)
  try {
    const locked = await native.lockFile(fh.fd, true, false).catch(() => false);
    if (!locked) return false;
    if (remove) {
      // Still the same file under that name? (A writer renames it away when it commits.)
      const [a, b] = await Promise.all([fh.stat(), stat(path).catch(() => undefined)]);
      if (b && a.ino === b.ino && a.dev === b.dev) await unlink(path).catch(() => {});
    }
    return true;
  } finally {
    await fh.close(); // drops the lock
  }
}

/** Lists the cache: committed blobs, temp files (probed for a live writer when `probeTemps`), and its du size. */
export async function scanBlobCache(root: string, options: { probeTemps?: boolean } = {}): Promise<BlobCacheScan> {
  const blobs: CachedBlob[] = [];
  const temps: CacheTempFile[] = [];
  const algorithms = await readdir(root).catch(() => [] as string[]);
  for (const algorithm of algorithms) {
    const dir = join(root, algorithm);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const p = join(dir, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st?.isFile()) continue;
      const size = Number(st.blocks) * 512;
      if (name.startsWith(TEMP_PREFIX)) {
        const t: CacheTempFile = { path: p, size, mtimeMs: st.mtimeMs };
        if (options.probeTemps) t.abandoned = await probeTemp(p, false);
        temps.push(t);
      } else if (isHex(name, algorithm)) {
        blobs.push({ digest: `${algorithm}:${name}`, path: p, size, length: st.size, mtimeMs: st.mtimeMs });
      }
    }
  }
  return { root, blobs, temps, diskUsage: await diskUsage(root) };
}

type Json = Record<string, unknown>;

function digestsOfManifest(doc: unknown, out: Set<string>): void {
  if (doc === null || typeof doc !== 'object') return;
  const m = doc as Json;
  const add = (d: unknown): void => {
    if (typeof d === 'string' && /^[a-z0-9]+:[0-9a-f]+$/.test(d)) out.add(d);
  };
  add((m.config as Json | undefined)?.digest);
  if (Array.isArray(m.layers)) for (const l of m.layers as Json[]) add(l?.digest);
  if (Array.isArray(m.fsLayers)) for (const l of m.fsLayers as Json[]) add(l?.blobSum); // Docker schema 1
}

/**
 * Every blob digest a stored image refers to: the layers and config of each manifest stored with each image
 * (big data `manifest` and `manifest-<digest>`), the image's config digest, and the compressed digests recorded on
 * its layers.
 */
export async function referencedBlobs(store: Store): Promise<Set<string>> {
  const out = new Set<string>();
  const layers = new Map((await store.layers()).map((l) => [l.id, l]));
  for (const img of await store.images()) {
    out.add(`sha256:${img.id}`);
    for (const key of img.bigDataNames) {
      if (key !== 'manifest' && !key.startsWith('manifest-')) continue;
      try {
        digestsOfManifest(JSON.parse((await store.imageBigData(img.id, key)).toString('utf8')), out);
      } catch {
        // Unreadable or not JSON: it refers to nothing we can name.
      }
    }
    for (let id = img.topLayer, guard = 0; id !== undefined && guard < 10_000; guard++) {
      const l = layers.get(id);
      if (!l) break;
      if (l.compressedDigest) out.add(l.compressedDigest);
      id = l.parent;
    }
  }
  return out;
}

/**
 * Collects the store's blob cache: removes temp files of dead writers, blobs no stored image refers to, and then
 * the least recently used blobs until what stays fits `maxSize`. Blobs used within `minAge` and temp files a live
 * writer holds are never touched. A cache other stores also use (cache-users.ts) loses no blob as unreferenced.
 */
export async function pruneBlobCache(store: Store, options: PruneBlobCacheOptions = {}): Promise<PruneBlobCacheResult> {
  const cacheDir = options.cacheDir ?? store.config.blobCache;
  const sharedWith = await otherCacheUsers(cacheDir, store.graphroot, options.dryRun !== true);
  const referenced = options.keepUnreferenced || sharedWith.length > 0 ? undefined : await referencedBlobs(store);
  return { ...(await collect(cacheDir, referenced, options)), sharedWith };
}

/** The size cap alone, without a store: evicts least recently used blobs of `cacheDir` until they fit `maxSize`. */
export async function trimBlobCache(
  cacheDir: string,
  maxSize: number,
  options: Omit<PruneBlobCacheOptions, 'maxSize' | 'cacheDir' | 'keepUnreferenced'> = {},
): Promise<PruneBlobCacheResult> {
  return { ...(await collect(cacheDir, undefined, { ...options, maxSize })), sharedWith: [] };
}

async function collect(
  root: string,
  referenced: Set<string> | undefined,
  options: PruneBlobCacheOptions,
): Promise<Omit<PruneBlobCacheResult, 'sharedWith'>> {
  const maxSize = options.maxSize ?? cacheMaxSizeFromEnv(options.env ?? process.env);
  const minAge = options.minAge ?? DEFAULT_BLOB_MIN_AGE_MS;
  const now = options.now ?? Date.now();
  const dryRun = options.dryRun === true;
  const scan = await scanBlobCache(root);
  const removed: RemovedBlob[] = [];
  let inFlight = 0;

  for (const t of scan.temps) {
    const abandoned = await probeTemp(t.path, !dryRun);
    if (abandoned) removed.push({ path: t.path, size: t.size, reason: 'abandoned' });
    else inFlight++;
  }

  const recent = (b: CachedBlob): boolean => now - b.mtimeMs < minAge;
  const remove = async (b: CachedBlob, reason: RemovedBlob['reason']): Promise<void> => {
    if (!dryRun) await unlink(b.path).catch(() => {});
    removed.push({ digest: b.digest, path: b.path, size: b.size, reason });
  };
  let kept: CachedBlob[] = [];
  for (const b of scan.blobs) {
    if (referenced && !referenced.has(b.digest) && !recent(b)) await remove(b, 'unreferenced');
    else kept.push(b);
  }
  if (maxSize !== undefined) {
    let total = kept.reduce((n, b) => n + b.size, 0);
    // Oldest use first; ties broken by digest so the order is stable.
    const byAge = [...kept].sort((a, b) => a.mtimeMs - b.mtimeMs || (a.digest < b.digest ? -1 : 1));
    const evicted = new Set<CachedBlob>();
    for (const b of byAge) {
      if (total <= maxSize) break;
      if (recent(b)) continue;
      await remove(b, 'evicted');
      evicted.add(b);
      total -= b.size;
    }
    kept = kept.filter((b) => !evicted.has(b));
  }
  const result: Omit<PruneBlobCacheResult, 'sharedWith'> = {
    removed,
    freed: removed.reduce((n, r) => n + r.size, 0),
    kept: { count: kept.length, size: kept.reduce((n, b) => n + b.size, 0) },
    inFlight,
  };
  if (maxSize !== undefined) result.maxSize = maxSize;
  return result;
}

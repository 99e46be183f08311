/**
 * `podman save` as a library call: images of a store written as a docker-archive, an oci-archive or an OCI layout
 * directory, which `podman load` / `carrier load` take back with the same image ids.
 *
 * What podman 4.3.1 writes (observed with `podman save` on a private overlay store):
 *   docker-archive  `<diff_id hex>.tar` (the uncompressed layer), `<id>.json` (the config), per layer the legacy
 *                   `<v1 id>/{layer.tar -> ../<diff_id hex>.tar, VERSION, json}`, then `manifest.json`
 *                   ([{Config, RepoTags, Layers}]) and `repositories`; every entry mode 0444 (the link 0), uid/gid 0,
 *                   mtime 0, ustar. An image saved by id has RepoTags []; `-m` puts several images in one archive.
 *   oci-archive     a tar of an OCI layout: `blobs/`, `blobs/sha256/…`, `index.json`, `oci-layout`. Layers are
 *   oci-dir         gzip-compressed again and the manifest rewritten with OCI media types (so its digest changes);
 *                   index.json names the image by the full name it was asked for
 *                   (`org.opencontainers.image.ref.name: localhost/foo:1`), or not at all when asked by id.
 *
 * saveImages is copyImage from the store transport (src/transports/store-source.ts) to the docker-archive or OCI
 * layout transport (docker-archive-destination.ts, oci-layout-destination.ts). Carrier writes what podman writes,
 * with two differences: when the blob cache holds every compressed layer blob of the stored manifest, those blobs
 * and the stored manifest bytes are written as they are (so the manifest digest survives the round trip); and the
 * legacy v1 ids of a docker-archive are Carrier's own (no loader reads them; manifest.json is what `podman load` and
 * `docker load` use). Layers come from the store's tar-split, byte-exact, and each is checked against its diff_id
 * and size as it is written. A cached blob that no longer verifies (the cache checks only sizes) is evicted and its
 * layer rebuilt from the store (src/copy/from-store.ts): a file or directory output is written again from the start
 * after the failed attempt removed what it wrote; a stream, FIFO or device has the cached blobs hashed before the
 * first byte is written.
 */
import type { Writable } from 'node:stream';
import { CarrierError, abortError } from '../errors.js';
import type { Store } from '../store/store.js';
import { BlobCache } from '../store/blobs.js';
import { openStoreSource, type StoreImageSource } from '../transports/store-source.js';
import { OciLayoutDestination } from '../transports/oci-layout-destination.js';
import { DockerArchiveDestination } from '../transports/docker-archive-destination.js';
import { copyImage } from '../copy/copy-image.js';
import { copyFromStore } from '../copy/from-store.js';
import { writtenWhole } from '../transports/archive-output.js';

export type SaveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface SaveOptions {
  /** Default `docker-archive`. */
  format?: SaveFormat;
  /**
   * A file (archives: written beside and renamed into place when complete, so a failure leaves no partial file and
   * removes nothing Carrier did not create; a FIFO or device is written as it is; docker-archive refuses an existing
   * non-empty file with CARRIER_EXISTS, as podman does), a writable stream (archives), or a new or empty directory (oci-dir).
   */
  output: string | Writable;
  /** OCI formats: how layers not found in the blob cache are written. Default `gzip`, as podman does. */
  compression?: 'gzip' | 'none';
  /** OCI formats: reuse compressed blobs from the blob cache (default true); a path picks another cache. */
  blobCache?: boolean | string;
  /** Where recompressed layers wait until their size is known (default the OS temp dir). */
  tmpDir?: string;
  signal?: AbortSignal;
}

export interface SavedImage {
  id: string;
  /** The names the archive gives the image (RepoTags, or the ref.name annotation). */
  names: string[];
  /** OCI formats: the digest of the manifest written. */
  manifestDigest?: string;
  /** OCI formats: true when the stored manifest was written as it is (all its blobs came from the blob cache). */
  manifestReused?: boolean;
}

export interface SaveResult {
  format: SaveFormat;
  images: SavedImage[];
  /** Layers written (each once), with where their bytes came from. */
  layers: { diffID: string; digest: string; size: number; source: 'store' | 'blob-cache' | 'recompressed' }[];
  /** Bytes written (archives: the tar's size; oci-dir: the files'). */
  bytes: number;
}

/**
 * Writes images of `store` (each query as `podman save` takes it: name, short name, id or id prefix) in `format`.
 * docker-archive takes several images (podman's `-m`); the OCI formats put one index.json entry per image.
 */
export async function saveImages(store: Store, queries: readonly string[], options: SaveOptions): Promise<SaveResult> {
  // Layers stay put while they are rebuilt: an rmi elsewhere waits for the save.
  return store.withLayersHeld(() => saveImagesHeld(store, queries, options));
}

async function saveImagesHeld(store: Store, queries: readonly string[], options: SaveOptions): Promise<SaveResult> {
  const format = options.format ?? 'docker-archive';
  if (!['docker-archive', 'oci-archive', 'oci-dir'].includes(format)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown save format '${format}': use docker-archive, oci-archive or oci-dir`);
  }
  if (queries.length === 0) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'no images to save');
  if (format === 'oci-dir' && typeof options.output !== 'string') {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'oci-dir needs a directory path as output');
  }
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  // docker-archive layers are the store's tars; the OCI formats reuse compressed blobs from the cache.
  const cache =
    format === 'docker-archive' || options.blobCache === false
      ? undefined
      : new BlobCache(typeof options.blobCache === 'string' ? options.blobCache : store.config.blobCache);
  const open = async (): Promise<StoreImageSource[]> => {
    const sources: StoreImageSource[] = [];
    for (const q of queries) sources.push(await openStoreSource(store, q, cache ? { blobCache: cache } : {}));
    return sources;
  };
  // A stream, FIFO or device takes the archive as it is written: a copy that failed there cannot run again.
  const once = format !== 'oci-dir' && !(await writtenWhole(options.output));
  return copyFromStore(open, (sources) => saveSources(sources, format, options), { ...(cache ? { cache } : {}), once });
}

/** Writes the opened images; a failure removes what it wrote (a temporary archive, a layout directory). */
async function saveSources(sources: readonly StoreImageSource[], format: SaveFormat, options: SaveOptions): Promise<SaveResult> {
  const { signal } = options;
  const common = { ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}), ...(signal ? { signal } : {}) };
  const destination =
    format === 'docker-archive'
      ? new DockerArchiveDestination(options.output, common)
      : await OciLayoutDestination.open(format === 'oci-dir' ? 'oci' : 'oci-archive', options.output, {
          ...common,
          ...(options.compression ? { compression: options.compression } : {}),
        });
  const result: SaveResult = { format, images: [], layers: [], bytes: 0 };
  const seen = new Set<string>();
  try {
    for (const source of sources) {
      const names = source.matchedName !== undefined ? [source.matchedName] : [];
      const r = await copyImage(source, destination, { names, concurrency: 1, ...(signal ? { signal } : {}) });
      for (const l of r.layers) {
        if (seen.has(l.diffID)) continue;
        seen.add(l.diffID);
        const from = l.state === 'recompressed' ? 'recompressed' : l.digest === l.diffID ? 'store' : 'blob-cache';
        result.layers.push({ diffID: l.diffID, digest: l.digest, size: l.size, source: from });
      }
      if (format !== 'docker-archive') {
        result.images.push({ id: r.id, names, manifestDigest: r.manifestDigest, manifestReused: r.manifestReused && source.storedManifest });
      }
    }
    await destination.close();
  } catch (err) {
    await destination.abort().catch(() => {});
    throw err;
  }
  if (destination instanceof DockerArchiveDestination) result.images = destination.images();
  result.bytes = destination.bytes;
  return result;
}

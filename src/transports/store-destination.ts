// containers-storage: as a destination. Every layer the store lacks is handed to commitImage as a stream, which
// applies it on native threads (hash, decompress, hash, untar, tar-split) and checks digest, size and diff_id: the
// store owns those checks, nothing before it repeats them. With a blob cache, a cached blob is applied from disk
// instead of the source (containers/image's TryReusingBlob), and a streamed blob is teed into the cache by
// applyLayer's decode thread, so it is written without a second pass.
import type { Readable } from 'node:stream';
import { BlobCache, type BlobWriter } from '../store/blobs.js';
import { lockBlob, type BlobLock } from '../store/blob-lock.js';
import type { AppliedLayer } from '../layer/apply.js';
import type { CommitLayer, CommitOptions, ImageCommit, Store } from '../store/store.js';
import type { LayerStream } from '../store/layers.js';
import { layerIdFor } from '../store/ids.js';
import { CONTENT_ERRORS, CarrierError } from '../errors.js';
import { signatureToBlob } from '../trust/index.js';
import { isChunked } from '../chunked/annotations.js';
import { claimedIndex, storeFiles, writeFileIndex, type LocalFile } from '../chunked/file-index.js';
import { fetchChunkedToc, partialPays, planPartial, type ChunkedToc, type PartialLayer } from '../chunked/partial.js';
import type { ImageDestination, ImageSource, LayerBlob, PutImageOptions, PutImageResult, PutLayerResult } from './types.js';

export interface StoreDestinationOptions {
  /** Reuse and fill this blob cache (compressed blobs by digest). Default: none. */
  blobCache?: BlobCache;
  /** false: layers are recorded complete without a syncfs first (see CommitOptions.sync). */
  sync?: boolean;
  /** The store's own per-layer events (diffID and layer id). */
  onCommitLayer?: CommitOptions['onLayer'];
  /**
   * zstd:chunked layers: 'auto' (default) fetches only the files the store lacks when that is cheaper than the whole
   * blob (src/chunked/partial.ts); 'never' always fetches whole blobs.
   */
  partial?: 'auto' | 'never';
  /**
   * A partial pull hard-links a store file instead of reflinking or copying it when owner, mode, mtime and xattrs
   * match (containers-storage's `use_hard_links`; the layers then share inodes). Default: false.
   */
  useHardLinks?: boolean;
  /** Bytes the image's new layers may write to disk (see CommitOptions.maxImageBytes). */
  maxImageBytes?: number;
}

/**
 * Failures of a partial pull's ranged fetches or store reads that say nothing against the image (a registry or proxy
 * that refuses ranges, a dropped connection, a store file removed meanwhile): the layers are then fetched whole. A TOC,
 * tar-split or content that does not verify is never among them: that refuses the image.
 */
const PARTIAL_TRANSPORT_ERRORS = new Set(['CARRIER_REGISTRY_ERROR', 'CARRIER_UNSUPPORTED', 'CARRIER_STREAM_ERROR', 'CARRIER_STALE_INDEX', 'ECONNRESET', 'EPIPE', 'ENOENT']);
const partialTransportFailure = (err: unknown): boolean => PARTIAL_TRANSPORT_ERRORS.has((err as { code?: string }).code ?? '');

export class StoreDestination implements ImageDestination {
  readonly transport = 'containers-storage' as const;
  readonly reference: string;
  readonly keepsSignatures = true;

  constructor(
    private readonly store: Store,
    private readonly options: StoreDestinationOptions = {},
  ) {
    this.reference = `containers-storage:[${store.driverName}@${store.graphroot}+${store.runroot}]`;
  }

  async putImage(image: ImageSource, options: PutImageOptions): Promise<PutImageResult> {
    if (options.signers && options.signers.length > 0) {
      throw new CarrierError('CARRIER_UNSUPPORTED', 'signing is supported when pushing to a registry, not into containers-storage');
    }
    const cache = this.options.blobCache;
    const { signal } = options;
    const layers = image.layers;
    const states = new Map<number, 'reused' | 'copied'>();
    const fromCache = new Set<string>();
    const ids: string[] = [];
    let local: Map<string, LocalFile> | undefined;
    let partialUsed = false;
    // The TOCs of the zstd:chunked layers to fetch (for the partial-or-full decision, and for the claims a layer pulled
    // whole keeps), and the layers to pull partially, whose tar-splits are checked against their TOCs.
    const tocs = new Map<number, Promise<ChunkedToc | undefined>>();
    const partials = new Set<number>();
    const commitLayer = (index: number, layer: LayerBlob): CommitLayer => {
      let writer: BlobWriter | undefined;
      let partial: PartialLayer | undefined;
      let lock: BlobLock | undefined;
      const unlock = async (): Promise<void> => {
        const held = lock;
        lock = undefined;
        await held?.release();
      };
      const openLayer = async (): Promise<Readable | string | LayerStream> => {
        partial = undefined; // (a retry after a partial attempt fetches whole)
        const cached = cache ? await cache.lookup(layer.digest, layer.size) : undefined;
        if (cached) {
          await unlock(); // a committed blob never changes: reading it needs no lock
          fromCache.add(layer.digest);
          states.set(index, 'reused');
          options.onLayer?.(layer, 'reused');
          return cached;
        }
        const onBytes = options.onBytes ? (n: number): void => options.onBytes!(layer, n) : undefined;
        const toc = partials.has(index) ? await tocs.get(index) : undefined;
        if (local && toc) {
          // Only the layers partialPays chose (below, on these same files) are in partials: the decision is not made twice.
          partial = await planPartial(layer, local, { toc, pays: true, ...(this.options.useHardLinks ? { hardlinks: true } : {}), ...(signal ? { signal } : {}), ...(onBytes ? { onFetched: onBytes } : {}) });
          if (partial) {
            partialUsed = true;
            states.set(index, 'copied');
            options.onLayer?.(layer, 'copying');
            options.onPartial?.(layer, { toFetch: partial.toFetch, skipped: partial.skipped });
            return { stream: partial.tar, rebuiltTar: true, cloneFrom: partial.clones, ...(this.options.useHardLinks ? { hardlinkClones: true } : {}) };
          }
        }
        states.set(index, 'copied');
        options.onLayer?.(layer, 'copying');
        const stream = await layer.open(signal ? { signal } : {});
        // The cache copy is written by applyLayer's decode thread (teeFd), not here: no per-chunk round trip
        // through the thread pool on the way to the decompressor.
        if (cache) {
          writer = await cache.begin(layer.digest).catch((err: unknown) => {
            stream.destroy();
            throw err;
          });
        }
        return { stream, ...(onBytes ? { onBytes } : {}), ...(writer ? { teeFd: writer.fd } : {}) };
      };
      return {
        diffID: layer.diffID,
        digest: layer.digest,
        size: layer.size,
        open: async () => {
          // One download per blob: a pull that needs a blob another pull is fetching into this cache waits for it,
          // then applies the cached copy. The lock is held until settle (or a failure here) lets it go, and settle
          // comes as soon as the layer's own content is verified, before a vfs layer waits for its parent's merge:
          // a holder never waits for another layer, which could be waiting for this lock (one blob twice in an
          // image, or two images with shared blobs in another order).
          if (cache) lock = await lockBlob(cache.root, layer.digest, signal);
          try {
            return await openLayer();
          } catch (err) {
            await unlock();
            throw err;
          }
        },
        settle: async (applied: AppliedLayer | undefined) => {
          try {
            if (writer) {
              if (applied) await writer.commit();
              else await writer.abort();
              writer = undefined;
            }
          } finally {
            await unlock();
          }
          // A partial pull's TOC digests are now verified (each file hashed, the diff_id matched): its index is free.
          if (applied && partial) await writeFileIndex(this.store, ids[index]!, partial.files);
          // Pulled whole with its TOC at hand: the TOC's digests become claims, which spare the next pull hashing.
          else if (applied && tocs.has(index)) {
            const toc = await tocs.get(index);
            if (toc) await writeFileIndex(this.store, ids[index]!, claimedIndex(toc.contents)).catch(() => {});
          }
          if (applied) options.onLayer?.(layer, 'done');
        },
      };
    };

    // Layers the store already has are announced up front (podman: "Copying blob … skipped: already exists").
    const present = new Set((await this.store.layers()).filter((l) => !l.incomplete && !l.readOnly).map((l) => l.id));
    const announced = new Set<number>();
    let parentId: string | undefined;
    layers.forEach((l, i) => {
      parentId = layerIdFor(parentId, l.diffID);
      ids.push(parentId);
      if (present.has(parentId)) {
        announced.add(i);
        options.onLayer?.(l, 'exists');
      }
    });

    // zstd:chunked layers the store lacks: their TOCs are fetched and checked, and the store's file indexes read
    // meanwhile; each TOC then decides its layer (partialPays), and the tar-splits of the layers to pull partially are
    // checked against their TOCs, all before the store is touched (a TOC or tar-split that lies refuses the image
    // here). A layer pulled whole never has its tar-split read. A layer applied from the blob cache, and every layer
    // when the store has no layer to take files from, is fetched whole at once: its TOC, fetched alongside, only
    // gives the claims the next pull uses (one that does not check gives none).
    const candidates = this.options.partial === 'never' ? [] : layers.flatMap((l, i) => (present.has(ids[i]!) || !l.fetchRanges || !isChunked(l.annotations) ? [] : [i]));
    const skipTransport = (err: unknown): undefined => {
      if (partialTransportFailure(err)) return undefined;
      throw err;
    };
    const cached = await Promise.all(candidates.map(async (i) => (cache ? (await cache.lookup(layers[i]!.digest, layers[i]!.size)) !== undefined : false)));
    const chunked = present.size === 0 ? [] : candidates.filter((_, k) => !cached[k]);
    for (const i of candidates) {
      const toc = fetchChunkedToc(layers[i]!, signal).catch(skipTransport);
      tocs.set(i, chunked.includes(i) ? toc : toc.catch(() => undefined));
    }
    if (chunked.length > 0) {
      const fetched = Promise.all(chunked.map((i) => tocs.get(i)!));
      const wanted = fetched.then((got) => {
        const contents = got.flatMap((t) => t?.contents ?? []);
        if (contents.length === 0) return undefined;
        return { sizes: new Set(contents.map((c) => c.size)), digests: new Set(contents.map((c) => c.digest)) };
      });
      const found = storeFiles(this.store, wanted.catch(() => undefined), signal);
      const got = await fetched.catch(async (err: unknown) => {
        await found.catch(() => {});
        throw err;
      });
      local = await found;
      const files = local;
      if (files) {
        await Promise.all(
          chunked.map(async (i, k) => {
            const toc = got[k];
            if (toc && partialPays(layers[i]!, toc, files) && (await toc.index())) partials.add(i);
          }),
        );
      }
    }
    const commit: ImageCommit = {
      config: image.config,
      configDigest: image.configDigest,
      manifest: image.manifest,
      manifestDigest: image.manifestDigest,
      ...(image.list ? { list: { bytes: image.list.bytes, digest: image.list.digest } } : {}),
      layers: layers.map((l, i) => commitLayer(i, l)),
      names: [...options.names],
      ...(image.created ? { created: image.created } : {}),
      // Kept as podman keeps them: podman push and skopeo copy from this store carry them on.
      ...(options.signatures ? { signatures: options.signatures.map(signatureToBlob) } : {}),
    };
    const commitOptions: CommitOptions = {
      concurrency: options.concurrency,
      ...(signal ? { signal } : {}),
      ...(this.options.sync === false ? { sync: false } : {}),
      ...(this.options.onCommitLayer ? { onLayer: this.options.onCommitLayer } : {}),
      ...(this.options.maxImageBytes !== undefined ? { maxImageBytes: this.options.maxImageBytes } : {}),
    };
    let result;
    try {
      result = await this.store.commitImage(commit, commitOptions);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (partialUsed && partialTransportFailure(err)) {
        // Ranges could not be fetched (or a store file read): the layers are fetched whole instead.
        local = undefined;
        states.clear();
        result = await this.store.commitImage(commit, commitOptions);
      } else {
        // A cached blob that no longer verifies (a crash before it reached the disk, a bad disk) is dropped and the
        // copy retried once from the source.
        if (!cache || fromCache.size === 0 || !code || !CONTENT_ERRORS.has(code)) throw err;
        for (const d of fromCache) await cache.evict(d);
        fromCache.clear();
        states.clear();
        result = await this.store.commitImage(commit, commitOptions);
      }
    }
    const byDiff = new Map(result.layers.map((l) => [l.diffID, l]));
    const out: PutLayerResult[] = layers.map((l, i) => {
      const state = byDiff.get(l.diffID)?.applied ? (states.get(i) ?? 'copied') : 'exists';
      if (state === 'exists' && !announced.has(i)) options.onLayer?.(l, 'exists');
      return { digest: l.digest, size: l.size, diffID: l.diffID, state };
    });
    return { id: result.id, names: result.names, manifestDigest: image.manifestDigest, manifestReused: true, layers: out };
  }

  async close(): Promise<void> {}

  /** Nothing to undo: a commit that failed has already left the store as it was. */
  async abort(): Promise<void> {}
}

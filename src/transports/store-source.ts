// containers-storage: as a source. The image's config and stored manifest are read from its big data; each layer is
// handed out as the compressed blob the stored manifest names when the blob cache still has it, else as the
// original tar rebuilt from the store's tar-split (byte-exact; its digest is the diff_id). When every blob is in the
// cache the stored manifest is offered as it is; otherwise an OCI manifest that describes the layers handed out.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import type { ImageInfo, Store } from '../store/store.js';
import { findImage } from '../store/lookup.js';
import type { BlobCache } from '../store/blobs.js';
import { layerChain, type ChainLayer } from '../checkout/checkout.js';
import { parseImageConfig, parseManifest, type ImageManifest } from '../oci/manifest.js';
import { sha256Digest } from '../oci/digest.js';
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST, layerCompression } from '../oci/mediatypes.js';
import type { ImageSource, LayerBlob } from './types.js';
import { signatureFromBlob, type UntrustedSignature } from '../trust/index.js';
import { splitSignatures, storedSignatureSizes } from '../store/signatures.js';

export interface StoreSourceOptions {
  /** Hand out compressed blobs from this cache where it has the stored manifest's layers. */
  blobCache?: BlobCache;
}

/** A store image as a source, with what the store knows about how it was found. */
export interface StoreImageSource extends ImageSource {
  readonly transport: 'containers-storage';
  readonly info: ImageInfo;
  /** The stored name the query matched (undefined when it matched by id). */
  readonly matchedName?: string;
  /** True when `manifest` is the stored manifest (every layer blob came from the blob cache). */
  readonly storedManifest: boolean;
  /**
   * The layer blobs this source hands out from the blob cache as they are (the cache checks only their sizes: see
   * src/copy/from-store.ts for what a copy does when one no longer verifies).
   */
  readonly cachedBlobs: readonly { digest: string; size: number }[];
}

/** The OCI layer media type for a compression. */
export function ociLayerType(compression: 'gzip' | 'zstd' | 'none'): string {
  return compression === 'gzip' ? OCI_LAYER_GZIP : compression === 'zstd' ? OCI_LAYER_ZSTD : OCI_LAYER_TAR;
}

/**
 * Opens an image of `store` (a name, short name, id or id prefix, as podman takes it) as a source. Hold the store's
 * layers (Store.withLayersHeld) while its layers are read, so an rmi elsewhere waits.
 */
export async function openStoreSource(store: Store, query: string, options: StoreSourceOptions = {}): Promise<StoreImageSource> {
  const info = await store.requireImage(query);
  // The name the query matched: the one name that finds this image on its own (none when it matched by id).
  const matchedName = info.names.find((n) => findImage([{ id: '', digests: [], names: [n] }], query) !== undefined);
  const configDigest = `sha256:${info.id}`;
  const config = await store.imageBigData(info.id, configDigest);
  const chain = await layerChain(store, info.topLayer);
  let diffIDs: string[] | undefined;
  let created: string | undefined;
  try {
    const parsed = parseImageConfig(config);
    diffIDs = parsed.rootfs.diff_ids;
    created = parsed.created;
  } catch {
    diffIDs = undefined;
  }
  if (diffIDs) {
    const have = chain.map((l) => l.diffID);
    if (have.length !== diffIDs.length || have.some((d, i) => d !== diffIDs[i])) {
      throw new CarrierError('CARRIER_CORRUPT_STORE', `image ${info.id.slice(0, 12)}: its layers (${have.join(', ')}) do not match its config's diff_ids`);
    }
  }
  for (const l of chain) {
    if (l.diffID === undefined) throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${l.id} has no diff digest`);
  }

  let stored: ImageManifest | undefined;
  let storedBytes: Buffer | undefined;
  try {
    storedBytes = await store.imageBigData(info.id, 'manifest');
    const m = parseManifest(storedBytes);
    if (m.kind === 'manifest' && m.layers.length === chain.length && m.config.digest === configDigest) stored = m;
  } catch {
    stored = undefined;
  }
  const cache = options.blobCache;
  const layers: LayerBlob[] = [];
  const cachedBlobs: { digest: string; size: number }[] = [];
  let allCached = stored !== undefined;
  for (const [i, l] of chain.entries()) {
    const d = stored?.layers[i];
    const cached = d && cache && layerCompression(d.mediaType) !== undefined ? await cache.lookup(d.digest, d.size) : undefined;
    const diffSize = l.diffSize ?? (await tarLength(store, l));
    const openTar = (): Promise<Readable> => store.exportLayer(l.id);
    if (d && cached !== undefined) {
      cachedBlobs.push({ digest: d.digest, size: d.size });
      layers.push({ digest: d.digest, size: d.size, mediaType: d.mediaType, diffID: l.diffID!, diffSize, ...(d.annotations ? { annotations: d.annotations } : {}), open: () => openFile(cached), openTar });
    } else if (d && layerCompression(d.mediaType) === 'none' && d.digest === l.diffID && d.size === diffSize) {
      // An uncompressed layer is its rebuilt tar: the stored manifest still describes it (and its signatures hold).
      layers.push({ digest: d.digest, size: d.size, mediaType: d.mediaType, diffID: l.diffID!, diffSize, rebuilt: true, open: openTar, openTar });
    } else {
      allCached = false;
      layers.push({ digest: l.diffID!, size: diffSize, mediaType: OCI_LAYER_TAR, diffID: l.diffID!, diffSize, rebuilt: true, open: openTar, openTar });
    }
  }
  let manifest: Buffer;
  let parsedManifest: ImageManifest;
  if (allCached && stored && storedBytes) {
    manifest = storedBytes;
    parsedManifest = stored;
  } else {
    manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
        layers: layers.map((l) => ({ mediaType: ociLayerType(layerCompression(l.mediaType) ?? 'none'), digest: l.digest, size: l.size })),
        ...(stored?.annotations ? { annotations: stored.annotations } : {}),
      }),
    );
    parsedManifest = parseManifest(manifest, OCI_MANIFEST) as ImageManifest;
  }
  return {
    transport: 'containers-storage',
    reference: `containers-storage:[${store.driverName}@${store.graphroot}+${store.runroot}]${matchedName ?? info.id}`,
    names: matchedName !== undefined ? [matchedName] : [],
    manifest,
    manifestDigest: sha256Digest(manifest),
    manifestMediaType: parsedManifest.mediaType,
    parsedManifest,
    config,
    configDigest,
    ...(created !== undefined ? { created } : {}),
    layers,
    info,
    ...(matchedName !== undefined ? { matchedName } : {}),
    storedManifest: allCached,
    cachedBlobs,
    // The stored signatures cover the stored manifest only: with a manifest made here they cannot go along.
    signatures: async () => {
      const signatures = await storedSignatures(store, info);
      if (signatures.length > 0 && !allCached) {
        throw new CarrierError(
          'CARRIER_UNSUPPORTED',
          `image ${info.id.slice(0, 12)} is signed, but its layers are not in the blob cache as its manifest names them: copying it would change its manifest, which would invalidate its signatures: drop them with --remove-signatures`,
        );
      }
      return signatures;
    },
  };
}

/** The image's signatures as podman keeps them in the store (`signatures` big data, sizes in the metadata). */
async function storedSignatures(store: Store, info: ImageInfo): Promise<UntrustedSignature[]> {
  const sizes = storedSignatureSizes(info.record.metadata, info.id);
  if (sizes.length === 0) return [];
  const data = await store.imageBigData(info.id, 'signatures');
  return splitSignatures(data, sizes, info.id).map((b, i) => signatureFromBlob(b, `signature ${i + 1} of image ${info.id.slice(0, 12)} in the store`));
}

/** A cached blob, opened without following a symlink. */
async function openFile(path: string): Promise<Readable> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  return fh.createReadStream({ highWaterMark: 1 << 20 });
}

/** The length of a layer's tar when its record lacks it (never the case for a committed layer): one pass. */
async function tarLength(store: Store, layer: ChainLayer): Promise<number> {
  let n = 0;
  for await (const chunk of await store.exportLayer(layer.id)) n += (chunk as Buffer).length;
  return n;
}

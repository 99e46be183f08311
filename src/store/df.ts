// Disk usage of a store, measured the way `du` measures: allocated blocks (st_blocks × 512) of the real directories,
// every hardlinked inode once, directories themselves included, without crossing into other mounted filesystems
// (a live overlay mount on a layer's merged/ is not the layer's own usage). Shared layers are counted once.
//
// What is measured, per kind:
//   layer       <graphroot>/overlay/<id>/ and <graphroot>/overlay-layers/<id>.tar-split.gz
//   image       its layers (the whole chain) and <graphroot>/overlay-images/<id>/ (config, manifests, ...)
//   container   its own read-write layer and <graphroot|runroot>/overlay-containers/<id>/
//   blob cache  everything under the cache directory
// The walk uses fs/promises only, so the event loop stays free.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerInfo, ImageInfo, LayerInfo, Store } from './store.js';
import { diskUsage, referencedBlobs, scanBlobCache } from './gc.js';
import { otherCacheUsers } from './cache-users.js';

export interface DfSummary {
  total: number;
  active: number;
  /** Bytes on disk. */
  size: number;
  /** Bytes removing the inactive ones would free. */
  reclaimable: number;
}

export interface DfImage {
  id: string;
  names: string[];
  created?: string;
  /** Its layers and its own directory. */
  size: number;
  /** The part of `size` in layers other images also use. */
  sharedSize: number;
  uniqueSize: number;
  containers: number;
}

export interface DfContainer {
  id: string;
  names: string[];
  image: string;
  created?: string;
  /** Its read-write layer and its directories. */
  size: number;
  /** True while its layer is mounted. */
  active: boolean;
}

export interface SystemDf {
  /** Active: used by a container. */
  images: DfSummary;
  /** Active: mounted (by podman or a runtime). */
  containers: DfSummary;
  /** Every layer record. Active: part of an image or a container; the reclaimable ones belong to neither. */
  layers: DfSummary;
  blobCache: {
    /** Committed blobs. */
    count: number;
    /** Blobs a stored image refers to. */
    active: number;
    /** The whole cache directory, temp files included. */
    size: number;
    /**
     * What `pruneBlobCache` would free: blobs no image refers to (none while other stores use the cache: it keeps
     * them for those) and temp files no writer holds.
     */
    reclaimable: number;
    /** Other stores recorded as users of this cache. */
    sharedWith: string[];
  };
  /** Everything measured: images + containers + layers of neither + blob cache. */
  totalSize: number;
  imageDetails: DfImage[];
  containerDetails: DfContainer[];
}

export interface SystemDfOptions {
  /** Measure this blob cache instead of the store's. */
  cacheDir?: string;
}

function chainOf(top: string | undefined, layers: Map<string, LayerInfo>): string[] {
  const out: string[] = [];
  for (let id = top, guard = 0; id !== undefined && guard < 10_000; guard++) {
    if (!layers.has(id)) break;
    out.push(id);
    id = layers.get(id)!.parent;
  }
  return out;
}

/** Layer ids with a mount count > 0 in the run root's mountpoints.json. */
async function mountedLayers(store: Store): Promise<Set<string>> {
  try {
    const raw = JSON.parse(await readFile(join(store.runroot, `${store.driverName}-layers`, 'mountpoints.json'), 'utf8')) as unknown;
    if (!Array.isArray(raw)) return new Set();
    return new Set(raw.filter((m) => m && typeof m.id === 'string' && (m.count ?? 0) > 0).map((m) => m.id as string));
  } catch {
    return new Set();
  }
}

/** Disk usage of the store and its blob cache (see the file comment for what is measured). */
export async function systemDf(store: Store, options: SystemDfOptions = {}): Promise<SystemDf> {
  const g = store.graphroot;
  const allLayers = (await store.layers()).filter((l) => !l.readOnly);
  const layers = new Map(allLayers.map((l) => [l.id, l]));
  const images: ImageInfo[] = (await store.images()).filter((i) => !i.readOnly);
  const containers: ContainerInfo[] = await store.containers();
  const mounted = await mountedLayers(store);

  const seen = new Set<string>();
  const layerSize = new Map<string, number>();
  for (const l of allLayers) {
    const size = (await diskUsage(store.layerDir(l.id), seen)) + (await diskUsage(join(g, `${store.driverName}-layers`, `${l.id}.tar-split.gz`), seen));
    layerSize.set(l.id, size);
  }
  const sizeOf = (ids: Iterable<string>): number => {
    let n = 0;
    for (const id of ids) n += layerSize.get(id) ?? 0;
    return n;
  };

  // Images: shared layers once.
  const chains = new Map(images.map((i) => [i.id, chainOf(i.topLayer, layers)]));
  const users = new Map<string, number>(); // layer → number of images whose chain holds it
  for (const chain of chains.values()) for (const id of chain) users.set(id, (users.get(id) ?? 0) + 1);
  const ownDir = new Map<string, number>();
  for (const i of images) ownDir.set(i.id, await diskUsage(join(g, `${store.driverName}-images`, i.id), seen));
  const containersOf = new Map<string, number>();
  for (const c of containers) containersOf.set(c.image, (containersOf.get(c.image) ?? 0) + 1);
  const imageLayers = new Set([...chains.values()].flat());
  const activeImages = images.filter((i) => (containersOf.get(i.id) ?? 0) > 0);
  const activeImageLayers = new Set(activeImages.flatMap((i) => chains.get(i.id)!));
  const imagesSize = sizeOf(imageLayers) + images.reduce((n, i) => n + ownDir.get(i.id)!, 0);
  const activeImagesSize = sizeOf(activeImageLayers) + activeImages.reduce((n, i) => n + ownDir.get(i.id)!, 0);
  const imageDetails: DfImage[] = images.map((i) => {
    const chain = chains.get(i.id)!;
    const shared = sizeOf(chain.filter((id) => (users.get(id) ?? 0) > 1));
    const size = sizeOf(chain) + ownDir.get(i.id)!;
    const d: DfImage = { id: i.id, names: i.names, size, sharedSize: shared, uniqueSize: size - shared, containers: containersOf.get(i.id) ?? 0 };
    if (i.created) d.created = i.created;
    return d;
  });

  // Containers: their own layer (the image's chain is counted with the image) and their directories.
  const containerDetails: DfContainer[] = [];
  for (const c of containers) {
    let size = layerSize.get(c.layer) ?? 0;
    for (const root of [g, store.runroot]) size += await diskUsage(join(root, `${store.driverName}-containers`, c.id), seen);
    const d: DfContainer = { id: c.id, names: c.names, image: c.image, size, active: mounted.has(c.layer) };
    if (c.created) d.created = c.created;
    containerDetails.push(d);
  }
  const containersSize = containerDetails.reduce((n, c) => n + c.size, 0);

  // Layers: all of them; the reclaimable ones belong to no image and no container.
  const containerLayers = new Set(containers.map((c) => c.layer));
  const loose = allLayers.filter((l) => !imageLayers.has(l.id) && !containerLayers.has(l.id)).map((l) => l.id);
  const layersSize = sizeOf(layers.keys());
  const looseSize = sizeOf(loose);

  // Blob cache.
  const cacheDir = options.cacheDir ?? store.config.blobCache;
  const scan = await scanBlobCache(cacheDir, { probeTemps: true });
  const referenced = await referencedBlobs(store);
  const sharedWith = await otherCacheUsers(cacheDir, store.graphroot, false);
  const unreferenced = scan.blobs.filter((b) => !referenced.has(b.digest));
  const cacheReclaimable =
    (sharedWith.length > 0 ? 0 : unreferenced.reduce((n, b) => n + b.size, 0)) +
    scan.temps.filter((t) => t.abandoned).reduce((n, t) => n + t.size, 0);

  return {
    images: { total: images.length, active: activeImages.length, size: imagesSize, reclaimable: imagesSize - activeImagesSize },
    containers: {
      total: containers.length,
      active: containerDetails.filter((c) => c.active).length,
      size: containersSize,
      reclaimable: containerDetails.filter((c) => !c.active).reduce((n, c) => n + c.size, 0),
    },
    layers: { total: allLayers.length, active: allLayers.length - loose.length, size: layersSize, reclaimable: looseSize },
    blobCache: { count: scan.blobs.length, active: scan.blobs.length - unreferenced.length, size: scan.diskUsage, reclaimable: cacheReclaimable, sharedWith },
    totalSize: imagesSize + containersSize + looseSize + scan.diskUsage,
    imageDetails,
    containerDetails,
  };
}

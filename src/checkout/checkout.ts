// Flattened checkouts of images and containers: a layer chain merged into one plain directory tree.
import { access, mkdir, mkdtemp, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CarrierError } from '../errors.js';
import type { LayerInfo, Store } from '../store/store.js';
import { removeTree } from '../fs/remove.js';
import { mergeLayers, type MergeOptions, type MergeResult } from '../fs/merge.js';
import { makeDirs } from '../fs/batch.js';

export type CheckoutOptions = MergeOptions;

export interface CheckoutResult extends MergeResult {
  /** The image's id. */
  image: string;
  /** The layer ids merged, base first. */
  layerIds: string[];
}

/** A layer of a chain and the directory holding its content. */
export interface ChainLayer {
  id: string;
  diffID?: string;
  diffSize?: number;
  path: string;
}

/**
 * The chain of layers ending in `top`, base first, each with its diff directory: the store's own layers, or those
 * of a read-only additional image store.
 */
export async function layerChain(store: Store, top: string | undefined): Promise<ChainLayer[]> {
  if (top === undefined) return [];
  const byId = new Map<string, LayerInfo>();
  // Own layers first: a layer present in both is used from the store's own copy.
  for (const l of await store.layers()) if (!byId.has(l.id)) byId.set(l.id, l);
  const out: ChainLayer[] = [];
  const seen = new Set<string>();
  for (let id: string | undefined = top; id !== undefined; ) {
    if (seen.has(id)) throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${id} is its own ancestor`);
    seen.add(id);
    const layer = byId.get(id);
    if (!layer) throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${id} is missing from the store`);
    if (layer.incomplete) throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${id} is incomplete`);
    const entry: ChainLayer = { id, path: await layerPath(store, layer) };
    if (layer.diffDigest !== undefined) entry.diffID = layer.diffDigest;
    if (layer.diffSize !== undefined) entry.diffSize = layer.diffSize;
    out.push(entry);
    id = layer.parent;
  }
  return out.reverse();
}

async function layerPath(store: Store, layer: LayerInfo): Promise<string> {
  if (!layer.readOnly) return store.layerDiffPath(layer.id);
  for (const root of store.config.additionalImageStores) {
    const p = store.layerDiffPath(layer.id, root);
    try {
      await access(p);
      return p;
    } catch {
      /* another store */
    }
  }
  throw new CarrierError('CARRIER_NOT_FOUND', `layer ${layer.id} of a read-only image store has no diff directory`);
}

/**
 * The directories to merge for a flattened view of `chain` (base first): every layer's diff on overlay; on vfs,
 * where each layer directory already holds its whole tree, the top layer's directory alone.
 */
export function flattenSources(store: Store, chain: readonly ChainLayer[]): string[] {
  if (store.layersAreFlat) return chain.length > 0 ? [chain[chain.length - 1]!.path] : [];
  return chain.map((l) => l.path);
}

/**
 * Flattens a chain of layer directories into `dir` (created with mode 0755 when missing; an existing one must be
 * empty). On failure `dir` is left as it was found (removed again if this call created it).
 */
export async function checkoutLayers(layers: readonly string[], dir: string, options: CheckoutOptions = {}): Promise<MergeResult> {
  let created = false;
  try {
    await mkdir(dir, { mode: 0o755 });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (layers.length === 0) {
    return {
      files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, skippedSpecials: 0, skippedXattrs: 0, bytesCloned: 0,
      bytesCopied: 0, bytesHardlinked: 0, method: 'copy', layers: 0, whiteouts: 0, opaqueDirs: 0, replaced: 0,
    };
  }
  try {
    return await mergeLayers(layers, dir, options);
  } catch (err) {
    if (created) await rmdir(dir).catch(() => {});
    throw err;
  }
}

/**
 * `carrier checkout`: the image's layers, base first, merged into `dir` with overlay's semantics (whiteouts delete,
 * opaque directories hide what is below, upper entries replace lower ones) — the tree `podman image mount` shows.
 * File contents are reflinked from the store where the filesystem can (XFS with reflink, btrfs), else copied; the
 * result says which (`method`, `bytesCloned`, `bytesCopied`).
 */
export async function checkoutImage(store: Store, query: string, dir: string, options: CheckoutOptions = {}): Promise<CheckoutResult> {
  // Layers stay put while they are read: an rmi elsewhere waits for the checkout.
  return store.withLayersHeld(async () => {
    const img = await store.requireImage(query);
    const chain = await layerChain(store, img.topLayer);
    const result = await checkoutLayers(flattenSources(store, chain), dir, options);
    return { ...result, image: img.id, layerIds: chain.map((l) => l.id) };
  });
}

/** A container's layer chain, its own read-write layer on top. */
export async function containerChain(store: Store, query: string): Promise<{ id: string; image: string; layers: ChainLayer[] }> {
  const c = await store.container(query);
  if (!c) throw new CarrierError('CARRIER_NOT_FOUND', `container not known: ${query}`);
  return { id: c.id, image: c.image, layers: await layerChain(store, c.layer) };
}

/** A private temp directory next to the store (so reflinks from the layers work), removed by `release`. */
export async function scratchDir(store: Store, tmpDir?: string): Promise<{ path: string; release(): Promise<void> }> {
  const parent = tmpDir ?? join(store.graphroot, 'carrier-tmp');
  await makeDirs(parent, 0o700);
  const path = await mkdtemp(join(parent, 'carrier-'));
  return { path, release: () => removeTree(path) };
}

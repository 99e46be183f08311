// The image store: images.json and its lock, names and tags, each image's big data
// (`<graphroot>/<driver>-images/<id>/<key>`: config, manifests), removal of an image with the layers only it used,
// and the choice of what an image prune removes.
import { basename, join } from 'node:path';
import { CarrierError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { validateStoredNames } from '../reference.js';
import { readBytes } from '../fs/read-text.js';
import { removeTree } from '../fs/remove.js';
import { syncDir, writeFileAtomic } from './atomic.js';
import { deleteContainerLocked, type ContainerStore } from './containers.js';
import { inUse, notFound } from './failures.js';
import { bigDataFileName } from './ids.js';
import type { LayerStore } from './layers.js';
import type { StoreLock } from './lock.js';
import { normalizeTagName } from './lookup.js';
import type { MountStore } from './mounts.js';
import type { ReadOnlyStore } from './readonly.js';
import { copyRecord, dedupe, omitEmpty, type ImageRecord, type LayerRecord, type RecordFile } from './records.js';
import { makeDirs } from '../fs/batch.js';

const IMAGE_FIELDS = [
  'digest', 'names', 'names-history', 'layer', 'mapped-layers', 'metadata', 'big-data-names', 'big-data-sizes',
  'big-data-digests', 'created', 'flags',
] as const;

export interface ImageInfo {
  id: string;
  digest?: string;
  /** The manifest digests this image can be found by (derived as c/storage derives them). */
  digests: string[];
  names: string[];
  namesHistory: string[];
  topLayer?: string;
  created?: string;
  /** Sum of the uncompressed sizes of the image's layers. */
  size: number;
  bigDataNames: string[];
  readOnly: boolean;
  /** The raw images.json record (a copy). */
  record: ImageRecord;
}

export interface RemovedImage {
  id: string;
  untagged: string[];
  removedLayers: string[];
  removedContainers: string[];
}

export class ImageStore {
  constructor(
    readonly file: RecordFile<ImageRecord>,
    readonly lock: StoreLock,
    /** `<graphroot>/<driver>-images`: images.json, images.lock and a directory of big data per image. */
    readonly dir: string,
  ) {}

  /** Runs `fn` holding the images lock, the records reloaded when another process changed them. */
  async with<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.lock.with(exclusive, async () => {
      await this.refresh();
      return fn();
    });
  }

  /** Reloads the records when another process changed them. Hold the lock. */
  async refresh(): Promise<void> {
    await this.file.reloadIfChanged();
  }

  get records(): ImageRecord[] {
    return this.file.records;
  }

  get(id: string): ImageRecord | undefined {
    return this.file.get(id);
  }

  /** This store's images and then the read-only stores' (an id already listed is not listed again). Hold the lock. */
  list(layers: readonly LayerRecord[], readOnly: readonly ReadOnlyStore[]): ImageInfo[] {
    const own = this.file.records.map((r) => imageInfo(r, layers, false));
    const seen = new Set(own.map((i) => i.id));
    const ro = readOnly.flatMap((s) =>
      s.images.records.filter((r) => !seen.has(r.id)).map((r) => imageInfo(r, [...s.layers.records, ...layers], true)),
    );
    return [...own, ...ro];
  }

  /** A big data item of the image kept under `root` (this store's graphroot or a read-only store's). */
  async readBigData(root: string, id: string, key: string): Promise<Buffer> {
    // an open, a read and a close: readFile asks the size first and reads until a read returns nothing (two more)
    return readBytes(join(root, basename(this.dir), id, bigDataFileName(key))).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new CarrierError('CARRIER_NOT_FOUND', `image ${id} has no big data item '${key}'`);
      throw err;
    });
  }

  /**
   * Writes big data items, durably, and records their sizes and digests on the image; save the record only after
   * this returns. Hold the write lock.
   */
  async writeBigData(record: ImageRecord, items: [key: string, data: Buffer][]): Promise<void> {
    const dir = join(this.dir, record.id);
    await makeDirs(dir, 0o700);
    const names = record['big-data-names'] ?? [];
    const sizes = record['big-data-sizes'] ?? {};
    const digests = record['big-data-digests'] ?? {};
    // Each item's contents are flushed before its rename; one directory flush after the last rename makes every new
    // name durable, as one per item did.
    for (const [key, data] of items) {
      await writeFileAtomic(join(dir, bigDataFileName(key)), data, 0o600, 'contents');
      if (!names.includes(key)) names.push(key);
      sizes[key] = data.length;
      digests[key] = sha256Digest(data);
    }
    if (items.length > 0) await syncDir(dir);
    record['big-data-names'] = names;
    record['big-data-sizes'] = sizes;
    record['big-data-digests'] = digests;
  }

  /**
   * Gives `names` to `record`, taking them from other images. `podman tag` (c/common < 0.57) appends; c/storage's
   * AddNames, which a pull or load into an existing image uses, puts the new names first. Hold the write lock.
   */
  addNames(record: ImageRecord, names: string[], order: 'append' | 'prepend' = 'append'): void {
    // Every name written must be one podman can read back, or `podman images` fails for the whole store.
    validateStoredNames(dedupe([...(record.names ?? []), ...names]));
    for (const other of this.file.records) {
      if (other === record || !other.names) continue;
      const kept = other.names.filter((n) => !names.includes(n));
      if (kept.length !== other.names.length) {
        other.names = kept;
        omitEmpty(other, IMAGE_FIELDS);
      }
    }
    record.names = order === 'append' ? dedupe([...(record.names ?? []), ...names]) : dedupe([...names, ...(record.names ?? [])]);
    record['names-history'] = dedupe([...[...names].reverse(), ...(record['names-history'] ?? [])]);
    omitEmpty(record, IMAGE_FIELDS);
  }

  /** Adds names (normalised the way podman tag does) to image `id`. Hold the write lock. */
  async tag(id: string, query: string, names: string[]): Promise<void> {
    const record = this.file.get(id);
    if (!record) throw notFound('image', query);
    this.addNames(record, dedupe(names.map(normalizeTagName)));
    await this.file.save();
  }

  /** Removes names from image `id` (all of them when `names` is undefined). Hold the write lock. */
  async untag(id: string, query: string, names: string[] | undefined): Promise<void> {
    const record = this.file.get(id);
    if (!record) throw notFound('image', query);
    if (names === undefined) {
      record.names = [];
    } else {
      const drop = new Set(names.map(normalizeTagName));
      const missing = [...drop].filter((n) => !(record.names ?? []).includes(n));
      if (missing.length > 0) throw new CarrierError('CARRIER_NOT_FOUND', `image ${id.slice(0, 12)} is not tagged ${missing.join(', ')}`);
      record.names = (record.names ?? []).filter((n) => !drop.has(n));
    }
    omitEmpty(record, IMAGE_FIELDS);
    await this.file.save();
  }

  /** Adds a new record (not yet saved). */
  add(record: ImageRecord): void {
    this.file.records.push(record);
  }

  /** Removes the image's record and big data. Hold the write lock. */
  async remove(record: ImageRecord): Promise<void> {
    this.file.records = this.file.records.filter((r) => r !== record);
    await this.file.save();
    await removeTree(join(this.dir, record.id));
  }

  /** True when an image's top layer, or one of its mapped layers, is `layerId`. */
  usesLayer(layerId: string): boolean {
    return this.file.records.some((i) => i.layer === layerId || i['mapped-layers']?.includes(layerId));
  }

  /**
   * The next image a prune removes: without `all`, a dangling one (no name, no container, not the parent of another
   * image); with `all`, any image no container uses. Hold the layers, images and containers locks.
   */
  pruneCandidate(layers: LayerStore, containers: ContainerStore, all: boolean): string | undefined {
    const used = new Set(containers.records.map((c) => c.image));
    const chainOf = (top: string | undefined): string[] => {
      const out: string[] = [];
      for (let id = top, guard = 0; id !== undefined && guard < 100_000; guard++) {
        out.push(id);
        id = layers.get(id)?.parent;
      }
      return out;
    };
    const lowerLayers = new Set(this.file.records.flatMap((i) => chainOf(i.layer).slice(1)));
    return this.file.records.find(
      (i) => !used.has(i.id) && (all || ((i.names ?? []).length === 0 && !(i.layer !== undefined && lowerLayers.has(i.layer)))),
    )?.id;
  }
}

/**
 * Removes an image and the layers only it used. An image used by a container is refused (CARRIER_IN_USE) unless
 * `force`, which removes those containers too. Hold the layers, images and containers write locks.
 */
export async function removeImageLocked(
  parts: { layers: LayerStore; images: ImageStore; containers: ContainerStore; mounts: MountStore },
  id: string,
  query: string,
  force: boolean,
): Promise<RemovedImage> {
  const { layers, images, containers } = parts;
  const record = images.get(id);
  if (!record) throw notFound('image', query);
  const users = containers.records.filter((c) => c.image === id);
  if (users.length > 0 && !force) {
    throw inUse(`image ${id.slice(0, 12)} is in use by ${users.length} container(s): ${users.map((c) => c.id.slice(0, 12)).join(', ')}`);
  }
  const removedContainers: string[] = [];
  for (const c of users) {
    await deleteContainerLocked(parts, c);
    removedContainers.push(c.id);
  }
  await images.remove(record);
  const removedLayers = unusedChain(parts, record.layer);
  await layers.delete(removedLayers);
  return { id, untagged: record.names ?? [], removedLayers, removedContainers };
}

/** The chain from `top` downwards that no remaining image, container or other branch uses. */
function unusedChain(parts: { layers: LayerStore; images: ImageStore; containers: ContainerStore }, top: string | undefined): string[] {
  const { layers, images, containers } = parts;
  const out: string[] = [];
  const removing = new Set<string>();
  let id = top;
  while (id !== undefined) {
    const layer = layers.get(id);
    if (!layer) break;
    const here = id;
    const otherChild = layers.records.some((l) => l.parent === here && !removing.has(l.id));
    if (images.usesLayer(here) || containers.records.some((c) => c.layer === here) || otherChild) break;
    out.push(here);
    removing.add(here);
    id = layer.parent;
  }
  return out;
}

export function imageInfo(r: ImageRecord, layers: readonly LayerRecord[], readOnly: boolean): ImageInfo {
  const byId = new Map(layers.map((l) => [l.id, l]));
  let size = 0;
  for (let id = r.layer, guard = 0; id !== undefined && guard < 10_000; guard++) {
    const l = byId.get(id);
    if (!l) break;
    size += l['diff-size'] ?? 0;
    id = l.parent;
  }
  const digests: string[] = [];
  if (r.digest) digests.push(r.digest);
  for (const [key, d] of Object.entries(r['big-data-digests'] ?? {})) {
    if ((key === 'manifest' || key.startsWith('manifest-')) && !digests.includes(d)) digests.push(d);
  }
  const info: ImageInfo = {
    id: r.id,
    digests,
    names: r.names ?? [],
    namesHistory: r['names-history'] ?? [],
    size,
    bigDataNames: r['big-data-names'] ?? [],
    readOnly,
    record: copyRecord(r),
  };
  if (r.digest) info.digest = r.digest;
  if (r.layer) info.topLayer = r.layer;
  if (r.created) info.created = r.created;
  return info;
}

// The store: containers/storage's layout for the overlay or the vfs driver (layout.ts), shared safely with podman.
// This facade opens it, owns the lock order, and hands each operation to the part that does it, split the way
// c/storage splits its store:
//
//   layers.ts       layers.json, the incomplete-flag protocol, tar-splits, a layer exported as its tar
//   layer-pool.ts   the workers that fill an image's missing layers; layer-completion.ts, the rounds that complete them
//   images.ts       images.json, names and tags, big data, removal, what a prune removes
//   containers.ts   containers.json, a container's layer and directories
//   mounts.ts       mountpoints.json: mount counting
//   commit.ts       an image committed: layers, then its record;  orphans.ts: repair and the orphan sweep
//   readonly.ts     read-only additional image stores;             reset.ts: emptying the store
//
// The driver (src/drivers/, chosen by createDriver) decides how a layer's directory is made and used: overlay keeps
// each layer's own diff and mounts the chain; vfs keeps each layer's whole tree and hands out its directory. The
// store never asks which driver it has.
//
// Locks are always taken in c/storage's order, storage → layers → images → containers → mounts (see `locked`), so
// Carrier and podman never wait on each other in a cycle. Every read takes the shared lock and reloads when the
// last-writer token changed; every write takes the exclusive lock, reloads, changes the records, writes them
// atomically and leaves a new token. Read-only additional image stores are only ever locked shared.
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { settled } from '../errors.js';
import { isRootless } from '../host.js';
import type { Change } from '../drivers/changes.js';
import { createDriver } from '../drivers/index.js';
import { planCommit, commitLayersLocked, recordImageLocked, type CommitResult, type ImageCommit } from './commit.js';
import { resolveStoreConfig, type StoreConfig, type StoreLocationOptions } from './config.js';
import { ContainerStore, containerInfo, createContainerLocked, deleteContainerLocked, type ContainerInfo, type CreateContainerOptions } from './containers.js';
import { inUse, notFound, readOnlyImage } from './failures.js';
import { isFullId } from './ids.js';
import { ImageStore, removeImageLocked, type ImageInfo, type RemovedImage } from './images.js';
import type { CommitOptions } from './layer-pool.js';
import { LayerStore, layerInfo, type LayerInfo } from './layers.js';
import { layoutComplete, prepareLayout, storeLayout, type StoreLayout } from './layout.js';
import { StoreLock } from './lock.js';
import { findImage, type ImageLookup } from './lookup.js';
import { MountStore } from './mounts.js';
import { repair, sweepOrphansLocked } from './orphans.js';
import { ReadOnlyStores } from './readonly.js';
import { RecordFile, dedupe, type ContainerRecord, type ImageRecord, type LayerRecord, type MountRecord } from './records.js';
import { validateStoredNames } from '../reference.js';
import { resetLocked } from './reset.js';

export type { LayerInfo, LayerStream } from './layers.js';
export type { ImageInfo } from './images.js';
export type { ContainerInfo } from './containers.js';
export type { CommitLayer, CommitOptions } from './layer-pool.js';
export type { ImageCommit, CommitResult } from './commit.js';
export type { ImageLookup };

export interface StoreOpenOptions extends StoreLocationOptions {}

/** Which of the store's locks an operation holds, and how. */
interface LockModes {
  storage?: 'read' | 'write';
  layers?: 'read' | 'write';
  images?: 'read' | 'write';
  containers?: 'read' | 'write';
  mounts?: 'read' | 'write';
}

interface Parts {
  layers: LayerStore;
  images: ImageStore;
  containers: ContainerStore;
  mounts: MountStore;
  readOnly: ReadOnlyStores;
}

export class Store {
  readonly graphroot: string;
  readonly runroot: string;
  readonly driverName: 'overlay' | 'vfs';
  readonly warnings: readonly string[];
  /** Not really root: an unprivileged user, or root inside a user namespace (carrier unshare). */
  readonly rootless: boolean;
  private closed = false;

  private constructor(
    readonly config: StoreConfig,
    private readonly layout: StoreLayout,
    private readonly storageLock: StoreLock,
    private readonly parts: Parts,
    rootless: boolean,
  ) {
    this.rootless = rootless;
    this.graphroot = config.graphroot;
    this.runroot = config.runroot;
    this.driverName = config.driver;
    this.warnings = config.warnings;
  }

  /** Opens (creating when missing) the store, and repairs layers a killed writer left half made. */
  static async open(options: StoreOpenOptions = {}): Promise<Store> {
    const config = await resolveStoreConfig(options);
    const layout = storeLayout(config.graphroot, config.runroot, config.driver);
    // The lock files are opened while the rest of the layout is looked at: in a store that exists they open, which
    // shows their directories are there, and nothing is made; a store missing anything is completed (once), and a lock
    // whose directory was missing opened again after. A short command used to wait for each round trip in turn.
    let preparing: Promise<void> | undefined;
    const prepared = (): Promise<void> => (preparing ??= prepareLayout(layout));
    const made = layoutComplete(layout).then((complete) => (complete ? undefined : prepared()));
    made.catch(() => {}); // settled with the locks below, and its failure thrown first
    const opened: StoreLock[] = [];
    const lock = async (p: string): Promise<StoreLock> => {
      let l: StoreLock;
      try {
        l = await StoreLock.open(p, { dirMade: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await prepared();
        l = await StoreLock.open(p, { dirMade: true });
      }
      opened.push(l);
      return l;
    };
    try {
      const rootless = isRootless();
      const driver = createDriver({
        driver: config.driver,
        graphroot: config.graphroot,
        additionalImageStores: config.additionalImageStores,
        ...(config.forceMask !== undefined ? { forceMask: config.forceMask } : {}),
        ...(config.mountProgram ? { mountProgram: config.mountProgram } : {}),
        ...(config.mountOpt !== undefined ? { mountOpt: config.mountOpt } : {}),
      });
      // settled all before a failure is thrown, so every lock that did open is in `opened` and closed below
      const [layoutMade, ...locks] = await Promise.allSettled([
        made,
        ...[layout.locks.storage, layout.locks.layers, layout.locks.images, layout.locks.containers, layout.locks.mounts].map(lock),
      ]);
      if (layoutMade!.status === 'rejected') throw layoutMade!.reason;
      const failed = locks.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      type Five = [StoreLock, StoreLock, StoreLock, StoreLock, StoreLock];
      const [storageLock, layersLock, imagesLock, containersLock, mountsLock] = locks.map((r) => (r as PromiseFulfilledResult<StoreLock>).value) as Five;
      const readOnly = await ReadOnlyStores.open(config.additionalImageStores, config.driver, opened);
      const parts: Parts = {
        layers: new LayerStore(
          new RecordFile<LayerRecord>(join(layout.layersDir, 'layers.json'), layersLock, 'layer'),
          layersLock,
          driver,
          config.graphroot,
          layout.layersDir,
          layout.runLayersDir,
        ),
        images: new ImageStore(new RecordFile<ImageRecord>(join(layout.imagesDir, 'images.json'), imagesLock, 'image'), imagesLock, layout.imagesDir),
        containers: new ContainerStore(
          new RecordFile<ContainerRecord>(join(layout.containersDir, 'containers.json'), containersLock, 'container'),
          containersLock,
          layout.containersDir,
          layout.runContainersDir,
        ),
        mounts: new MountStore(mountsLock, layout.runLayersDir, driver),
        readOnly,
      };
      const store = new Store(config, layout, storageLock, parts, rootless);
      // the driver's directories and link check, and the repair (under the layers lock), together: neither needs the
      // other's work, and a removal that finds a link or directory the other removed first lets it be
      await settled([driver.init(), store.repair()]);
      return store;
    } catch (err) {
      await Promise.all(opened.map((l) => l.close().catch(() => {})));
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // together: each close is a thread-pool round trip
    try {
      await settled([this.storageLock, this.parts.layers.lock, this.parts.images.lock, this.parts.containers.lock, this.parts.mounts.lock].map((l) => l.close()));
    } finally {
      await this.parts.readOnly.close();
    }
  }

  /**
   * Removes everything the store holds — every container, image and layer, and every other file under the graphroot
   * and the runroot except the lock files — holding all of the store's locks exclusively, so it waits for every
   * other Carrier or podman process that is reading or writing the store, and they see an empty store afterwards.
   * Mounted layers are unmounted first; when something stays mounted under the store, it refuses (CARRIER_IN_USE)
   * having removed nothing. Refuses a graphroot or runroot such as `/`, `/tmp` or the home directory.
   *
   * The Store stays open and usable: it holds an empty store afterwards. A blob cache outside the graphroot (the
   * default store's, or a named one) is left alone: empty it after a reset with `pruneBlobCache(store, { minAge: 0 })`,
   * which keeps what live writers hold and what other stores sharing it may need.
   */
  async reset(): Promise<void> {
    await this.locked({ storage: 'write', layers: 'write', images: 'write', containers: 'write', mounts: 'write' }, () =>
      resetLocked(this.parts, this.layout),
    );
  }

  /**
   * A container's own data directory, as c/storage keeps it: `<graphroot>/<driver>-containers/<id>/userdata`, or the
   * runroot's (`where: 'run'`).
   */
  containerDataDir(id: string, where: 'graph' | 'run' = 'graph'): string {
    return this.parts.containers.dataDir(id, where);
  }

  /**
   * Removes what a killed writer left half made (its `incomplete` layers). Writers hold the layers lock for as long
   * as a layer is incomplete, so whoever gets the lock and still sees one knows its writer is gone. When the lock is
   * busy (a live pull), opening does not wait: the next writer to take the lock repairs instead.
   */
  async repair(): Promise<string[]> {
    return repair(this.parts.layers);
  }

  // ---- layers ----------------------------------------------------------------------------------------------------

  async layers(): Promise<LayerInfo[]> {
    const own = await this.parts.layers.read(async (records) => records.map((r) => layerInfo(r, false)));
    const ro = await this.parts.readOnly.with(async (stores) => stores.flatMap((s) => s.layers.records.map((r) => layerInfo(r, true))));
    return [...own, ...ro];
  }

  /**
   * Runs `fn` holding the layers lock shared: layers can be read but none is added or removed meanwhile, so an `rmi`
   * or a pull in another process waits (a checkout, export or save reads layer directories under it).
   */
  async withLayersHeld<T>(fn: () => Promise<T>): Promise<T> {
    return this.parts.layers.lock.with(false, fn);
  }

  /**
   * The layer's directory of content: overlay's `overlay/<id>/diff` (the layer's own changes), vfs's `vfs/dir/<id>`
   * (the layer's whole tree). `root` picks another graphroot of the same driver (an additional image store).
   */
  layerDiffPath(id: string, root: string = this.graphroot): string {
    return this.parts.layers.contentDir(id, root);
  }

  /** The layer's tar-split file (`<driver>-layers/<id>.tar-split.gz`); per-layer side files live beside it. */
  layerTarSplitPath(id: string): string {
    return this.parts.layers.tarSplitPath(id);
  }

  /**
   * True when each layer directory holds the layer's whole tree (vfs), so a flattened view of a chain is its top
   * layer's directory alone; false when each holds only its own changes (overlay) and the chain must be merged.
   */
  get layersAreFlat(): boolean {
    return this.parts.layers.flat;
  }

  /**
   * Everything the driver keeps for a layer of this store, as one directory (overlay: `overlay/<id>` with its diff/,
   * work/, ...; vfs: `vfs/dir/<id>`): what a disk-usage count of the layer measures.
   */
  layerDir(id: string): string {
    return this.parts.layers.driver.layerDir(id);
  }

  /** The layer's changes against `parent` as `podman diff` lists them, as the store's driver finds them. */
  async layerChanges(id: string, parent: string | undefined): Promise<Change[]> {
    return this.parts.layers.driver.changes(id, parent);
  }

  /** The layer as the tar it was made from, rebuilt from its tar-split and diff/: hashes to its `diff-digest`. */
  async exportLayer(id: string): Promise<Readable> {
    return this.parts.layers.export(id);
  }

  /**
   * Runs `fn` with the layer's own changes against its parent as an uncompressed tar (the driver's diff: overlay
   * whiteouts and opaque directories become `.wh.` entries, as containers/storage writes them), holding the layers
   * lock shared until `fn` settles, so the layer is not removed while it is read. The stream is destroyed if `fn`
   * leaves it unread.
   */
  async withLayerDiff<T>(id: string, fn: (tar: Readable) => Promise<T>): Promise<T> {
    const { layers } = this.parts;
    return this.locked({ layers: 'read' }, async () => {
      const tar = await layers.diff(id);
      try {
        return await fn(tar);
      } finally {
        if (!tar.readableEnded) tar.destroy();
      }
    });
  }

  /** Deletes a layer nothing uses (no child layer, image or container). */
  async deleteLayer(id: string): Promise<void> {
    const { layers, images, containers } = this.parts;
    await this.locked({ layers: 'write', images: 'read', containers: 'read' }, async () => {
      if (!layers.get(id)) throw notFound('layer', id);
      if (layers.records.some((l) => l.parent === id)) throw inUse(`layer ${id} has child layers`);
      if (images.usesLayer(id)) throw inUse(`layer ${id} is used by an image`);
      if (containers.records.some((c) => c.layer === id)) throw inUse(`layer ${id} is used by a container`);
      await layers.delete([id]);
    });
  }

  // ---- images ----------------------------------------------------------------------------------------------------

  async images(): Promise<ImageInfo[]> {
    const { layers, images, readOnly } = this.parts;
    return layers.read((records) => images.with(false, () => readOnly.with(async (stores) => images.list(records, stores))));
  }

  /** Finds an image by full or short id, `sha256:` id, name (normalised like podman), or name@digest / digest. */
  async image(query: string): Promise<ImageInfo | undefined> {
    return findImage(await this.images(), query);
  }

  /** Like {@link image} but throws CARRIER_NOT_FOUND. */
  async requireImage(query: string): Promise<ImageInfo> {
    const img = await this.image(query);
    if (!img) throw notFound('image', query);
    return img;
  }

  async imageBigData(id: string, key: string): Promise<Buffer> {
    const { images, readOnly } = this.parts;
    const record = await images.with(false, async () => images.get(id));
    const root = record ? this.graphroot : await readOnly.imageRoot(id);
    if (!root) throw notFound('image', id);
    return images.readBigData(root, id, key);
  }

  /** Adds names (normalised the way podman tag does) to an image, taking them from any image that had them. */
  async tag(query: string, names: string[]): Promise<ImageInfo> {
    const img = await this.requireImage(query);
    if (img.readOnly) throw readOnlyImage(img.id);
    await this.locked({ images: 'write' }, () => this.parts.images.tag(img.id, query, names));
    return this.requireImage(img.id);
  }

  /** Removes names from an image; the image stays. */
  async untag(query: string, names?: string[]): Promise<ImageInfo> {
    const img = await this.requireImage(query);
    if (img.readOnly) throw readOnlyImage(img.id);
    await this.locked({ images: 'write' }, () => this.parts.images.untag(img.id, query, names));
    return this.requireImage(img.id);
  }

  /**
   * Removes an image and the layers only it used. An image used by a container is refused (CARRIER_IN_USE) unless
   * `force`, which removes those containers too.
   */
  async removeImage(query: string, options: { force?: boolean } = {}): Promise<RemovedImage> {
    const img = await this.requireImage(query);
    if (img.readOnly) throw readOnlyImage(img.id);
    return this.locked({ layers: 'write', images: 'write', containers: 'write' }, () =>
      removeImageLocked(this.parts, img.id, query, options.force ?? false),
    );
  }

  /**
   * Records an image: creates its missing layers (in parallel, verified against the config's diff_ids), writes the
   * config and manifests as big data, and gives it its names. Layers already present are not touched.
   */
  async commitImage(image: ImageCommit, options: CommitOptions = {}): Promise<CommitResult> {
    validateStoredNames(dedupe(image.names)); // before any layer is written
    const plan = planCommit(image);
    const layers = await this.locked({ layers: 'write' }, async () => {
      const results = await commitLayersLocked(this.parts.layers, plan, options);
      await this.locked({ images: 'write' }, () => recordImageLocked(this.parts.images, image, plan));
      return results;
    });
    return { id: plan.id, names: dedupe(image.names), layers };
  }

  // ---- lifecycle: prune and orphan sweep -------------------------------------------------------------------------

  /**
   * Removes unused images: without `all`, the dangling ones (no name, no container, not the parent of another
   * image); with `all`, every image no container uses. Layers go with them unless something else still uses them.
   */
  async pruneImages(options: { all?: boolean } = {}): Promise<{ id: string; removedLayers: string[] }[]> {
    const { layers, images, containers } = this.parts;
    const removed: { id: string; removedLayers: string[] }[] = [];
    for (;;) {
      // One image at a time, re-evaluated after each removal: removing a child can make its parent dangling.
      const candidate = await this.locked({ layers: 'read', images: 'read', containers: 'read' }, async () =>
        images.pruneCandidate(layers, containers, options.all ?? false),
      );
      if (candidate === undefined) return removed;
      const r = await this.removeImage(candidate);
      removed.push({ id: r.id, removedLayers: r.removedLayers });
    }
  }

  /**
   * Finds and removes what no record references: layer directories and `l/` links, tar-split files, image and
   * container directories, and temp files of writers that are gone (left by a crash or an older version). Runs under
   * all three write locks; anything a record references is never touched. Returns what it removed (store-relative).
   */
  async sweepOrphans(): Promise<string[]> {
    return this.locked({ layers: 'write', images: 'write', containers: 'write' }, () => sweepOrphansLocked(this.parts, this.graphroot));
  }

  // ---- mounts ----------------------------------------------------------------------------------------------------

  /**
   * Mounts a container's (or any read-write layer's) merged view at `overlay/<layer>/merged` and counts the mount in
   * `<runroot>/overlay-layers/mountpoints.json` as podman does: a second mount only counts. Returns the path.
   * On vfs nothing is mounted: the layer's directory is its whole tree and is returned (and counted) as is.
   */
  async mountContainer(query: string): Promise<string> {
    const { layers, containers, mounts } = this.parts;
    // the container found under the locks the mount takes (a lock round trip less than looking first)
    return this.locked({ layers: 'write', containers: 'read', mounts: 'write' }, async () => {
      const layerId = containers.find(query)?.layer ?? layers.get(query)?.id;
      if (!layerId) throw notFound('container', query);
      if (!layers.get(layerId)) throw notFound('layer', layerId);
      return mounts.mount(layerId);
    });
  }

  /** Drops one mount of the container's layer (all of them with `force`); unmounts at zero. True while still mounted. */
  async unmountContainer(query: string, options: { force?: boolean } = {}): Promise<boolean> {
    const { containers, mounts } = this.parts;
    return this.locked({ layers: 'write', containers: 'read', mounts: 'write' }, () =>
      mounts.unmount(containers.find(query)?.layer ?? query, options.force ?? false),
    );
  }

  /** Layers mounted now, with their paths and counts (as mountpoints.json records them). */
  async mounts(): Promise<MountRecord[]> {
    return this.parts.mounts.list();
  }

  // ---- containers ------------------------------------------------------------------------------------------------

  async containers(): Promise<ContainerInfo[]> {
    const { containers } = this.parts;
    return containers.with(false, async () => containers.records.map(containerInfo));
  }

  /** Records a container of an image, with its own empty read-write layer on top of the image's, and its `userdata`. */
  async createContainer(imageQuery: string, options: CreateContainerOptions = {}): Promise<ContainerInfo> {
    // an image of this store named by its full id (what the containers API passes, having found the image already) is
    // found under the write locks: looking it up first cost create another round of the layers and images locks
    if (isFullId(imageQuery)) {
      const made = await this.locked({ layers: 'write', images: 'read', containers: 'write' }, async () => {
        const own = this.parts.images.get(imageQuery);
        return own && createContainerLocked(this.parts, { id: own.id, ...(own.layer ? { topLayer: own.layer } : {}) }, options);
      });
      if (made) return made;
    }
    const img = await this.requireImage(imageQuery);
    return this.locked({ layers: 'write', images: 'read', containers: 'write' }, async () => {
      if (!img.readOnly && !this.parts.images.get(img.id)) throw notFound('image', imageQuery);
      return createContainerLocked(this.parts, img, options);
    });
  }

  async container(query: string): Promise<ContainerInfo | undefined> {
    const { containers } = this.parts;
    return containers.with(false, async () => {
      const found = containers.find(query);
      return found && containerInfo(found);
    });
  }

  async deleteContainer(query: string): Promise<void> {
    await this.locked({ layers: 'write', containers: 'write' }, async () => {
      const c = this.parts.containers.find(query);
      if (!c) throw notFound('container', query);
      await deleteContainerLocked(this.parts, c);
    });
  }

  // ---- the lock order --------------------------------------------------------------------------------------------

  /**
   * Runs `fn` holding the named locks, taken in c/storage's order (storage → layers → images → containers → mounts)
   * whatever order `modes` lists them in; each part reloads its records when another process wrote since.
   */
  private async locked<T>(modes: LockModes, fn: () => Promise<T>): Promise<T> {
    const { layers, images, containers, mounts } = this.parts;
    type Part = [StoreLock, (exclusive: boolean) => Promise<void>];
    const order: [keyof LockModes, Part][] = [
      ['storage', [this.storageLock, async () => {}]],
      ['layers', [layers.lock, (x) => layers.refresh(x)]],
      ['images', [images.lock, () => images.refresh()]],
      ['containers', [containers.lock, () => containers.refresh()]],
      ['mounts', [mounts.lock, () => mounts.refresh()]],
    ];
    const held: [...Part, boolean][] = [];
    try {
      for (const [name, [lock, refresh]] of order) {
        if (modes[name] === undefined) continue;
        await lock.lock(modes[name] === 'write');
        held.push([lock, refresh, modes[name] === 'write']);
      }
      // all held, the records are reloaded together: one round trip for the tokens, not one per lock in turn
      await settled(held.map(([, refresh, x]) => refresh(x)));
      return await fn();
    } finally {
      await settled(held.reverse().map(async ([lock, , x]) => lock.unlock(x)));
    }
  }
}

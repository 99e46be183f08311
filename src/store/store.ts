// The store: containers/storage's layout for the overlay or the vfs driver, shared safely with podman.
//
//   <graphroot>/overlay/  or  <graphroot>/vfs/dir/   layer directories (drivers/overlay.ts, drivers/vfs.ts)
//   <graphroot>/<driver>-layers/layers.json          + layers.lock, <id>.tar-split.gz
//   <graphroot>/<driver>-images/images.json          + images.lock, <id>/<big data>
//   <graphroot>/<driver>-containers/containers.json  + containers.lock, <id>/userdata
//   <graphroot>/storage.lock, userns.lock;           <runroot>/<driver>-layers/mountpoints.{json,lock}
//
// The driver only decides how a layer's directory is made and used: overlay keeps each layer's own diff and mounts
// the chain; vfs keeps each layer's whole tree (its parent's tree cloned, reflinks where the filesystem can, then its
// diff applied with whiteouts resolved) and "mounts" a container by handing out its directory.
//
// Locks are always taken in c/storage's order, layers → images → containers, so Carrier and podman never wait on
// each other in a cycle. Every read takes the shared lock and reloads when the last-writer token changed; every
// write takes the exclusive lock, reloads, changes the records, writes them atomically and leaves a new token.
import { pathExists } from '../fs/paths.js';
import { isRootless, processAlive } from '../host.js';
import { mkdir, open, readFile, rm, writeFile, chmod, readdir, readlink, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { CarrierError, abortError } from '../errors.js';
import { native } from '../native.js';
import { applyLayer, type AppliedLayer } from '../layer/apply.js';
import { assembleLayer } from '../layer/assemble.js';
import { OverlayDriver } from '../drivers/overlay.js';
import { VfsDriver } from '../drivers/vfs.js';
import { mergeLayers } from '../fs/merge.js';
import { cloneTree } from '../fs/clone.js';
import { removeTree } from '../fs/remove.js';
import { resolveStoreConfig, type StoreConfig, type StoreLocationOptions } from './config.js';
import { StoreLock } from './lock.js';
import { RecordFile, omitEmpty, type ContainerRecord, type ImageRecord, type LayerRecord, type MountRecord } from './records.js';
import { mountOverlay, unmountOverlay, findMount } from '../drivers/mount.js';
import { writeFileAtomic } from './atomic.js';
import { bigDataFileName, isFullId, layerIdFor, randomId } from './ids.js';
import { findImage, normalizeTagName, type ImageLookup } from './lookup.js';

const LAYER_FIELDS = [
  'names', 'parent', 'metadata', 'mountlabel', 'created', 'compressed-diff-digest', 'compressed-size', 'diff-digest',
  'toc-digest', 'diff-size', 'compression', 'uidset', 'gidset', 'flags', 'uidmap', 'gidmap', 'big-data-names',
] as const;
const IMAGE_FIELDS = [
  'digest', 'names', 'names-history', 'layer', 'mapped-layers', 'metadata', 'big-data-names', 'big-data-sizes',
  'big-data-digests', 'created', 'flags',
] as const;
const CONTAINER_FIELDS = ['names', 'metadata', 'big-data-names', 'big-data-sizes', 'big-data-digests', 'created', 'uidmap', 'gidmap', 'flags'] as const;

/** c/storage's archive.Compression numbers. */
const COMPRESSION_CODE = { none: 0, gzip: 2, zstd: 4 } as const;

export interface StoreOpenOptions extends StoreLocationOptions {}

/** One layer of an image being committed: its content comes from `open()` only if the store lacks it. */
export interface CommitLayer {
  diffID: string;
  digest?: string;
  size?: number;
  open(): Promise<Readable | string | LayerStream>;
  /**
   * Called once the layer's content is settled: with the verified result before the store makes it durable, or
   * with undefined when the layer failed or was not needed after all (a pull moves its cached blob into place here).
   */
  settle?(applied: AppliedLayer | undefined): Promise<void>;
}

/** A layer's compressed bytes as a stream, with what else should happen to them as they are applied. */
export interface LayerStream {
  stream: Readable;
  /** A file that receives a copy of the bytes (see ApplyLayerOptions.teeFd). */
  teeFd?: number;
  onBytes?: (total: number) => void;
}

/** Everything the store needs to record an image; a local archive and a registry pull both produce one. */
export interface ImageCommit {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  /** The index or manifest list the manifest was chosen from, when there was one. */
  list?: { bytes: Buffer; digest: string };
  layers: CommitLayer[];
  /** Full names (already normalised) to give the image. */
  names: string[];
  created?: string;
}

export interface LayerInfo {
  id: string;
  names: string[];
  parent?: string;
  created?: string;
  compressedDigest?: string;
  compressedSize?: number;
  diffDigest?: string;
  diffSize?: number;
  compression?: number;
  uidset: number[];
  gidset: number[];
  incomplete: boolean;
  readOnly: boolean;
}

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

export interface ContainerInfo {
  id: string;
  names: string[];
  image: string;
  layer: string;
  created?: string;
  metadata?: string;
  record: ContainerRecord;
}

export interface CommitOptions {
  signal?: AbortSignal;
  /** Layers applied at once (overlay layers do not depend on each other's content). Default 3. */
  concurrency?: number;
  onLayer?: (event: { diffID: string; id: string; state: 'exists' | 'applying' | 'applied' }) => void;
  /**
   * false: a layer is recorded complete without first flushing its content to disk (no syncfs), as podman does.
   * Faster (a syncfs is 0.2-1.5 s on a large image), but a power loss soon after the pull can leave a layer that is
   * recorded complete with files missing or empty; a killed process cannot. For throwaway machines (CI runners).
   * Metadata files are still written atomically either way. Default true.
   */
  sync?: boolean;
}

export interface CommitResult {
  id: string;
  names: string[];
  layers: { id: string; diffID: string; applied: boolean }[];
}

interface ReadOnlyStore {
  root: string;
  layers: RecordFile<LayerRecord>;
  images: RecordFile<ImageRecord>;
}

function nowRfc3339(): string {
  return new Date().toISOString();
}

function sha256(data: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function dedupe(names: readonly string[]): string[] {
  return [...new Set(names)];
}

export class Store {
  readonly graphroot: string;
  readonly runroot: string;
  readonly driverName: 'overlay' | 'vfs';
  readonly warnings: readonly string[];
  /** Not really root: an unprivileged user, or root inside a user namespace (carrier unshare). */
  readonly rootless: boolean;
  private readonly driver: OverlayDriver | VfsDriver;
  private closed = false;
  private mountRecords: RecordFile<MountRecord> | undefined;

  private constructor(
    readonly config: StoreConfig,
    private readonly locks: { storage: StoreLock; layers: StoreLock; images: StoreLock; containers: StoreLock; mounts: StoreLock },
    private readonly layerFile: RecordFile<LayerRecord>,
    private readonly imageFile: RecordFile<ImageRecord>,
    private readonly containerFile: RecordFile<ContainerRecord>,
    private readonly readOnlyStores: ReadOnlyStore[],
  ) {
    this.rootless = isRootless();
    this.graphroot = config.graphroot;
    this.runroot = config.runroot;
    this.driverName = config.driver;
    this.warnings = config.warnings;
    const forceMask = config.forceMask ? parseInt(config.forceMask, 8) : undefined;
    this.driver =
      config.driver === 'vfs'
        ? new VfsDriver(join(this.graphroot, 'vfs'))
        : new OverlayDriver(join(this.graphroot, 'overlay'), {
            ...(forceMask !== undefined && !Number.isNaN(forceMask) ? { forceMask } : {}),
            ...(config.mountProgram ? { mountProgram: config.mountProgram } : {}),
          });
  }

  /** The overlay driver, for what only overlay has (mounts of a layer chain); throws on another driver. */
  private get overlay(): OverlayDriver {
    if (!(this.driver instanceof OverlayDriver)) throw new CarrierError('CARRIER_UNSUPPORTED', `not an overlay store (driver ${this.driverName})`);
    return this.driver;
  }

  /** `<graphroot>/<driver>-<kind>` (or under `root`): the record directories c/storage names after its driver. */
  private recordDir(kind: 'layers' | 'images' | 'containers', root: string = this.graphroot): string {
    return join(root, `${this.driverName}-${kind}`);
  }

  /**
   * A container's own data directory, as c/storage keeps it: `<graphroot>/<driver>-containers/<id>/userdata`, or the
   * runroot's (`where: 'run'`).
   */
  containerDataDir(id: string, where: 'graph' | 'run' = 'graph'): string {
    return join(this.recordDir('containers', where === 'run' ? this.runroot : this.graphroot), id, 'userdata');
  }

  /** Opens (creating when missing) the store, and repairs layers a killed writer left half made. */
  static async open(options: StoreOpenOptions = {}): Promise<Store> {
    const config = await resolveStoreConfig(options);
    const d = config.driver; // record directories are named after the driver: overlay-layers, vfs-layers, ...
    const g = config.graphroot;
    await mkdir(g, { recursive: true, mode: 0o700 });
    for (const kind of ['layers', 'images', 'containers']) await mkdir(join(g, `${d}-${kind}`), { recursive: true, mode: 0o700 });
    await mkdir(join(config.runroot, `${d}-layers`), { recursive: true, mode: 0o700 });
    await mkdir(join(config.runroot, `${d}-containers`), { recursive: true, mode: 0o700 });
    await touchFile(join(g, 'userns.lock'), 0o644);
    const opened: StoreLock[] = [];
    const lock = async (p: string): Promise<StoreLock> => {
      const l = await StoreLock.open(p);
      opened.push(l);
      return l;
    };
    try {
      const locks = {
        storage: await lock(join(g, 'storage.lock')),
        layers: await lock(join(g, `${d}-layers`, 'layers.lock')),
        images: await lock(join(g, `${d}-images`, 'images.lock')),
        containers: await lock(join(g, `${d}-containers`, 'containers.lock')),
        mounts: await lock(join(config.runroot, `${d}-layers`, 'mountpoints.lock')),
      };
      const ro: ReadOnlyStore[] = [];
      for (const root of config.additionalImageStores) ro.push(await openReadOnlyStore(root, d, opened));
      const store = new Store(
        config,
        locks,
        new RecordFile<LayerRecord>(join(g, `${d}-layers`, 'layers.json'), locks.layers, 'layer'),
        new RecordFile<ImageRecord>(join(g, `${d}-images`, 'images.json'), locks.images, 'image'),
        new RecordFile<ContainerRecord>(join(g, `${d}-containers`, 'containers.json'), locks.containers, 'container'),
        ro,
      );
      await store.driver.init();
      const mounts = join(config.runroot, `${d}-layers`, 'mountpoints.json');
      if (!(await exists(mounts))) await writeFileAtomic(mounts, '[]', 0o600);
      await store.repair();
      return store;
    } catch (err) {
      for (const l of opened) await l.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of Object.values(this.locks)) await l.close();
    for (const s of this.readOnlyStores) {
      await s.layers.lock?.close();
      await s.images.lock?.close();
    }
  }

  // ---- locking helpers -------------------------------------------------------------------------------------------

  private async withLayers<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.locks.layers.with(exclusive, async () => {
      if (await this.layerFile.reloadIfChanged()) {
        if (exclusive) await this.removeIncompleteLayers();
      }
      return fn();
    });
  }

  private async withImages<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.locks.images.with(exclusive, async () => {
      await this.imageFile.reloadIfChanged();
      return fn();
    });
  }

  private async withContainers<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.locks.containers.with(exclusive, async () => {
      await this.containerFile.reloadIfChanged();
      return fn();
    });
  }

  private async withReadOnlyStores<T>(fn: () => Promise<T>): Promise<T> {
    const held: StoreLock[] = [];
    try {
      for (const s of this.readOnlyStores) {
        for (const file of [s.layers, s.images]) {
          if (file.lock) {
            await file.lock.lock(false);
            held.push(file.lock);
          }
          await file.reloadIfChanged();
        }
      }
      return await fn();
    } finally {
      for (const l of held.reverse()) l.unlock(false);
    }
  }

  /**
   * Removes what a killed writer left half made (its `incomplete` layers). Writers hold the layers lock for as long
   * as a layer is incomplete, so whoever gets the lock and still sees one knows its writer is gone. When the lock is
   * busy (a live pull), opening does not wait: the next writer to take the lock repairs instead.
   */
  async repair(): Promise<string[]> {
    if (!(await this.locks.layers.tryLock(true))) return [];
    try {
      await this.layerFile.load();
      await this.locks.layers.modified();
      const removed = await this.removeIncompleteLayers();
      await this.driver.pruneDanglingLinks();
      return removed;
    } finally {
      this.locks.layers.unlock(true);
    }
  }

  private async removeIncompleteLayers(): Promise<string[]> {
    const broken = this.layerFile.records.filter((l) => l.flags?.incomplete === true);
    if (broken.length === 0) return [];
    for (const layer of broken) await this.removeLayerFiles(layer.id);
    const gone = new Set(broken.map((l) => l.id));
    this.layerFile.records = this.layerFile.records.filter((l) => !gone.has(l.id));
    await this.layerFile.save();
    return [...gone];
  }

  private async removeLayerFiles(id: string): Promise<void> {
    await this.driver.remove(id);
    await rm(this.tarSplitPath(id), { force: true });
  }

  private tarSplitPath(id: string): string {
    return join(this.recordDir('layers'), `${id}.tar-split.gz`);
  }

  // ---- layers ----------------------------------------------------------------------------------------------------

  /**
   * Runs a read-only look at the layer records without waiting for a writer: when a pull holds the layers lock
   * (it does for as long as its layers stream in), the last complete layers.json is read instead. Atomic renames make
   * that file consistent; layers still being made are left out.
   */
  private async readLayers<T>(fn: (records: readonly LayerRecord[]) => Promise<T>): Promise<T> {
    if (await this.locks.layers.tryLock(false)) {
      try {
        await this.layerFile.reloadIfChanged();
        return await fn(this.layerFile.records);
      } finally {
        this.locks.layers.unlock(false);
      }
    }
    const snapshot = new RecordFile<LayerRecord>(this.layerFile.file, undefined, 'layer');
    await snapshot.load();
    return fn(snapshot.records.filter((r) => r.flags?.incomplete !== true));
  }

  async layers(): Promise<LayerInfo[]> {
    const own = await this.readLayers(async (records) => records.map((r) => layerInfo(r, false)));
    const ro = await this.withReadOnlyStores(async () => this.readOnlyStores.flatMap((s) => s.layers.records.map((r) => layerInfo(r, true))));
    return [...own, ...ro];
  }

  /**
   * Runs `fn` holding the layers lock shared: layers can be read but none is added or removed meanwhile, so an `rmi`
   * or a pull in another process waits (a checkout, export or save reads layer directories under it).
   */
  async withLayersHeld<T>(fn: () => Promise<T>): Promise<T> {
    return this.locks.layers.with(false, fn);
  }

  /**
   * The layer's directory of content: overlay's `overlay/<id>/diff` (the layer's own changes), vfs's `vfs/dir/<id>`
   * (the layer's whole tree). `root` picks another graphroot of the same driver (an additional image store).
   */
  layerDiffPath(id: string, root: string = this.graphroot): string {
    if (this.driver instanceof VfsDriver) return join(root, 'vfs', 'dir', id);
    return root === this.graphroot ? this.driver.paths(id).diff : join(root, 'overlay', id, 'diff');
  }

  /**
   * True when each layer directory holds the layer's whole tree (vfs), so a flattened view of a chain is its top
   * layer's directory alone; false when each holds only its own changes (overlay) and the chain must be merged.
   */
  get layersAreFlat(): boolean {
    return this.driver instanceof VfsDriver;
  }

  /** The layer as the tar it was made from, rebuilt from its tar-split and diff/: hashes to its `diff-digest`. */
  async exportLayer(id: string): Promise<Readable> {
    const layer = await this.withLayers(false, async () => this.layerFile.get(id));
    if (!layer) throw notFound('layer', id);
    if (!(await exists(this.tarSplitPath(id)))) {
      throw new CarrierError('CARRIER_NOT_FOUND', `layer ${id} has no tar-split, so its original tar cannot be rebuilt`, { path: this.tarSplitPath(id) });
    }
    return assembleLayer(this.tarSplitPath(id), this.layerDiffPath(id));
  }

  /**
   * The incomplete-flag protocol, step 1: records are written flagged incomplete and the directories made, before
   * any content. Hold the layers write lock. Layers are begun in parent-first order.
   */
  private async beginLayersLocked(layers: { id: string; parent: string | undefined }[]): Promise<LayerRecord[]> {
    const records = layers.map(({ id, parent }) => {
      const r: LayerRecord = { id, created: nowRfc3339(), flags: { incomplete: true } };
      if (parent !== undefined) r.parent = parent;
      return r;
    });
    this.layerFile.records.push(...records);
    await this.layerFile.save();
    for (const { id, parent } of layers) await this.driver.create(id, parent);
    return records;
  }

  /**
   * Step 2: extract the content, verified against the expected digests, and give diff/ its final mode. Step 3 (the
   * caller's LayerCompleter) syncs the filesystem and only then clears the flag. On failure the caller removes the
   * layer. Returns the result and the directory whose filesystem must be synced.
   */
  private async fillLayerLocked(
    record: LayerRecord,
    diffMode: number,
    from: Readable | string | LayerStream,
    expect: { diffID?: string; digest?: string; size?: number },
    signal: AbortSignal | undefined,
    afterApply?: (applied: AppliedLayer) => Promise<void>,
    parentReady?: Promise<void>,
  ): Promise<{ applied: AppliedLayer; syncDir: string }> {
    const { source, extra } =
      typeof from === 'object' && 'stream' in from
        ? {
            source: from.stream,
            extra: {
              ...(from.teeFd !== undefined ? { teeFd: from.teeFd } : {}),
              ...(from.onBytes ? { onBytes: from.onBytes } : {}),
            },
          }
        : { source: from, extra: {} };
    const applyOptions = {
      ...extra,
      rootless: this.rootless,
      tarSplit: this.tarSplitPath(record.id),
      ...(expect.diffID !== undefined ? { expectedDiffID: expect.diffID } : {}),
      ...(expect.digest !== undefined ? { expectedDigest: expect.digest } : {}),
      ...(expect.size !== undefined ? { expectedSize: expect.size } : {}),
      ...(signal ? { signal } : {}),
    };
    let applied: AppliedLayer;
    let contentDir: string;
    let syncDir: string;
    if (this.driver instanceof VfsDriver) {
      // vfs: the layer's own tar goes to a staging tree (aufs-style `.wh.` files: no device nodes or trusted.*
      // xattrs needed), then its parent's tree and the staging tree are merged into the layer directory — parent
      // files reflinked where the filesystem can, whiteouts deleting, opaque directories clearing. The parent's tree
      // has no whiteouts, so it merges as a plain base. Tars of several layers extract at once; each merge waits
      // for its parent's tree.
      const driver = this.driver;
      const staging = await driver.createStaging(record.id);
      applied = await applyLayer(source, staging, { ...applyOptions, whiteouts: 'aufs' });
      await parentReady;
      if (signal?.aborted) throw abortError(signal);
      const sources = record.parent !== undefined ? [driver.dir(record.parent), staging] : [staging];
      await mergeLayers(sources, driver.dir(record.id), { ...(signal ? { signal } : {}) });
      await removeTree(staging);
      contentDir = driver.dir(record.id);
      syncDir = contentDir;
    } else {
      const paths = this.driver.paths(record.id);
      applied = await applyLayer(source, paths.diff, {
        ...applyOptions,
        // With a mount program (fuse-overlayfs) c/storage keeps `.wh.` files as they are; native overlay wants 0/0
        // char devices and opaque xattrs. A store must not mix the two.
        whiteouts: this.config.mountProgram ? 'aufs' : 'overlay',
      });
      contentDir = paths.diff;
      syncDir = paths.dir;
    }
    await chmod(contentDir, diffMode);
    await afterApply?.(applied);
    return { applied, syncDir };
  }

  /** Deletes a layer nothing uses (no child layer, image or container). */
  async deleteLayer(id: string): Promise<void> {
    await this.withLayers(true, () =>
      this.withImages(false, () =>
        this.withContainers(false, async () => {
          const layer = this.layerFile.get(id);
          if (!layer) throw notFound('layer', id);
          if (this.layerFile.records.some((l) => l.parent === id)) throw inUse(`layer ${id} has child layers`);
          if (this.imageFile.records.some((i) => i.layer === id || i['mapped-layers']?.includes(id))) throw inUse(`layer ${id} is used by an image`);
          if (this.containerFile.records.some((c) => c.layer === id)) throw inUse(`layer ${id} is used by a container`);
          await this.deleteLayersLocked([id]);
        }),
      ),
    );
  }

  private async deleteLayersLocked(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    // Flag first so a crash half-way leaves layers the next open removes, never a record without its directory.
    const set = new Set(ids);
    for (const l of this.layerFile.records) if (set.has(l.id)) l.flags = { ...(l.flags ?? {}), incomplete: true };
    await this.layerFile.save();
    for (const id of ids) await this.removeLayerFiles(id);
    this.layerFile.records = this.layerFile.records.filter((l) => !set.has(l.id));
    await this.layerFile.save();
  }

  // ---- images ----------------------------------------------------------------------------------------------------

  async images(): Promise<ImageInfo[]> {
    return this.readLayers((layers) =>
      this.withImages(false, () =>
        this.withReadOnlyStores(async () => {
          const own = this.imageFile.records.map((r) => imageInfo(r, layers, false));
          const seen = new Set(own.map((i) => i.id));
          const ro = this.readOnlyStores.flatMap((s) =>
            s.images.records.filter((r) => !seen.has(r.id)).map((r) => imageInfo(r, [...s.layers.records, ...layers], true)),
          );
          return [...own, ...ro];
        }),
      ),
    );
  }

  /** Finds an image by full or short id, `sha256:` id, name (normalised like podman), or name@digest / digest. */
  async image(query: string): Promise<ImageInfo | undefined> {
    const all = await this.images();
    return findImage(all, query);
  }

  /** Like {@link image} but throws CARRIER_NOT_FOUND. */
  async requireImage(query: string): Promise<ImageInfo> {
    const img = await this.image(query);
    if (!img) throw notFound('image', query);
    return img;
  }

  async imageBigData(id: string, key: string): Promise<Buffer> {
    const record = await this.withImages(false, async () => this.imageFile.get(id));
    const root = record ? this.graphroot : await this.readOnlyRootOf(id);
    if (!root) throw notFound('image', id);
    return readFile(join(this.recordDir('images', root), id, bigDataFileName(key))).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new CarrierError('CARRIER_NOT_FOUND', `image ${id} has no big data item '${key}'`);
      throw err;
    });
  }

  private async readOnlyRootOf(id: string): Promise<string | undefined> {
    return this.withReadOnlyStores(async () => this.readOnlyStores.find((s) => s.images.get(id))?.root);
  }

  /** The graphroot holding a layer: the store's own, else the read-only store that has it. */
  private async layerRootOf(id: string): Promise<string> {
    if (this.layerFile.get(id)) return this.graphroot;
    return (await this.withReadOnlyStores(async () => this.readOnlyStores.find((s) => s.layers.get(id))?.root)) ?? this.graphroot;
  }

  /** Adds names (normalised the way podman tag does) to an image, taking them from any image that had them. */
  async tag(query: string, names: string[]): Promise<ImageInfo> {
    const img = await this.requireImage(query);
    if (img.readOnly) throw readOnly(img.id);
    const full = dedupe(names.map(normalizeTagName));
    await this.withImages(true, async () => {
      const record = this.imageFile.get(img.id);
      if (!record) throw notFound('image', query);
      this.addNamesLocked(record, full);
      await this.imageFile.save();
    });
    return this.requireImage(img.id);
  }

  /** Removes names from an image; the image stays. */
  async untag(query: string, names?: string[]): Promise<ImageInfo> {
    const img = await this.requireImage(query);
    if (img.readOnly) throw readOnly(img.id);
    await this.withImages(true, async () => {
      const record = this.imageFile.get(img.id);
      if (!record) throw notFound('image', query);
      if (names === undefined) {
        record.names = [];
      } else {
        const drop = new Set(names.map(normalizeTagName));
        const missing = [...drop].filter((n) => !(record.names ?? []).includes(n));
        if (missing.length > 0) throw new CarrierError('CARRIER_NOT_FOUND', `image ${img.id.slice(0, 12)} is not tagged ${missing.join(', ')}`);
        record.names = (record.names ?? []).filter((n) => !drop.has(n));
      }
      omitEmpty(record, IMAGE_FIELDS);
      await this.imageFile.save();
    });
    return this.requireImage(img.id);
  }

  /**
   * Gives `names` to `record`, taking them from other images. `podman tag` (c/common < 0.57) appends; c/storage's
   * AddNames, which a pull or load into an existing image uses, puts the new names first.
   */
  private addNamesLocked(record: ImageRecord, names: string[], order: 'append' | 'prepend' = 'append'): void {
    for (const other of this.imageFile.records) {
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

  /**
   * Removes an image and the layers only it used. An image used by a container is refused (CARRIER_IN_USE) unless
   * `force`, which removes those containers too.
   */
  async removeImage(query: string, options: { force?: boolean } = {}): Promise<{ id: string; untagged: string[]; removedLayers: string[]; removedContainers: string[] }> {
    const img = await this.requireImage(query);
    if (img.readOnly) throw readOnly(img.id);
    return this.withLayers(true, () =>
      this.withImages(true, () =>
        this.withContainers(true, async () => {
          const record = this.imageFile.get(img.id);
          if (!record) throw notFound('image', query);
          const users = this.containerFile.records.filter((c) => c.image === img.id);
          if (users.length > 0 && !options.force) {
            throw inUse(`image ${img.id.slice(0, 12)} is in use by ${users.length} container(s): ${users.map((c) => c.id.slice(0, 12)).join(', ')}`);
          }
          const removedContainers: string[] = [];
          for (const c of users) {
            await this.deleteContainerLocked(c);
            removedContainers.push(c.id);
          }
          this.imageFile.records = this.imageFile.records.filter((r) => r !== record);
          await this.imageFile.save();
          await removeTree(join(this.recordDir('images'), img.id));
          const removedLayers = this.unusedChain(record.layer);
          await this.deleteLayersLocked(removedLayers);
          return { id: img.id, untagged: record.names ?? [], removedLayers, removedContainers };
        }),
      ),
    );
  }

  /** The chain from `top` downwards that no remaining image, container or other branch uses. */
  private unusedChain(top: string | undefined): string[] {
    const out: string[] = [];
    const removing = new Set<string>();
    let id = top;
    while (id !== undefined) {
      const layer = this.layerFile.get(id);
      if (!layer) break;
      const usedByImage = this.imageFile.records.some((i) => i.layer === id || i['mapped-layers']?.includes(id!));
      const usedByContainer = this.containerFile.records.some((c) => c.layer === id);
      const otherChild = this.layerFile.records.some((l) => l.parent === id && !removing.has(l.id));
      if (usedByImage || usedByContainer || otherChild) break;
      out.push(id);
      removing.add(id);
      id = layer.parent;
    }
    return out;
  }

  /**
   * Records an image: creates its missing layers (in parallel, verified against the config's diff_ids), writes the
   * config and manifests as big data, and gives it its names. Layers already present are not touched.
   */
  async commitImage(image: ImageCommit, options: CommitOptions = {}): Promise<CommitResult> {
    const id = image.configDigest.replace(/^sha256:/, '');
    if (!isFullId(id)) throw new CarrierError('CARRIER_INVALID_DIGEST', `config digest ${image.configDigest} is not a sha256 digest`);
    if (sha256(image.config) !== image.configDigest) throw new CarrierError('CARRIER_DIGEST_MISMATCH', `config does not match ${image.configDigest}`);
    if (sha256(image.manifest) !== image.manifestDigest) throw new CarrierError('CARRIER_DIGEST_MISMATCH', `manifest does not match ${image.manifestDigest}`);
    const plan: { id: string; parent: string | undefined; layer: CommitLayer }[] = [];
    let parent: string | undefined;
    for (const layer of image.layers) {
      const lid = layerIdFor(parent, layer.diffID);
      plan.push({ id: lid, parent, layer });
      parent = lid;
    }
    const top = parent;
    const results: CommitResult['layers'] = [];
    await this.withLayers(true, async () => {
      // Parents must exist before children are recorded, but content can be extracted for all at once.
      const missing = plan.filter((p) => {
        const existing = this.layerFile.get(p.id);
        return !existing || existing['diff-digest'] !== p.layer.diffID;
      });
      for (const p of plan) {
        const existing = this.layerFile.get(p.id);
        if (existing && existing['diff-digest'] !== p.layer.diffID) {
          throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${p.id} exists with diff digest ${existing['diff-digest']}, expected ${p.layer.diffID}`);
        }
      }
      const applied = new Set<string>();
      let failure: unknown;
      const begun = await this.beginLayersLocked(missing.map((p) => ({ id: p.id, parent: p.parent })));
      // diff/ modes as c/storage would have given them layer by layer: a parent's mode, else the default.
      const modes = new Map<string, number>();
      for (const p of missing) {
        modes.set(p.id, p.parent === undefined ? this.driver.defaultDiffMode : modes.get(p.parent) ?? (await this.driver.diffMode(p.parent)));
      }
      const queue = missing.map((p, i) => ({ ...p, record: begun[i]! }));
      // vfs merges each layer over its parent's finished tree: a layer's merge waits for its parent (one begun by
      // this commit; others exist already). Layers are taken parent first, so a waited-for parent is in flight.
      const ready = new Map<string, { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }>();
      for (const p of missing) {
        let resolve!: () => void;
        let reject!: (e: unknown) => void;
        const promise = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        promise.catch(() => {});
        ready.set(p.id, { promise, resolve, reject });
      }
      // Content that is in place is made durable and recorded complete in rounds (one syncfs and one layers.json
      // write for every layer that finished meanwhile), while the workers go on with the next layers.
      const completer = new LayerCompleter(() => this.layerFile.save(), options.sync ?? true);
      const completions: Promise<void>[] = [];
      // The first failure stops the layers still in flight.
      const stop = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
      const worker = async (): Promise<void> => {
        while (queue.length > 0 && failure === undefined) {
          const p = queue.shift()!;
          options.onLayer?.({ diffID: p.layer.diffID, id: p.id, state: 'applying' });
          let settled = false;
          try {
            if (signal.aborted) throw abortError(signal);
            const source = await p.layer.open();
            const filled = await this.fillLayerLocked(p.record, modes.get(p.id)!, source, {
              diffID: p.layer.diffID,
              ...(p.layer.digest !== undefined ? { digest: p.layer.digest } : {}),
              ...(p.layer.size !== undefined ? { size: p.layer.size } : {}),
            }, signal, async (result) => {
              settled = true;
              await p.layer.settle?.(result);
            }, p.parent !== undefined ? ready.get(p.parent)?.promise : undefined);
            ready.get(p.id)!.resolve();
            const completion = completer.complete(p.record, filled.applied, filled.syncDir).then(
              () => {
                applied.add(p.id);
                options.onLayer?.({ diffID: p.layer.diffID, id: p.id, state: 'applied' });
              },
              (err: unknown) => {
                stop.abort(); // the layers still in flight would be removed anyway
                throw err;
              },
            );
            completion.catch(() => {}); // read below, after the workers: not an unhandled rejection meanwhile
            completions.push(completion);
          } catch (err) {
            ready.get(p.id)!.reject(err);
            if (!settled) await p.layer.settle?.(undefined).catch(() => {});
            failure ??= err;
            stop.abort();
          }
        }
      };
      const n = Math.max(1, Math.min(options.concurrency ?? 3, missing.length));
      await Promise.all(Array.from({ length: n }, worker));
      completer.flush();
      // Every round has ended once every completion has (each round settles all of its layers).
      for (const outcome of await Promise.allSettled(completions)) {
        if (outcome.status === 'rejected') failure ??= outcome.reason;
      }
      if (failure !== undefined) {
        // A failed commit leaves the store as it was: drop every layer this commit began.
        await this.deleteLayersLocked(missing.map((p) => p.id)).catch(() => {});
        throw failure;
      }
      for (const p of plan) {
        if (!applied.has(p.id)) {
          await p.layer.settle?.(undefined);
          options.onLayer?.({ diffID: p.layer.diffID, id: p.id, state: 'exists' });
        }
        results.push({ id: p.id, diffID: p.layer.diffID, applied: applied.has(p.id) });
      }
      await this.withImages(true, async () => {
        let record = this.imageFile.get(id);
        const fresh = !record;
        if (!record) {
          record = { id, created: image.created ?? nowRfc3339(), metadata: '{}' } as ImageRecord;
          if (top !== undefined) record.layer = top;
        }
        const bigData: [string, Buffer][] = [[image.configDigest, image.config]];
        if (image.list) bigData.push([`manifest-${image.list.digest}`, image.list.bytes]);
        bigData.push([`manifest-${image.manifestDigest}`, image.manifest], ['manifest', image.manifest]);
        const dir = join(this.recordDir('images'), id);
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const names = record['big-data-names'] ?? [];
        const sizes = record['big-data-sizes'] ?? {};
        const digests = record['big-data-digests'] ?? {};
        for (const [key, data] of bigData) {
          await writeFileAtomic(join(dir, bigDataFileName(key)), data, 0o600);
          if (!names.includes(key)) names.push(key);
          sizes[key] = data.length;
          digests[key] = sha256(data);
        }
        record['big-data-names'] = names;
        record['big-data-sizes'] = sizes;
        record['big-data-digests'] = digests;
        record.digest = image.list?.digest ?? image.manifestDigest; // podman records the index digest when there was one
        if (fresh) this.imageFile.records.push(record);
        this.addNamesLocked(record, dedupe(image.names), 'prepend');
        await this.imageFile.save();
      });
    });
    return { id, names: dedupe(image.names), layers: results };
  }

  // ---- lifecycle: prune and orphan sweep -----------------------------------------------------------------------

  /**
   * Removes unused images: without `all`, the dangling ones (no name, no container, not the parent of another
   * image); with `all`, every image no container uses. Layers go with them unless something else still uses them.
   */
  async pruneImages(options: { all?: boolean } = {}): Promise<{ id: string; removedLayers: string[] }[]> {
    const removed: { id: string; removedLayers: string[] }[] = [];
    for (;;) {
      // One image at a time, re-evaluated after each removal: removing a child can make its parent dangling.
      const candidate = await this.withLayers(false, () =>
        this.withImages(false, () =>
          this.withContainers(false, async () => {
            const used = new Set(this.containerFile.records.map((c) => c.image));
            const chainOf = (top: string | undefined): string[] => {
              const out: string[] = [];
              for (let id = top, guard = 0; id !== undefined && guard < 100_000; guard++) {
                out.push(id);
                id = this.layerFile.get(id)?.parent;
              }
              return out;
            };
            const lowerLayers = new Set(this.imageFile.records.flatMap((i) => chainOf(i.layer).slice(1)));
            return this.imageFile.records.find(
              (i) => !used.has(i.id) && (options.all || ((i.names ?? []).length === 0 && !(i.layer !== undefined && lowerLayers.has(i.layer)))),
            )?.id;
          }),
        ),
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
    return this.withLayers(true, () =>
      this.withImages(true, () =>
        this.withContainers(true, async () => {
          const removed: string[] = [];
          const layerIds = new Set(this.layerFile.records.map((l) => l.id));
          const imageIds = new Set(this.imageFile.records.map((i) => i.id));
          const containerIds = new Set(this.containerFile.records.map((c) => c.id));
          const g = this.graphroot;
          const list = async (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);
          const drop = async (p: string): Promise<void> => {
            await removeTree(p);
            removed.push(relative(g, p) || p);
          };
          if (this.driver instanceof VfsDriver) {
            // Staging trees exist only while a layer is being made under the layers lock, which we hold.
            for (const name of await list(this.driver.stagingRoot)) await drop(join(this.driver.stagingRoot, name));
            for (const name of await list(join(g, 'vfs', 'dir'))) {
              if (isFullId(name) && !layerIds.has(name)) {
                await this.driver.remove(name);
                removed.push(`vfs/dir/${name}`);
              }
            }
          } else {
            for (const name of await list(join(g, 'overlay'))) {
              if (isFullId(name) && !layerIds.has(name)) {
                await this.driver.remove(name);
                removed.push(`overlay/${name}`);
              }
            }
            for (const name of await list(join(g, 'overlay', 'l'))) {
              const link = join(g, 'overlay', 'l', name);
              const target = await readlink(link).catch(() => undefined);
              const id = target?.match(/^\.\.\/([0-9a-f]{64})\/diff$/)?.[1];
              if (id === undefined || !layerIds.has(id)) {
                await unlink(link).catch(() => {});
                removed.push(`overlay/l/${name}`);
              }
            }
          }
          for (const name of await list(this.recordDir('layers'))) {
            const id = name.match(/^([0-9a-f]{64})\.tar-split\.gz$/)?.[1];
            if (id !== undefined && !layerIds.has(id)) await drop(join(this.recordDir('layers'), name));
          }
          for (const name of await list(this.recordDir('images'))) {
            if (isFullId(name) && !imageIds.has(name)) await drop(join(this.recordDir('images'), name));
          }
          for (const root of [g, this.runroot]) {
            for (const name of await list(this.recordDir('containers', root))) {
              if (isFullId(name) && !containerIds.has(name)) await drop(join(this.recordDir('containers', root), name));
            }
          }
          // Scratch trees of checkouts and exports: those hold the layers lock shared, so none runs while we hold it.
          for (const name of await list(join(g, 'carrier-tmp'))) await drop(join(g, 'carrier-tmp', name));
          // Temp files of atomic writes (".<name>.<pid>.<random>.tmp") whose writer process is gone.
          for (const dir of [this.recordDir('layers'), this.recordDir('images'), this.recordDir('containers')]) {
            for (const name of await list(dir)) {
              const pid = name.match(/^\..+\.(\d+)\.[0-9a-f]+\.tmp$/)?.[1];
              if (pid !== undefined && !processAlive(Number(pid))) await drop(join(dir, name));
            }
          }
          return removed;
        }),
      ),
    );
  }

  // ---- mounts ----------------------------------------------------------------------------------------------------

  private mountsFile(): RecordFile<MountRecord> {
    return (this.mountRecords ??= new RecordFile<MountRecord>(join(this.recordDir('layers', this.runroot), 'mountpoints.json'), this.locks.mounts, 'mount'));
  }

  /**
   * Mounts a container's (or any read-write layer's) merged view at `overlay/<layer>/merged` and counts the mount in
   * `<runroot>/overlay-layers/mountpoints.json` as podman does: a second mount only counts. Returns the path.
   * On vfs nothing is mounted: the layer's directory is its whole tree and is returned (and counted) as is.
   */
  async mountContainer(query: string): Promise<string> {
    const c = await this.container(query);
    const layerId = c?.layer ?? (await this.withLayers(false, async () => this.layerFile.get(query)?.id));
    if (!layerId) throw notFound('container', query);
    return this.withLayers(true, () =>
      this.locks.mounts.with(true, async () => {
        const mounts = this.mountsFile();
        await mounts.reloadIfChanged();
        if (!this.layerFile.get(layerId)) throw notFound('layer', layerId);
        const entry = mounts.get(layerId);
        if (this.driver instanceof VfsDriver) {
          const dir = this.driver.dir(layerId);
          if (entry && entry.count > 0) {
            entry.count++;
            entry.path = dir;
          } else if (entry) {
            entry.count = 1;
            entry.path = dir;
          } else {
            mounts.records.push({ id: layerId, path: dir, count: 1 });
          }
          await mounts.save();
          return dir;
        }
        const paths = this.driver.paths(layerId);
        if (entry && entry.count > 0 && (await isMountPoint(paths.merged))) {
          entry.count++;
          await mounts.save();
          return entry.path;
        }
        const lowers = await this.overlay.lowerDirs(layerId);
        await mkdir(paths.merged, { recursive: true, mode: 0o700 });
        await mkdir(paths.work, { recursive: true, mode: 0o700 });
        const extra = (this.config.mountOpt ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
        await mountOverlay(
          {
            lowerdirs: lowers.length > 0 ? lowers : [join(paths.dir, 'empty')],
            upperdir: paths.diff,
            workdir: paths.work,
            target: paths.merged,
            ...(this.rootless ? { userxattr: true } : {}),
            extraOptions: extra,
          },
          this.config.mountProgram ? { method: 'fuse', mountProgram: this.config.mountProgram } : {},
        );
        if (entry) {
          entry.count = 1;
          entry.path = paths.merged;
        } else {
          mounts.records.push({ id: layerId, path: paths.merged, count: 1 });
        }
        await mounts.save();
        return paths.merged;
      }),
    );
  }

  /** Drops one mount of the container's layer (all of them with `force`); unmounts at zero. True while still mounted. */
  async unmountContainer(query: string, options: { force?: boolean } = {}): Promise<boolean> {
    const c = await this.container(query);
    const layerId = c?.layer ?? query;
    return this.withLayers(true, () =>
      this.locks.mounts.with(true, async () => {
        const mounts = this.mountsFile();
        await mounts.reloadIfChanged();
        const entry = mounts.get(layerId);
        const merged = this.driver instanceof VfsDriver ? undefined : this.driver.paths(layerId).merged;
        if (!entry || entry.count <= 0) {
          if (merged !== undefined && (await isMountPoint(merged))) await unmountOverlay(merged);
          return false;
        }
        entry.count = options.force ? 0 : entry.count - 1;
        if (entry.count === 0) {
          if (merged !== undefined && (await isMountPoint(merged))) await unmountOverlay(merged);
          mounts.records = mounts.records.filter((m) => m !== entry);
        }
        await mounts.save();
        return entry.count > 0;
      }),
    );
  }

  /** Layers mounted now, with their paths and counts (as mountpoints.json records them). */
  async mounts(): Promise<MountRecord[]> {
    return this.locks.mounts.with(false, async () => {
      const mounts = this.mountsFile();
      await mounts.reloadIfChanged();
      return mounts.records.map((m) => ({ ...m }));
    });
  }

  // ---- containers ------------------------------------------------------------------------------------------------

  async containers(): Promise<ContainerInfo[]> {
    return this.withContainers(false, async () => this.containerFile.records.map(containerInfo));
  }

  /** Records a container of an image, with its own empty read-write layer on top of the image's layers. */
  async createContainer(imageQuery: string, options: { names?: string[]; id?: string; metadata?: string } = {}): Promise<ContainerInfo> {
    const img = await this.requireImage(imageQuery);
    const id = options.id ?? randomId();
    if (!isFullId(id)) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `container id must be 64 lowercase hex characters`);
    const layerId = randomId();
    return this.withLayers(true, () =>
      this.withImages(false, () =>
        this.withContainers(true, async () => {
          if (!img.readOnly && !this.imageFile.get(img.id)) throw notFound('image', imageQuery);
          const names = dedupe(options.names ?? []);
          for (const c of this.containerFile.records) {
            if (c.id === id) throw new CarrierError('CARRIER_EXISTS', `container ${id} already exists`);
            const clash = (c.names ?? []).find((n) => names.includes(n));
            if (clash) throw new CarrierError('CARRIER_EXISTS', `the container name "${clash}" is already in use by ${c.id}`);
          }
          try {
            const [layer] = await this.beginLayersLocked([{ id: layerId, parent: img.topLayer }]);
            // vfs: the container's layer starts as a copy of the image's tree (reflinks where the filesystem can).
            if (this.driver instanceof VfsDriver && img.topLayer !== undefined) {
              await cloneTree(this.layerDiffPath(img.topLayer, img.readOnly ? await this.layerRootOf(img.topLayer) : this.graphroot), this.driver.dir(layerId));
            }
            await chmod(this.layerDiffPath(layerId), img.topLayer ? await this.driver.diffMode(img.topLayer) : this.driver.defaultDiffMode);
            delete layer!.flags!.incomplete;
            omitEmpty(layer!, LAYER_FIELDS);
            await this.layerFile.save();
            const record: ContainerRecord = { id, image: img.id, layer: layerId, metadata: options.metadata ?? '', created: nowRfc3339() };
            if (names.length > 0) record.names = names;
            omitEmpty(record, CONTAINER_FIELDS);
            for (const root of [this.graphroot, this.runroot]) {
              await mkdir(join(this.recordDir('containers', root), id, 'userdata'), { recursive: true, mode: 0o700 });
            }
            this.containerFile.records.push(record);
            await this.containerFile.save();
            return containerInfo(record);
          } catch (err) {
            await this.deleteLayersLocked([layerId]).catch(() => {});
            throw err;
          }
        }),
      ),
    );
  }

  async container(query: string): Promise<ContainerInfo | undefined> {
    const all = await this.containers();
    return all.find((c) => c.id === query || c.names.includes(query)) ?? uniquePrefix(all, query);
  }

  async deleteContainer(query: string): Promise<void> {
    await this.withLayers(true, () =>
      this.withContainers(true, async () => {
        const c = this.containerFile.records.find((r) => r.id === query || (r.names ?? []).includes(query)) ??
          uniquePrefix(this.containerFile.records, query);
        if (!c) throw notFound('container', query);
        await this.deleteContainerLocked(c);
      }),
    );
  }

  /** Hold layers + containers write locks. */
  private async deleteContainerLocked(c: ContainerRecord): Promise<void> {
    await this.locks.mounts.with(true, async () => {
      const mounts = this.mountsFile();
      await mounts.reloadIfChanged();
      const merged = this.driver instanceof VfsDriver ? undefined : this.driver.paths(c.layer).merged;
      if (merged !== undefined && (await isMountPoint(merged))) await unmountOverlay(merged);
      if (mounts.get(c.layer)) {
        mounts.records = mounts.records.filter((m) => m.id !== c.layer);
        await mounts.save();
      }
    });
    await this.deleteLayersLocked(this.layerFile.get(c.layer) ? [c.layer] : []);
    this.containerFile.records = this.containerFile.records.filter((r) => r !== c);
    await this.containerFile.save();
    for (const root of [this.graphroot, this.runroot]) await removeTree(join(this.recordDir('containers', root), c.id));
  }
}

// ---- helpers -------------------------------------------------------------------------------------------------------

async function openReadOnlyStore(root: string, driver: 'overlay' | 'vfs', opened: StoreLock[]): Promise<ReadOnlyStore> {
  const lockOf = async (p: string): Promise<StoreLock | undefined> => {
    if (!(await exists(p))) return undefined;
    const l = await StoreLock.open(p, { readOnly: true });
    opened.push(l);
    return l;
  };
  const layersJson = join(root, `${driver}-layers`, 'layers.json');
  const imagesJson = join(root, `${driver}-images`, 'images.json');
  if (!(await exists(imagesJson))) {
    throw new CarrierError('CARRIER_NOT_FOUND', `additional image store ${root} has no ${driver}-images/images.json`, { path: root });
  }
  return {
    root,
    layers: new RecordFile<LayerRecord>(layersJson, await lockOf(join(root, `${driver}-layers`, 'layers.lock')), 'layer'),
    images: new RecordFile<ImageRecord>(imagesJson, await lockOf(join(root, `${driver}-images`, 'images.lock')), 'image'),
  };
}

/**
 * The incomplete-flag protocol, step 3: the layer's content is in place (and durable, unless sync is off); record
 * what it is and clear the flag.
 */
function markComplete(record: LayerRecord, applied: AppliedLayer): void {
  Object.assign(record, {
    'compressed-diff-digest': applied.compressedDigest,
    'compressed-size': applied.compressedSize,
    'diff-digest': applied.diffDigest,
    'diff-size': applied.diffSize,
    compression: COMPRESSION_CODE[applied.compression],
    uidset: [...applied.uidset].sort((a, b) => a - b),
    gidset: [...applied.gidset].sort((a, b) => a - b),
  });
  delete record.flags!.incomplete;
  omitEmpty(record, LAYER_FIELDS);
}

/**
 * Step 3 for many layers at once. Layers whose content is in place queue here; a round syncs the filesystem once,
 * then clears the flag of every layer it covers and writes layers.json once. While layers are still being applied,
 * a round starts at most every `intervalMs`; once {@link flush} says none are left, at once. A 300-layer image so
 * needs a few dozen rounds instead of 300 syncfs calls and 300 rewrites of a growing layers.json, and a one-layer
 * image waits for nothing. A layer's flag is never cleared before a syncfs that began after its content was in place,
 * unless `sync` is false (CommitOptions.sync: no syncfs at all, as podman).
 */
class LayerCompleter {
  private waiting: { record: LayerRecord; applied: AppliedLayer; syncDir: string; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private eager = false;

  constructor(
    private readonly save: () => Promise<void>,
    private readonly sync: boolean,
    private readonly intervalMs = 100,
  ) {}

  /** Resolves once the layer is durable (when syncing) and recorded complete; rejects with its round's failure. */
  complete(record: LayerRecord, applied: AppliedLayer, syncDir: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ record, applied, syncDir, resolve, reject });
      this.schedule();
    });
  }

  /** No more layers will come: rounds run back to back from now on. */
  flush(): void {
    this.eager = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.running || this.waiting.length === 0) return;
    if (this.eager) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.round();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.round();
      }, this.intervalMs);
    }
  }

  private async round(): Promise<void> {
    this.running = true;
    const round = this.waiting.splice(0);
    try {
      // All of a store's layer directories are on the graphroot's filesystem: one syncfs covers the round.
      if (this.sync) await syncFilesystem(round[0]!.syncDir);
      for (const l of round) markComplete(l.record, l.applied);
      await this.save();
      for (const l of round) l.resolve();
    } catch (err) {
      for (const l of round) l.reject(err);
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}

async function syncFilesystem(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await native.syncFs(fh.fd).catch((f: unknown) => {
      throw new CarrierError((f as { code: string }).code, (f as { message: string }).message, { path: dir });
    });
  } finally {
    await fh.close();
  }
}

const exists = pathExists;

async function touchFile(p: string, mode: number): Promise<void> {
  if (!(await exists(p))) await writeFile(p, '', { mode, flag: 'a' });
}

async function isMountPoint(p: string): Promise<boolean> {
  return (await findMount(p)) !== undefined;
}

function notFound(what: string, query: string): CarrierError {
  return new CarrierError('CARRIER_NOT_FOUND', `${what} not known: ${query}`);
}

function inUse(message: string): CarrierError {
  return new CarrierError('CARRIER_IN_USE', message);
}

function readOnly(id: string): CarrierError {
  return new CarrierError('EROFS', `image ${id.slice(0, 12)} is in a read-only additional image store`);
}

function uniquePrefix<T extends { id: string }>(all: T[], query: string): T | undefined {
  if (!/^[0-9a-f]{3,63}$/.test(query)) return undefined;
  const hits = all.filter((x) => x.id.startsWith(query));
  return hits.length === 1 ? hits[0] : undefined;
}

function layerInfo(r: LayerRecord, readOnly: boolean): LayerInfo {
  const info: LayerInfo = {
    id: r.id,
    names: r.names ?? [],
    uidset: r.uidset ?? [],
    gidset: r.gidset ?? [],
    incomplete: r.flags?.incomplete === true,
    readOnly,
  };
  if (r.parent !== undefined) info.parent = r.parent;
  if (r.created !== undefined) info.created = r.created;
  if (r['compressed-diff-digest'] !== undefined) info.compressedDigest = r['compressed-diff-digest'];
  if (r['compressed-size'] !== undefined) info.compressedSize = r['compressed-size'];
  if (r['diff-digest'] !== undefined) info.diffDigest = r['diff-digest'];
  if (r['diff-size'] !== undefined) info.diffSize = r['diff-size'];
  if (r.compression !== undefined) info.compression = r.compression;
  return info;
}

function imageInfo(r: ImageRecord, layers: readonly LayerRecord[], readOnly: boolean): ImageInfo {
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
    record: copy(r),
  };
  if (r.digest) info.digest = r.digest;
  if (r.layer) info.topLayer = r.layer;
  if (r.created) info.created = r.created;
  return info;
}

function containerInfo(r: ContainerRecord): ContainerInfo {
  const info: ContainerInfo = { id: r.id, names: r.names ?? [], image: r.image, layer: r.layer, record: copy(r) };
  if (r.created) info.created = r.created;
  if (r.metadata) info.metadata = r.metadata;
  return info;
}

export type { ImageLookup };

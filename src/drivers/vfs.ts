// The vfs driver's on-disk layout, as containers/storage's vfs driver keeps it:
//   vfs/dir/<id>/    the layer's whole tree (its parent's tree, then its own diff applied; no whiteouts left)
// There are no link/lower files and nothing is ever mounted: a container's root file system is its layer directory.
//
// Carrier adds one private directory, vfs/carrier-staging/<id>/, where a layer's tar is extracted before it is
// merged over its parent's tree into vfs/dir/<id>. It exists only while the layer is being filled (the layers lock
// held) and is removed with the layer.
import { stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CarrierError, abortError } from '../errors.js';
import { cloneTree } from '../fs/clone.js';
import { mergeLayers } from '../fs/merge.js';
import { pathExists } from '../fs/paths.js';
import { removeTree } from '../fs/remove.js';
import { makeSpreadDir, SPREAD_PREFIX } from '../fs/spread-dir.js';
import { isRootless } from '../host.js';
import { applyLayer, type AppliedLayer } from '../layer/apply.js';
import { isFullId } from '../store/ids.js';
import type { ApplyDiffOptions, CreateReadWriteOptions, DiffSource, Driver, DriverUsage } from './driver.js';
import { LayerModes } from './layer-modes.js';
import type { Change } from './changes.js';
import { treeChanges } from './naive-changes.js';
import { naiveDiffStream } from './naive-diff.js';
import { treeUsage } from './usage.js';
import { makeDirs } from '../fs/batch.js';

/** A base layer's directory mode in c/storage's vfs driver; a child layer's directory takes its parent's mode. */
const DEFAULT_DIR_MODE = 0o555;
const STAGING = 'carrier-staging';

export interface VfsDriverOptions {
  /** Graphroots of read-only additional image stores, searched by {@link VfsDriver.locate}. */
  additionalImageStores?: string[];
}

export class VfsDriver implements Driver {
  readonly name = 'vfs';
  readonly flat = true;
  private readonly modes: LayerModes;

  constructor(
    /** graphroot/vfs */
    readonly home: string,
    readonly options: VfsDriverOptions = {},
  ) {
    this.modes = new LayerModes(DEFAULT_DIR_MODE, (id) => this.diffMode(id));
  }

  async init(): Promise<void> {
    // looked at first: it is there in every store but a new one (a recursive mkdir of what exists is two round trips)
    if ((await stat(join(this.home, 'dir')).catch(() => undefined))?.isDirectory()) return;
    await makeDirs(this.home, 0o700);
    await makeDirs(join(this.home, 'dir'), 0o700);
  }

  /** The layer's directory: its whole tree. */
  dir(id: string): string {
    return join(this.home, 'dir', id);
  }

  contentDir(id: string): string {
    return this.dir(id);
  }

  layerDir(id: string): string {
    return this.dir(id);
  }

  async locate(id: string): Promise<string> {
    for (const home of [this.home, ...(this.options.additionalImageStores ?? []).map((r) => join(r, 'vfs'))]) {
      const dir = join(home, 'dir', id);
      if (await pathExists(dir)) return dir;
    }
    throw new CarrierError('CARRIER_NOT_FOUND', `layer ${id} has no directory in this store or its additional image stores`);
  }

  mountPath(id: string): string {
    return this.dir(id);
  }

  /** Where the layer's own tar is extracted (aufs-style `.wh.` whiteouts) before it is merged over the parent. */
  stagingDir(id: string): string {
    return join(this.home, STAGING, id);
  }

  /** Directory of staging trees (each named by a layer id). */
  get stagingRoot(): string {
    return join(this.home, STAGING);
  }

  /**
   * Creates the layer's (empty) directory, writable (0755) so it can be filled; {@link applyDiff} gives it its final
   * mode ({@link defaultDiffMode} or the parent's) once filled.
   */
  async create(id: string, parent: string | undefined): Promise<void> {
    await makeDirs(join(this.home, 'dir'), 0o700);
    await makeSpreadDir(join(this.home, 'dir'), id, 0o755);
    this.modes.created(id, parent);
  }

  /** A container's layer: its parent's tree cloned (reflinks where the filesystem can), with the parent's mode. */
  async createReadWrite(id: string, parent: string | undefined, options: CreateReadWriteOptions = {}): Promise<void> {
    await options.recorded;
    await this.create(id, parent);
    try {
      if (parent !== undefined) await cloneTree(await this.locate(parent), this.dir(id));
      await this.modes.settle(id, parent, this.dir(id));
    } catch (err) {
      await this.remove(id).catch(() => {});
      throw err;
    }
  }

  /** Creates the empty staging directory a layer's tar is extracted into. */
  async createStaging(id: string): Promise<string> {
    await makeDirs(this.stagingRoot, 0o700);
    const p = this.stagingDir(id);
    await removeTree(p);
    await makeSpreadDir(this.stagingRoot, id, 0o755);
    return p;
  }

  /**
   * The layer's own tar goes to a staging tree (aufs-style `.wh.` files: no device nodes or trusted.* xattrs
   * needed), then its parent's tree and the staging tree are merged into the layer directory — parent files
   * reflinked where the filesystem can, whiteouts deleting, opaque directories clearing. The parent's tree has no
   * whiteouts, so it merges as a plain base. Tars of several layers extract at once; each merge waits for
   * `options.parentReady`.
   */
  async applyDiff(id: string, parent: string | undefined, source: DiffSource, options: ApplyDiffOptions = {}): Promise<AppliedLayer> {
    // (no writeback: the staging tree is merged into the layer, not kept)
    const { parentReady, onApplied, writeback: _staging, ...applyOptions } = options;
    const { signal } = options;
    const staging = await this.createStaging(id);
    try {
      const applied = await applyLayer(source, staging, { ...applyOptions, rootless: isRootless(), whiteouts: 'aufs' });
      await onApplied?.(applied); // before the wait: a pull's blob lock is never held across it
      await parentReady;
      if (signal?.aborted) throw abortError(signal);
      const sources = parent !== undefined ? [await this.locate(parent), staging] : [staging];
      await mergeLayers(sources, this.dir(id), { ...(signal ? { signal } : {}) });
      await this.modes.settle(id, parent, this.dir(id));
      return applied;
    } finally {
      await removeTree(staging);
    }
  }

  async diff(id: string, parent: string | undefined): Promise<Readable> {
    return naiveDiffStream(await this.locate(id), parent === undefined ? undefined : await this.locate(parent));
  }

  async changes(id: string, parent: string | undefined): Promise<Change[]> {
    return treeChanges(Buffer.from(await this.locate(id)), parent === undefined ? undefined : Buffer.from(await this.locate(parent)));
  }

  get defaultDiffMode(): number {
    return DEFAULT_DIR_MODE;
  }

  /** The mode of the layer's directory (here, or in an additional image store). */
  async diffMode(id: string): Promise<number> {
    return (await stat(await this.locate(id))).mode & 0o7777;
  }

  /** Nothing to mount: the layer's directory is its whole tree. */
  async get(id: string): Promise<string> {
    const dir = this.dir(id);
    if (!(await pathExists(dir))) throw new CarrierError('CARRIER_NOT_FOUND', `layer ${id} has no directory`, { path: dir });
    return dir;
  }

  async put(_id: string): Promise<void> {}

  async usage(id: string): Promise<DriverUsage> {
    return treeUsage(this.dir(id));
  }

  /** Removes the layer directory and its staging tree; missing pieces are fine (a half-created layer). */
  async remove(id: string): Promise<void> {
    this.modes.forget(id);
    await removeTree(this.stagingDir(id));
    await removeTree(this.dir(id));
  }

  async exists(id: string): Promise<boolean> {
    return pathExists(this.dir(id));
  }

  /** Staging trees exist only while a layer is filled under the layers lock, which the caller holds: all go. */
  async cleanup(recorded: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.stagingRoot).catch(() => [] as string[])) {
      await removeTree(join(this.stagingRoot, name));
      removed.push(`vfs/${STAGING}/${name}`);
    }
    for (const name of await readdir(join(this.home, 'dir')).catch(() => [] as string[])) {
      if (isFullId(name) && !recorded.has(name)) {
        await this.remove(name);
        removed.push(`vfs/dir/${name}`);
      } else if (name.startsWith(SPREAD_PREFIX)) {
        await removeTree(join(this.home, 'dir', name));
        removed.push(`vfs/dir/${name}`);
      }
    }
    return removed;
  }
}

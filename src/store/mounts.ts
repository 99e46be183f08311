// Mount counting, as podman keeps it: `<runroot>/<driver>-layers/mountpoints.json` (and mountpoints.lock) records
// each mounted layer, where, and how many mounts hold it; the layer is mounted by the first and unmounted by the last.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mountOverlay, unmountOverlay, findMount } from '../drivers/mount.js';
import { OverlayDriver } from '../drivers/overlay.js';
import type { VfsDriver } from '../drivers/vfs.js';
import type { StoreLock } from './lock.js';
import { RecordFile, type MountRecord } from './records.js';

export class MountStore {
  private readonly file: RecordFile<MountRecord>;

  constructor(
    readonly lock: StoreLock,
    /** `<runroot>/<driver>-layers`. */
    dir: string,
    private readonly driver: OverlayDriver | VfsDriver,
    private readonly options: { rootless: boolean; mountOpt?: string; mountProgram?: string },
  ) {
    this.file = new RecordFile<MountRecord>(join(dir, 'mountpoints.json'), lock, 'mount');
  }

  /** Runs `fn` holding the mounts lock, the records reloaded when another process changed them. */
  async with<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.lock.with(exclusive, async () => {
      await this.file.reloadIfChanged();
      return fn();
    });
  }

  /** Layers mounted now, with their paths and counts. */
  async list(): Promise<MountRecord[]> {
    return this.with(false, async () => this.file.records.map((m) => ({ ...m })));
  }

  /**
   * Counts one more mount of the layer, mounting it when it is the first: overlay at `overlay/<layer>/merged`; vfs
   * mounts nothing (the layer's directory is its whole tree). Returns the path. Hold the layers and mounts write locks.
   */
  async mount(layerId: string): Promise<string> {
    const mounts = this.file;
    const entry = mounts.get(layerId);
    if (!(this.driver instanceof OverlayDriver)) {
      const dir = this.driver.dir(layerId);
      if (entry) {
        entry.count = entry.count > 0 ? entry.count + 1 : 1;
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
    const lowers = await this.driver.lowerDirs(layerId);
    await mkdir(paths.merged, { recursive: true, mode: 0o700 });
    await mkdir(paths.work, { recursive: true, mode: 0o700 });
    const extra = (this.options.mountOpt ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
    await mountOverlay(
      {
        lowerdirs: lowers.length > 0 ? lowers : [join(paths.dir, 'empty')],
        upperdir: paths.diff,
        workdir: paths.work,
        target: paths.merged,
        ...(this.options.rootless ? { userxattr: true } : {}),
        extraOptions: extra,
      },
      this.options.mountProgram ? { method: 'fuse', mountProgram: this.options.mountProgram } : {},
    );
    if (entry) {
      entry.count = 1;
      entry.path = paths.merged;
    } else {
      mounts.records.push({ id: layerId, path: paths.merged, count: 1 });
    }
    await mounts.save();
    return paths.merged;
  }

  /**
   * Drops one mount of the layer (all of them with `force`); unmounts at zero. True while still mounted. Hold the
   * layers and mounts write locks.
   */
  async unmount(layerId: string, force: boolean): Promise<boolean> {
    const mounts = this.file;
    const entry = mounts.get(layerId);
    if (!entry || entry.count <= 0) {
      await this.put(layerId);
      return false;
    }
    entry.count = force ? 0 : entry.count - 1;
    if (entry.count === 0) {
      await this.put(layerId);
      mounts.records = mounts.records.filter((m) => m !== entry);
    }
    await mounts.save();
    return entry.count > 0;
  }

  /** Unmounts the layer whatever its count and forgets its mounts (its container is being deleted). Hold the mounts write lock. */
  async forget(layerId: string): Promise<void> {
    await this.put(layerId);
    if (this.file.get(layerId)) {
      this.file.records = this.file.records.filter((m) => m.id !== layerId);
      await this.file.save();
    }
  }

  /** Unmounts every layer that is mounted, among those recorded and `layerIds`; the counts stay. Hold the mounts write lock. */
  async unmountAll(layerIds: Iterable<string>): Promise<void> {
    for (const id of new Set([...this.file.records.map((m) => m.id), ...layerIds])) await this.put(id);
  }

  /** Forgets every count (nothing is mounted any more). Hold the mounts write lock. */
  async clear(): Promise<void> {
    this.file.records = [];
    await this.file.save();
  }

  /** Unmounts the layer where the driver mounts it, when it is mounted. */
  private async put(layerId: string): Promise<void> {
    if (!(this.driver instanceof OverlayDriver)) return;
    const merged = this.driver.paths(layerId).merged;
    if (await isMountPoint(merged)) await unmountOverlay(merged);
  }
}

async function isMountPoint(p: string): Promise<boolean> {
  return (await findMount(p)) !== undefined;
}

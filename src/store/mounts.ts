// Mount counting, as podman keeps it: `<runroot>/<driver>-layers/mountpoints.json` (and mountpoints.lock) records
// each mounted layer, where, and how many mounts hold it; the driver mounts the layer for the first and unmounts it
// after the last (overlay at `overlay/<id>/merged`; vfs mounts nothing and hands out the layer's directory).
import { join } from 'node:path';
import type { Driver } from '../drivers/index.js';
import { isMounted } from '../drivers/mount.js';
import type { StoreLock } from './lock.js';
import { RecordFile, type MountRecord } from './records.js';

export class MountStore {
  private readonly file: RecordFile<MountRecord>;

  constructor(
    readonly lock: StoreLock,
    /** `<runroot>/<driver>-layers`. */
    dir: string,
    private readonly driver: Driver,
  ) {
    // in the run root, which a reboot clears: not flushed (as podman's), so a mount or umount costs no fsync
    this.file = new RecordFile<MountRecord>(join(dir, 'mountpoints.json'), lock, 'mount', false);
  }

  /** Runs `fn` holding the mounts lock, the records reloaded when another process changed them. */
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

  /** Layers mounted now, with their paths and counts. */
  async list(): Promise<MountRecord[]> {
    return this.with(false, async () => this.file.records.map((m) => ({ ...m })));
  }

  /**
   * Counts one more mount of the layer and returns its path. As containers/storage does, a count whose mount is
   * still in place only grows; otherwise the driver mounts the layer (again) and the count grows from what it was.
   * Hold the layers and mounts write locks.
   */
  async mount(layerId: string): Promise<string> {
    const entry = this.file.get(layerId);
    if (entry && entry.count > 0 && (await isMounted(entry.path))) {
      entry.count++;
      await this.file.save();
      return entry.path;
    }
    const path = await this.driver.get(layerId);
    if (entry) {
      entry.count = Math.max(entry.count, 0) + 1;
      entry.path = path;
    } else {
      this.file.records.push({ id: layerId, path, count: 1 });
    }
    await this.file.save();
    return path;
  }

  /**
   * Drops one mount of the layer (all of them with `force`); the driver unmounts it at zero. True while still
   * mounted. Hold the layers and mounts write locks.
   */
  async unmount(layerId: string, force: boolean): Promise<boolean> {
    const entry = this.file.get(layerId);
    if (!entry || entry.count <= 0) {
      await this.driver.put(layerId);
      return false;
    }
    entry.count = force ? 0 : entry.count - 1;
    if (entry.count === 0) {
      await this.driver.put(layerId);
      this.file.records = this.file.records.filter((m) => m !== entry);
    }
    await this.file.save();
    return entry.count > 0;
  }

  /** Unmounts the layer whatever its count and forgets its mounts (its container is being deleted). Hold the mounts write lock. */
  async forget(layerId: string): Promise<void> {
    await this.driver.put(layerId);
    if (this.file.get(layerId)) {
      this.file.records = this.file.records.filter((m) => m.id !== layerId);
      await this.file.save();
    }
  }

  /** Unmounts every layer that is mounted, among those recorded and `layerIds`; the counts stay. Hold the mounts write lock. */
  async unmountAll(layerIds: Iterable<string>): Promise<void> {
    for (const id of new Set([...this.file.records.map((m) => m.id), ...layerIds])) await this.driver.put(id);
  }

  /** Forgets every count (nothing is mounted any more). Hold the mounts write lock. */
  async clear(): Promise<void> {
    this.file.records = [];
    await this.file.save();
  }
}

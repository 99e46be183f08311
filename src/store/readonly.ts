// Read-only additional image stores (storage.conf `additionalimagestores`): other graphroots of the same driver whose
// layers and images this store lists and uses but never writes. Their locks are taken shared only, and only when the
// store has them (a store on read-only media may have none).
import { join } from 'node:path';
import { pathExists } from '../fs/paths.js';
import { CarrierError } from '../errors.js';
import { StoreLock } from './lock.js';
import { RecordFile, type ImageRecord, type LayerRecord } from './records.js';

export interface ReadOnlyStore {
  root: string;
  layers: RecordFile<LayerRecord>;
  images: RecordFile<ImageRecord>;
}

export class ReadOnlyStores {
  private constructor(private readonly stores: readonly ReadOnlyStore[]) {}

  /** Opens each root's record files; the locks opened are also pushed to `opened` (closed by the caller on failure). */
  static async open(roots: readonly string[], driver: 'overlay' | 'vfs', opened: StoreLock[]): Promise<ReadOnlyStores> {
    const stores: ReadOnlyStore[] = [];
    for (const root of roots) stores.push(await openOne(root, driver, opened));
    return new ReadOnlyStores(stores);
  }

  /** Runs `fn` holding every read-only store's locks shared, with their records reloaded when they changed. */
  async with<T>(fn: (stores: readonly ReadOnlyStore[]) => Promise<T>): Promise<T> {
    const held: StoreLock[] = [];
    try {
      for (const s of this.stores) {
        for (const file of [s.layers, s.images]) {
          if (file.lock) {
            await file.lock.lock(false);
            held.push(file.lock);
          }
          await file.reloadIfChanged();
        }
      }
      return await fn(this.stores);
    } finally {
      for (const l of held.reverse()) l.unlock(false);
    }
  }

  /** The root of the read-only store that has image `id`. */
  async imageRoot(id: string): Promise<string | undefined> {
    return this.with(async (stores) => stores.find((s) => s.images.get(id))?.root);
  }

  async close(): Promise<void> {
    for (const s of this.stores) {
      await s.layers.lock?.close();
      await s.images.lock?.close();
    }
  }
}

async function openOne(root: string, driver: 'overlay' | 'vfs', opened: StoreLock[]): Promise<ReadOnlyStore> {
  const lockOf = async (p: string): Promise<StoreLock | undefined> => {
    if (!(await pathExists(p))) return undefined;
    const l = await StoreLock.open(p, { readOnly: true });
    opened.push(l);
    return l;
  };
  const layersJson = join(root, `${driver}-layers`, 'layers.json');
  const imagesJson = join(root, `${driver}-images`, 'images.json');
  if (!(await pathExists(imagesJson))) {
    throw new CarrierError('CARRIER_NOT_FOUND', `additional image store ${root} has no ${driver}-images/images.json`, { path: root });
  }
  return {
    root,
    layers: new RecordFile<LayerRecord>(layersJson, await lockOf(join(root, `${driver}-layers`, 'layers.lock')), 'layer'),
    images: new RecordFile<ImageRecord>(imagesJson, await lockOf(join(root, `${driver}-images`, 'images.lock')), 'image'),
  };
}

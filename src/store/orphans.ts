// What crashes leave behind: layers a killed writer left incomplete or was making (repair), and files no record references
// (sweepOrphans) — layer directories and links, tar-splits, image and container directories, scratch trees, and temp
// files of writers that are gone.
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { processAlive } from '../host.js';
import { removeTree } from '../fs/remove.js';
import type { ContainerStore } from './containers.js';
import { isFullId } from './ids.js';
import type { ImageStore } from './images.js';
import type { LayerStore } from './layers.js';

/**
 * Removes what a killed writer left half made: its `incomplete` layers, and the read-write layers it was making
 * (marked in the run root, not yet recorded). Writers hold the layers lock for as long as a layer is incomplete or
 * marked, so whoever gets the lock and still sees one knows its writer is gone. When the lock is busy (a live pull),
 * this does not wait: the next writer to take the lock repairs the incomplete layers, the next open the marked ones.
 */
export async function repair(layers: LayerStore): Promise<string[]> {
  if (!(await layers.lock.tryLock(true))) return [];
  try {
    // together: the lock is held, so the token read is the one the records go with
    const [, , marked] = await Promise.all([layers.file.load(), layers.lock.modified(), layers.markedCreating()]);
    return [...(await layers.removeIncomplete()), ...(await layers.removeAbandoned(marked))];
  } finally {
    layers.lock.unlock(true);
  }
}

/**
 * Finds and removes what no record references. Hold the layers, images and containers write locks; anything a
 * record references is never touched. Returns what it removed (relative to the graphroot).
 */
export async function sweepOrphansLocked(
  parts: { layers: LayerStore; images: ImageStore; containers: ContainerStore },
  graphroot: string,
): Promise<string[]> {
  const { layers, images, containers } = parts;
  const removed: string[] = [];
  const layerIds = new Set(layers.records.map((l) => l.id));
  const imageIds = new Set(images.records.map((i) => i.id));
  const containerIds = new Set(containers.records.map((c) => c.id));
  const g = graphroot;
  const list = async (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);
  const drop = async (p: string): Promise<void> => {
    await removeTree(p);
    removed.push(relative(g, p) || p);
  };
  // Layer directories and whatever else the driver keeps per layer (overlay's l/ links, vfs's staging trees).
  removed.push(...(await layers.driver.cleanup(layerIds)));
  for (const name of await list(layers.dir)) {
    const id = name.match(/^([0-9a-f]{64})\.(?:tar-split\.gz|files\.json)$/)?.[1]; // files.json: src/chunked/file-index.ts
    if (id !== undefined && !layerIds.has(id)) await drop(join(layers.dir, name));
  }
  for (const name of await list(images.dir)) {
    if (isFullId(name) && !imageIds.has(name)) await drop(join(images.dir, name));
  }
  for (const dir of [containers.dirOf('graph'), containers.dirOf('run')]) {
    for (const name of await list(dir)) {
      if (isFullId(name) && !containerIds.has(name)) await drop(join(dir, name));
    }
  }
  // Scratch trees of checkouts and exports: those hold the layers lock shared, so none runs while we hold it.
  for (const name of await list(join(g, 'carrier-tmp'))) await drop(join(g, 'carrier-tmp', name));
  // Temp files of atomic writes (".<name>.<pid>.<random>.tmp") whose writer process is gone.
  for (const dir of [layers.dir, images.dir, containers.dirOf('graph')]) {
    for (const name of await list(dir)) {
      const pid = name.match(/^\..+\.(\d+)\.[0-9a-f]+\.tmp$/)?.[1];
      if (pid !== undefined && !processAlive(Number(pid))) await drop(join(dir, name));
    }
  }
  return removed;
}

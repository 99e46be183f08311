// Where a store keeps what, as containers/storage lays it out for a driver `<d>`:
//
//   <graphroot>/storage.lock, userns.lock
//   <graphroot>/<d>-layers/layers.json      + layers.lock, <id>.tar-split.gz
//   <graphroot>/<d>-images/images.json      + images.lock, <id>/<big data>
//   <graphroot>/<d>-containers/containers.json + containers.lock, <id>/userdata
//   <runroot>/<d>-layers/mountpoints.json   + mountpoints.lock
//   <runroot>/<d>-containers/<id>/userdata
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathExists } from '../fs/paths.js';
import { makeDirs } from '../fs/batch.js';
import { writeFileAtomic } from './atomic.js';

export interface StoreLayout {
  graphroot: string;
  runroot: string;
  driver: 'overlay' | 'vfs';
  layersDir: string;
  imagesDir: string;
  containersDir: string;
  runLayersDir: string;
  runContainersDir: string;
  /** The lock files, in the order they are always taken. */
  locks: { storage: string; layers: string; images: string; containers: string; mounts: string };
  usernsLock: string;
}

export function storeLayout(graphroot: string, runroot: string, driver: 'overlay' | 'vfs'): StoreLayout {
  const layersDir = join(graphroot, `${driver}-layers`);
  const imagesDir = join(graphroot, `${driver}-images`);
  const containersDir = join(graphroot, `${driver}-containers`);
  const runLayersDir = join(runroot, `${driver}-layers`);
  return {
    graphroot,
    runroot,
    driver,
    layersDir,
    imagesDir,
    containersDir,
    runLayersDir,
    runContainersDir: join(runroot, `${driver}-containers`),
    locks: {
      storage: join(graphroot, 'storage.lock'),
      layers: join(layersDir, 'layers.lock'),
      images: join(imagesDir, 'images.lock'),
      containers: join(containersDir, 'containers.lock'),
      mounts: join(runLayersDir, 'mountpoints.lock'),
    },
    usernsLock: join(graphroot, 'userns.lock'),
  };
}

/**
 * Makes the directories and files of an empty store where they are missing. Each is looked at first (one thread-pool
 * round trip, where a recursive mkdir of a directory that exists is two), all at once, and only the missing ones are
 * made (a recursive mkdir makes the graphroot and runroot with the same mode, and two of them racing to make a parent
 * is fine).
 */
export async function prepareLayout(layout: StoreLayout): Promise<void> {
  const dirs = [layout.graphroot, layout.layersDir, layout.imagesDir, layout.containersDir, layout.runLayersDir, layout.runContainersDir];
  const [present, files] = await Promise.all([Promise.all(dirs.map(isDirectory)), layoutFiles(layout)]);
  // all in one native job, which fails where mkdir cannot make one (`--root /proc/x` spun forever in Node's)
  await makeDirs(dirs.filter((_, i) => !present[i]), 0o700);
  if (!files.userns) await writeFile(layout.usernsLock, '', { mode: 0o644, flag: 'a' });
  // in the run root, which a reboot clears: written as the mount records are, not flushed
  if (!files.mounts) await writeFileAtomic(join(layout.runLayersDir, 'mountpoints.json'), '[]', 0o600, false);
}

/**
 * True when the parts of the layout that opening the store's lock files does not show are there: the run root's
 * containers directory, userns.lock and mountpoints.json. A store whose five lock files open and that has these is
 * complete, and needs no {@link prepareLayout}: what every command after the first finds.
 */
export async function layoutComplete(layout: StoreLayout): Promise<boolean> {
  const [runContainers, files] = await Promise.all([isDirectory(layout.runContainersDir), layoutFiles(layout)]);
  return runContainers && files.userns && files.mounts;
}

async function layoutFiles(layout: StoreLayout): Promise<{ userns: boolean; mounts: boolean }> {
  const [userns, mounts] = await Promise.all([pathExists(layout.usernsLock), pathExists(join(layout.runLayersDir, 'mountpoints.json'))]);
  return { userns, mounts };
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

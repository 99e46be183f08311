// Where a store keeps what, as containers/storage lays it out for a driver `<d>`:
//
//   <graphroot>/storage.lock, userns.lock
//   <graphroot>/<d>-layers/layers.json      + layers.lock, <id>.tar-split.gz
//   <graphroot>/<d>-images/images.json      + images.lock, <id>/<big data>
//   <graphroot>/<d>-containers/containers.json + containers.lock, <id>/userdata
//   <runroot>/<d>-layers/mountpoints.json   + mountpoints.lock
//   <runroot>/<d>-containers/<id>/userdata
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathExists } from '../fs/paths.js';
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
 * Makes the directories and files of an empty store where they are missing. Every directory is made at once (a
 * recursive mkdir makes the graphroot and runroot with the same mode, and two of them racing to make a parent is
 * fine), and the two files are looked for meanwhile: a short command opens the store, and each of these is a
 * thread-pool round trip (two when the directory exists) it used to wait for in turn.
 */
export async function prepareLayout(layout: StoreLayout): Promise<void> {
  const mounts = join(layout.runLayersDir, 'mountpoints.json');
  const dirs = [layout.graphroot, layout.layersDir, layout.imagesDir, layout.containersDir, layout.runLayersDir, layout.runContainersDir];
  // a file is looked for before its directory may exist: then it is missing, and made below once the directory is
  const found = await Promise.allSettled([...dirs.map((dir) => mkdir(dir, { recursive: true, mode: 0o700 })), pathExists(layout.usernsLock), pathExists(mounts)]);
  const failed = found.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const [userns, mountsFile] = found.slice(dirs.length).map((r) => (r as PromiseFulfilledResult<boolean>).value);
  if (!userns) await writeFile(layout.usernsLock, '', { mode: 0o644, flag: 'a' });
  // in the run root, which a reboot clears: written as the mount records are, not flushed
  if (!mountsFile) await writeFileAtomic(mounts, '[]', 0o600, false);
}

// Emptying a store: every layer, image and container goes, under the store's locks, so no other Carrier or podman
// process is half-way through a write when the files disappear. The lock files stay (other processes may have them
// open, and a lock on a deleted file would guard nothing); the records are written empty with new last-writer
// tokens, so every other holder reloads and sees an empty store.
import { readFile, readdir, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { CarrierError } from '../errors.js';
import { removeTree } from '../fs/remove.js';
import type { ContainerStore } from './containers.js';
import type { ImageStore } from './images.js';
import type { LayerStore } from './layers.js';
import { prepareLayout, type StoreLayout } from './layout.js';
import type { MountStore } from './mounts.js';

/**
 * Unmounts every mounted layer, then removes everything under the graphroot and the runroot but the lock files, and
 * makes the empty layout again. Refuses (CARRIER_IN_USE) when something stays mounted under either root, before
 * removing anything. Hold every lock of the store, exclusively.
 */
export async function resetLocked(
  parts: { layers: LayerStore; images: ImageStore; containers: ContainerStore; mounts: MountStore },
  layout: StoreLayout,
): Promise<void> {
  for (const dir of [layout.graphroot, layout.runroot]) checkResettable(dir);
  await parts.mounts.unmountAll(parts.layers.records.map((l) => l.id));
  const busy = await mountsUnder([layout.graphroot, layout.runroot]);
  if (busy.length > 0) {
    throw new CarrierError('CARRIER_IN_USE', `cannot reset the store: still mounted under it: ${busy.join(', ')}`);
  }
  const keep = new Set([...Object.values(layout.locks), layout.usernsLock]);
  await emptyExcept(layout.graphroot, keep);
  await emptyExcept(layout.runroot, keep);
  for (const file of [parts.layers.file, parts.images.file, parts.containers.file]) {
    file.records = [];
    await file.save();
  }
  await parts.mounts.clear();
  await prepareLayout(layout);
  await parts.layers.driver.init();
}

/** Refuses directories whose contents must never be emptied wholesale, whatever the configuration says. */
function checkResettable(dir: string): void {
  const abs = resolve(dir);
  const forbidden = new Set(['/', resolve(homedir()), '/home', '/root', '/tmp', '/var', '/var/lib', '/usr', '/etc', '/run']);
  if (forbidden.has(abs)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `refusing to empty ${abs}: it is not a store directory`, { path: abs });
  }
}

/** Removes everything in `dir` except the paths in `keep` (and the directories leading to them). */
async function emptyExcept(dir: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    if (keep.has(p)) continue;
    if ([...keep].some((k) => k.startsWith(p + sep))) await emptyExcept(p, keep);
    else await removeTree(p);
  }
}

/** Mount points strictly below any of `dirs` in this process's mount namespace. */
async function mountsUnder(dirs: string[]): Promise<string[]> {
  const roots = await Promise.all(dirs.map(async (d) => (await realpath(d).catch(() => resolve(d))) + sep));
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const target = line.split(' ')[4];
    if (target === undefined) continue;
    const path = target.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (roots.some((r) => path.startsWith(r))) out.push(path);
  }
  return out;
}

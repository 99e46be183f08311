// Named volumes, where podman keeps them: `<graphroot>/volumes/<name>/_data` holds the content. podman records its
// volumes in its own database; Carrier records a volume in `<graphroot>/volumes/<name>/carrier-volume.json` and
// treats any `<name>/_data` directory (podman's too) as a volume. Volumes outlive the containers that use them.
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CarrierError } from '../errors.js';
import { writeFileAtomic } from '../store/atomic.js';
import { StoreLock } from '../store/lock.js';
import type { Store } from '../store/store.js';
import { randomId } from '../store/ids.js';
import { makeDirs } from '../fs/batch.js';

export interface VolumeInfo {
  name: string;
  driver: 'local';
  /** The host directory mounted into containers. */
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  /** True when the volume was made implicitly for a container (`-v /dst`). */
  anonymous: boolean;
  /** Who made it: 'carrier', or 'external' for a `_data` directory without Carrier's record (podman's). */
  origin: 'carrier' | 'external';
}

interface VolumeRecord {
  name: string;
  createdAt: string;
  labels?: Record<string, string>;
  anonymous?: boolean;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const RECORD = 'carrier-volume.json';

export function isVolumeName(s: string): boolean {
  return NAME.test(s) && s.length <= 255;
}

export function volumesDir(store: Store): string {
  return join(store.graphroot, 'volumes');
}

async function withVolumeLock<T>(store: Store, fn: () => Promise<T>): Promise<T> {
  const dir = volumesDir(store);
  await makeDirs(dir, 0o700);
  const lock = await StoreLock.open(join(dir, 'volumes.lock'));
  try {
    return await lock.with(true, fn);
  } finally {
    await lock.close();
  }
}

async function readVolume(store: Store, name: string): Promise<VolumeInfo | undefined> {
  const dir = join(volumesDir(store), name);
  try {
    if (!(await stat(join(dir, '_data'))).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  let rec: VolumeRecord | undefined;
  try {
    rec = JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as VolumeRecord;
  } catch {
    rec = undefined;
  }
  const created = rec?.createdAt ?? (await stat(join(dir, '_data'))).birthtime.toISOString();
  return {
    name,
    driver: 'local',
    mountpoint: join(dir, '_data'),
    createdAt: created,
    labels: rec?.labels ?? {},
    anonymous: rec?.anonymous === true,
    origin: rec ? 'carrier' : 'external',
  };
}

export interface CreateVolumeOptions {
  labels?: Record<string, string>;
  /** Return the existing volume instead of failing when the name is taken. */
  ignoreExisting?: boolean;
  anonymous?: boolean;
}

/** Creates a named volume (a random 64-hex name when `name` is undefined, as podman names anonymous volumes). */
export async function createVolume(store: Store, name?: string, options: CreateVolumeOptions = {}): Promise<VolumeInfo> {
  const volName = name ?? randomId();
  if (!isVolumeName(volName)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `volume name "${volName}" is not valid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
  return withVolumeLock(store, async () => {
    const existing = await readVolume(store, volName);
    if (existing) {
      if (options.ignoreExisting) return existing;
      throw new CarrierError('CARRIER_EXISTS', `volume with name ${volName} already exists: volume already exists`);
    }
    const dir = join(volumesDir(store), volName);
    await makeDirs(dir, 0o700);
    await mkdir(join(dir, '_data'), { mode: 0o755 });
    const rec: VolumeRecord = { name: volName, createdAt: new Date().toISOString() };
    if (options.labels && Object.keys(options.labels).length > 0) rec.labels = options.labels;
    if (options.anonymous) rec.anonymous = true;
    await writeFileAtomic(join(dir, RECORD), JSON.stringify(rec), 0o600);
    return (await readVolume(store, volName))!;
  });
}

export async function listVolumes(store: Store): Promise<VolumeInfo[]> {
  let names: string[];
  try {
    names = await readdir(volumesDir(store));
  } catch {
    return [];
  }
  const out: VolumeInfo[] = [];
  for (const n of names.sort()) {
    if (!isVolumeName(n)) continue;
    const v = await readVolume(store, n);
    if (v) out.push(v);
  }
  return out;
}

export async function inspectVolume(store: Store, name: string): Promise<VolumeInfo> {
  const v = isVolumeName(name) ? await readVolume(store, name) : undefined;
  if (!v) throw new CarrierError('CARRIER_NOT_FOUND', `no such volume ${name}`);
  return v;
}

/** Removes a volume's directory and record (the caller has checked no container uses it). */
export async function deleteVolumeFiles(store: Store, name: string): Promise<void> {
  if (!isVolumeName(name)) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid volume name ${name}`);
  await withVolumeLock(store, async () => {
    await rm(join(volumesDir(store), name), { recursive: true, force: true });
  });
}

// Carrier's own files for a container: carrier.json (run configuration and state) in the store's userdata
// directory, written atomically, and the runtime's state directory per store.
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { writeFileAtomic } from '../store/atomic.js';
import { readText } from '../fs/read-text.js';
import type { CarrierFile, ContainerState } from './types.js';

export function userdataDir(store: Store, id: string): string {
  return store.containerDataDir(id);
}

export function runDir(store: Store, id: string): string {
  return store.containerDataDir(id, 'run');
}

/** The OCI runtime's state directory for this store (`--root`): containers of different stores never collide. */
export function runtimeStateRoot(store: Store, runtime: string): string {
  return join(store.runroot, `carrier-${runtime}`);
}

export async function readCarrierFile(store: Store, id: string): Promise<CarrierFile | undefined> {
  const text = await readText(carrierFilePath(store, id)).catch(() => undefined);
  return text === undefined ? undefined : parseCarrierFile(text);
}

/** Where a container's carrier.json is. */
export function carrierFilePath(store: Store, id: string): string {
  return join(userdataDir(store, id), 'carrier.json');
}

/** carrier.json's text as a CarrierFile; undefined when it is not one (another version, no config, not JSON). */
export function parseCarrierFile(text: string): CarrierFile | undefined {
  try {
    const f = JSON.parse(text) as CarrierFile;
    return f && f.version === 1 && f.config ? f : undefined;
  } catch {
    return undefined;
  }
}

export async function writeCarrierFile(store: Store, id: string, f: CarrierFile): Promise<void> {
  const { name, data } = carrierFileData(f);
  await writeFileAtomic(join(userdataDir(store, id), name), data, 0o600);
}

/** carrier.json as a file of the container's userdata directory (what the store writes when it makes the container). */
export function carrierFileData(f: CarrierFile): { name: string; data: string } {
  return { name: 'carrier.json', data: JSON.stringify(f, null, 2) };
}

export async function updateState(store: Store, id: string, change: (s: ContainerState) => ContainerState): Promise<void> {
  const f = await readCarrierFile(store, id);
  if (!f) return;
  f.state = change(f.state);
  await writeCarrierFile(store, id, f);
}

// Opening the store the global options name, for every command that works on one.
import { Store } from '../index.js';
import type { GlobalOptions } from './errors.js';

/**
 * Opens the store the global options name. Inside `carrier unshare` (where the uid is 0 and defaults would differ from
 * the user's) CARRIER_GRAPHROOT / CARRIER_RUNROOT, which it sets, name the user's store unless --root / --runroot do.
 */
export async function openStore(g: GlobalOptions): Promise<Store> {
  const root = g.root ?? (process.env.CARRIER_GRAPHROOT || undefined);
  const runroot = g.runroot ?? (process.env.CARRIER_RUNROOT || undefined);
  const store = await Store.open({
    ...(root !== undefined ? { root } : {}),
    ...(runroot !== undefined ? { runroot } : {}),
    ...(g.driver !== undefined ? { driver: g.driver } : {}),
    ...(g.blobCache !== undefined ? { blobCache: g.blobCache } : {}),
  });
  for (const w of store.warnings) process.stderr.write(`WARN[0000] ${w}\n`);
  return store;
}

export async function withStore<T>(g: GlobalOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(g);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

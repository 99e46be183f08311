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

/** Stores commands are done with: left open for the process's exit to close (see withStore), and kept referenced. */
const finished: Store[] = [];

/**
 * Runs `fn` on the store the global options name. When it succeeds the store is not closed: every operation has
 * released its locks and settled its writes by then, so the process's exit closes the lock files as well as
 * `close()` would, and closing them first cost every command a thread-pool round trip per file before it could exit
 * (~1 ms). The store stays referenced, so no garbage collection closes a handle meanwhile (a long `run`). A failure
 * closes it before it is thrown, as anything may be left in flight then.
 */
export async function withStore<T>(g: GlobalOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(g);
  let result: T;
  try {
    result = await fn(store);
  } catch (err) {
    await store.close();
    throw err;
  }
  finished.push(store);
  return result;
}

// Which stores use a blob cache. A store's own cache (the default) is used by that store alone: its owner follows
// from the cache's path, by the same rule that placed it there (config.ts):
//
//   <graphroot>/carrier-blob-cache      belongs to <graphroot>
//   <data>/carrier/cache/blobs          belongs to the default store, <data>/carrier/storage
//
// A cache named with `--blob-cache` / CARRIER_BLOB_CACHE / Store.open({ blobCache }) may be shared, so every store that
// names one records itself in it (opening the store writes nothing into the store itself):
//
//   <cache>/stores/root-<first 32 hex of sha256(graphroot)>    holds the graphroot's path (not a blob's name)
//
// Pruning consults both (gc.ts): while another store whose graphroot still exists uses the cache, no store deletes a
// blob as unreferenced, because it cannot see the other stores' images; only the size cap and dead writers' temp
// files remove anything then. A record whose graphroot is gone is forgotten.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { makeDirs } from '../fs/batch.js';

const USERS_DIR = 'stores';

function recordName(graphroot: string): string {
  return `root-${createHash('sha256').update(resolve(graphroot)).digest('hex').slice(0, 32)}`;
}

/** Records `graphroot` as a user of `cacheDir` (creating it); nothing is written when the record is there. */
export async function registerCacheUser(cacheDir: string, graphroot: string): Promise<void> {
  const dir = join(cacheDir, USERS_DIR);
  const file = join(dir, recordName(graphroot));
  if (await stat(file).then(() => true, () => false)) return;
  await makeDirs(dir, 0o700);
  await writeFile(file, `${resolve(graphroot)}\n`, { mode: 0o600 });
}

/** The store whose own default cache `cacheDir` is, by its path (see the file comment); undefined for any other. */
export function cacheOwner(cacheDir: string): string | undefined {
  const c = resolve(cacheDir);
  if (basename(c) === 'carrier-blob-cache') return dirname(c);
  const cache = dirname(c);
  if (basename(c) === 'blobs' && basename(cache) === 'cache' && basename(dirname(cache)) === 'carrier') return join(dirname(cache), 'storage');
  return undefined;
}

/**
 * The graph roots other than `graphroot` that use `cacheDir` and still exist: the cache's owner by its path, and the
 * stores recorded in it. Records of stores that are gone are removed (unless `forget` is false); a graphroot this
 * process cannot stat counts as alive.
 */
export async function otherCacheUsers(cacheDir: string, graphroot: string, forget = true): Promise<string[]> {
  const dir = join(cacheDir, USERS_DIR);
  const self = recordName(graphroot);
  const others: string[] = [];
  const owner = cacheOwner(cacheDir);
  if (owner !== undefined && owner !== resolve(graphroot) && (await stat(owner).then(() => true, () => false))) others.push(owner);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name === self) continue;
    const file = join(dir, name);
    const root = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (root === '') continue;
    const gone = await stat(root).then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT' || err.code === 'ENOTDIR',
    );
    if (gone) {
      if (forget) await unlink(file).catch(() => {});
    } else if (!others.includes(root)) {
      others.push(root);
    }
  }
  return others.sort();
}

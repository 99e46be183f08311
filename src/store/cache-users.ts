// Which stores use a blob cache. A store's own cache (the default) is used by that store alone; a cache named with
// `--blob-cache` / CARRIER_BLOB_CACHE / Store.open({ blobCache }) may be shared, so every store that names one
// records itself in it:
//
//   <cache>/stores/root-<first 32 hex of sha256(graphroot)>    holds the graphroot's path (not a blob's name)
//
// Pruning consults the record (gc.ts): while another store whose graphroot still exists uses the cache, no store
// deletes a blob as unreferenced, because it cannot see the other stores' images; only the size cap and dead
// writers' temp files remove anything then. A record whose graphroot is gone is forgotten.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const USERS_DIR = 'stores';

function recordName(graphroot: string): string {
  return `root-${createHash('sha256').update(resolve(graphroot)).digest('hex').slice(0, 32)}`;
}

/**
 * Records `graphroot` as a user of `cacheDir`; nothing is written when the record is there, nor when the cache
 * directory does not exist and `create` is false.
 */
export async function registerCacheUser(cacheDir: string, graphroot: string, create: boolean): Promise<void> {
  const dir = join(cacheDir, USERS_DIR);
  const file = join(dir, recordName(graphroot));
  if (await stat(file).then(() => true, () => false)) return;
  if (create) await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  else if (!(await stat(cacheDir).then((st) => st.isDirectory(), () => false))) return;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(file, `${resolve(graphroot)}\n`, { mode: 0o600 });
}

/**
 * The graph roots other than `graphroot` recorded as users of `cacheDir` whose directory still exists. Records of
 * stores that are gone are removed (unless `forget` is false); a graphroot this process cannot stat counts as alive.
 */
export async function otherCacheUsers(cacheDir: string, graphroot: string, forget = true): Promise<string[]> {
  const dir = join(cacheDir, USERS_DIR);
  const self = recordName(graphroot);
  const others: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name === self) continue;
    const file = join(dir, name);
    const root = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (root === '') continue;
    const gone = await stat(root).then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT' || err.code === 'ENOTDIR',
    );
    if (!gone) others.push(root);
    else if (forget) await unlink(file).catch(() => {});
  }
  return others.sort();
}

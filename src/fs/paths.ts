// Small file-system lookups shared by the store, the drivers and the runtime (all off the event loop).
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH, then in the sbin directories (runc lives in /usr/sbin on Debian). */
export async function findOnPath(name: string, pathEnv = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): Promise<string | undefined> {
  const dirs = [...pathEnv.split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

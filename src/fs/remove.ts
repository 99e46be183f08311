// Removing a layer tree. Layers hold read-only directories (a diff/ of 0555, dirs without owner write bit from
// the image), which an unprivileged owner cannot empty without first granting itself write permission.
import { rm, chmod, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { native } from '../native.js';

/**
 * rm -rf `dir`: by one native job (a thread-pool round trip, where fs.rm took one per call of its walk: a container's
 * layer and directories cost `carrier rm` a dozen in turn), which grants the owner the rights it needs on the way. If
 * that fails for any reason (a mount inside, a tree deeper than the descriptor limit, an error) the path-by-path
 * removal below (fs.rm, as before) finishes the job and reports what stops it.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await native.removeTree(dir);
    return;
  } catch {
    // below
  }
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
  }
  await grantWrite(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 2 });
}

async function grantWrite(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  if ((st.mode & 0o700) !== 0o700) await chmod(dir, (st.mode & 0o7777) | 0o700).catch(() => {});
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await grantWrite(join(dir, e.name));
}

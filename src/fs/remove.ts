// Removing a layer tree. Layers hold read-only directories (a diff/ of 0555, dirs without owner write bit from
// the image), which an unprivileged owner cannot empty without first granting itself write permission.
import { rm, chmod, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';

export async function removeTree(dir: string): Promise<void> {
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

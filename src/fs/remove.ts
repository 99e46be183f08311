// Removing a layer tree. Layers hold read-only directories (a diff/ of 0555, dirs without owner write bit from
// the image), which an unprivileged owner cannot empty without first granting itself write permission. One native
// pool job does the whole walk (native/store_ops.cc): fs.rm took a thread-pool round trip for each entry's lstat,
// unlink or rmdir, and each directory's read — about half of `rm`'s round trips (issue 21).
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fromNative, type NativeFailure } from '../errors.js';
import { native } from '../native.js';

/**
 * The limits of the native walk, which holds a descriptor per level and stops at 1024 levels: a deeper tree (a
 * hostile layer's) is removed path by path instead.
 */
const TOO_DEEP = new Set(['ELOOP', 'EMFILE', 'ENFILE', 'ENAMETOOLONG']);

/**
 * `rm -rf dir`: links are not followed, a missing path is no failure. Nor are mounts entered: a mount point inside the
 * tree (a container's overlay left mounted, a bind mount), or the tree itself one, fails the removal with EBUSY and
 * keeps what is mounted (native/store_ops.cc). The path-by-path removal of a tree deeper than the native walk goes
 * is fs.rm's, which does not check.
 */
export async function removeTree(dir: string): Promise<void> {
  const failure = await native.removeTree(resolve(dir)).then(
    () => undefined,
    (f: unknown) => fromNative(f as NativeFailure),
  );
  if (failure === undefined) return;
  if (!TOO_DEEP.has(failure.code)) throw failure;
  await removePathByPath(dir);
}

async function removePathByPath(dir: string): Promise<void> {
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

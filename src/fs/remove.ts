// Removing a layer tree. Layers hold read-only directories (a diff/ of 0555, dirs without owner write bit from
// the image), which an unprivileged owner cannot empty without first granting itself write permission. One native
// pool job does the whole walk (native/store_ops.cc): fs.rm took a thread-pool round trip for each entry's lstat,
// unlink or rmdir, and each directory's read — about half of `rm`'s round trips (issue 21).
import { resolve } from 'node:path';
import { fromNative, type NativeFailure } from '../errors.js';
import { native } from '../native.js';

/** `rm -rf dir`: links are not followed, a missing path is no failure. */
export async function removeTree(dir: string): Promise<void> {
  await native.removeTree(resolve(dir)).catch((f: unknown) => {
    throw fromNative(f as NativeFailure);
  });
}

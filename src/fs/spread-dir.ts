// A directory for a tree written all at once (a layer's diff/), placed by ext4 in a block group of its own choosing
// rather than beside its parent: see makeSpreadDir in native/store_ops.cc. ext4 without a journal skips every
// recently deleted inode of a group on each allocation, scanning from the group's start, so a layer extracted into the
// group the previous copy of it was just removed from (a store on a disk that has seen deletes: `rmi` then `pull`)
// paid seconds of system time; a group picked by a random name almost never holds those. Elsewhere (XFS, btrfs,
// tmpfs, journaled ext4 alike) it is a plain mkdir.
import { native } from '../native.js';
import { fromNative, type NativeFailure } from '../errors.js';

/**
 * The name prefix of a directory makeSpreadDir has made but not yet renamed into place; one is left behind only by a
 * crash between the two steps, for the owner of `parent` to sweep.
 */
export const SPREAD_PREFIX = '.spread-';

/** mkdir `parent`/`name` (`mode`, less the umask); fails with EEXIST when it exists. */
export async function makeSpreadDir(parent: string, name: string, mode: number): Promise<void> {
  await native.makeSpreadDir(parent, name, mode).catch((f: unknown) => {
    throw fromNative({ ...(f as NativeFailure), path: `${parent}/${name}` });
  });
}

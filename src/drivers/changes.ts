// What a layer changed, as containers/storage's Changes lists it (`podman diff`), and the metadata test both the
// listing and vfs's naive diff use to decide that an entry present on both sides changed.
import type { BigIntStats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  /** A: added, C: changed, D: deleted. */
  kind: ChangeKind;
  /** Absolute path inside the container's file system (`/etc/hosts`); a name that is not UTF-8 is decoded lossily. */
  path: string;
}

export const CAPABILITY = 'security.capability';
export const SLASH = Buffer.from('/');

/** `root` + `/a/b`. */
export const under = (root: Buffer, path: Buffer): Buffer => Buffer.concat([root, path]);

/**
 * containers/storage's time test: equal, or equal seconds where one side has no nanoseconds (a filesystem or tar
 * that keeps seconds only). With `roundedUp`, also a side without nanoseconds one second later than the other.
 */
export function sameTime(a: BigIntStats, b: BigIntStats, roundedUp = false): boolean {
  const as = a.mtimeNs / 1_000_000_000n;
  const bs = b.mtimeNs / 1_000_000_000n;
  const an = a.mtimeNs % 1_000_000_000n;
  const bn = b.mtimeNs % 1_000_000_000n;
  if (as === bs && an === bn) return true;
  if (an !== 0n && bn !== 0n) return false;
  if (as === bs) return true;
  return roundedUp && ((bn === 0n && as === bs - 1n) || (an === 0n && as - 1n === bs));
}

/**
 * containers/storage's test that an entry on both sides changed: its type, mode, owner, device number or file
 * capability differ, or — not for directories, whose size and mtime change with their entries — its size or mtime.
 * `roundedUp` as for {@link sameTime}.
 */
export function metadataDiffers(now: BigIntStats, before: BigIntStats, nowCap: Buffer | undefined, beforeCap: Buffer | undefined, roundedUp = false): boolean {
  if (now.mode !== before.mode || now.uid !== before.uid || now.gid !== before.gid || now.rdev !== before.rdev) return true;
  if (!now.isDirectory() && (now.size !== before.size || !sameTime(now, before, roundedUp))) return true;
  return nowCap === undefined || beforeCap === undefined ? nowCap !== beforeCap : !nowCap.equals(beforeCap);
}

/** The names in directory `dir`, unsorted; none when it is missing or not a directory. */
export async function namesIn(dir: Buffer): Promise<Buffer[]> {
  return readdir(dir, { encoding: 'buffer' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [] as Buffer[];
    throw err;
  });
}

/** stat (following links) or lstat with bigint fields; none when the path or a directory above it is missing. */
export async function statOrUndefined(p: Buffer, follow: boolean): Promise<BigIntStats | undefined> {
  try {
    return follow ? await stat(p, { bigint: true }) : await lstat(p, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

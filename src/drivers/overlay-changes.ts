// overlay's change listing, as containers/storage's overlay driver makes it: walk the layer's own directory in name
// order and ask the lower layers what each entry was (added, changed, or deleted by a whiteout or an opaque
// directory), naming the parent directories of additions and deletions before them.
import type { BigIntStats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { SLASH, sameTime, statOrUndefined, under, type Change, type ChangeKind } from './changes.js';
import { readTreeXattrs, xattrKey } from './xattrs.js';

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];

const isWhiteout = (st: BigIntStats | undefined): boolean => st !== undefined && st.isCharacterDevice() && st.rdev === 0n;

/** `/a/b/c` → `/a/b`, `/a` → `/`. */
function dirOf(path: Buffer): Buffer {
  const at = path.lastIndexOf(0x2f);
  return at <= 0 ? SLASH : path.subarray(0, at);
}

/** A whiteout for `path`, or for a directory above it, in `layer`. */
async function whitedOut(layer: Buffer, path: Buffer): Promise<boolean> {
  for (let p = path; p.length > 1; p = dirOf(p)) {
    if (isWhiteout(await statOrUndefined(under(layer, p), true))) return true;
  }
  return false;
}

/**
 * The changes of overlay layer `upper` (its diff/) against its lower layers (nearest first), in podman diff's order.
 */
export async function overlayChanges(upper: Buffer, lowers: Buffer[]): Promise<Change[]> {
  const xattrs = await readTreeXattrs(upper.toString());
  const changes: Change[] = [];
  const changedDirs = new Set<string>();

  /** An opaque directory that hides one of a lower layer's: a deletion (what it held is gone). */
  const opaqueOverLower = async (path: Buffer): Promise<boolean> => {
    const own = xattrs.get(xattrKey(path.subarray(1)));
    if (!OPAQUE_XATTRS.some((n) => own?.get(n)?.toString('latin1') === 'y')) return false;
    for (const layer of lowers) {
      const st = await statOrUndefined(under(layer, path), true);
      if (st) return !isWhiteout(st);
      for (let dir = dirOf(path); dir.length > 1; dir = dirOf(dir)) {
        if (isWhiteout(await statOrUndefined(under(layer, dir), true))) return false;
      }
    }
    return false;
  };

  /** What happened to `path` (lstat'ed in the upper layer as `st`); undefined for a directory that did not change. */
  const classify = async (path: Buffer, st: BigIntStats): Promise<ChangeKind | undefined> => {
    if (isWhiteout(st) || (st.isDirectory() && (await opaqueOverLower(path)))) return 'D';
    for (const layer of lowers) {
      if (await whitedOut(layer, path)) return 'A';
      const below = await statOrUndefined(under(layer, path), true);
      if (!below) continue;
      if (below.isDirectory() && st.isDirectory() && below.size === st.size && below.mode === st.mode && sameTime(st, below, true)) {
        return undefined;
      }
      return 'C';
    }
    return 'A';
  };

  const visit = async (dir: Buffer): Promise<void> => {
    const names = (await readdir(under(upper, dir), { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      const path = dir.length === 1 ? Buffer.concat([SLASH, name]) : Buffer.concat([dir, SLASH, name]);
      const st = await statOrUndefined(under(upper, path), false);
      if (!st) continue;
      const kind = await classify(path, st);
      if (kind !== undefined) {
        const key = path.toString('latin1');
        if (st.isDirectory()) changedDirs.add(key);
        if (kind !== 'C') {
          // The directories above an addition or a deletion are listed as changed, outermost first, once.
          const above: Change[] = [];
          for (let p = dirOf(path); p.length > 1; p = dirOf(p)) {
            const k = p.toString('latin1');
            if (changedDirs.has(k)) continue;
            changedDirs.add(k);
            above.unshift({ kind: 'C', path: p.toString() });
          }
          changes.push(...above);
        }
        changes.push({ kind, path: path.toString() });
      }
      if (st.isDirectory()) await visit(path);
    }
  };
  await visit(SLASH);
  return changes;
}

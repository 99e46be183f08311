// `diff`: what a container changed against its image, or an image's top layer against its parent, listed as podman
// diff lists it (containers/storage's Changes). Overlay walks the layer's own directory in name order and asks the
// lower layers what each entry was (added, changed, or deleted by a whiteout or an opaque directory), naming the
// parent directories of additions and deletions before them; vfs compares the layer's whole tree with its parent's.
import type { BigIntStats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { layerChain } from '../checkout/checkout.js';
import { readTreeXattrs, xattrKey, type TreeXattrs } from '../drivers/xattrs.js';
import { CarrierError } from '../errors.js';
import type { Store } from '../store/store.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  /** A: added, C: changed, D: deleted. */
  kind: ChangeKind;
  /** Absolute path inside the container's file system (`/etc/hosts`); a name that is not UTF-8 is decoded lossily. */
  path: string;
}

export interface DiffOptions {
  /** What `query` may name: podman's `diff` tries an image first, then a container (default `all`). */
  type?: 'all' | 'container' | 'image';
}

export interface DiffResult {
  /** The id of the container or image the query named. */
  id: string;
  type: 'container' | 'image';
  /** In podman's order: overlay's walk order, each added or deleted path after the directories above it. */
  changes: Change[];
}

/** Paths podman leaves out of a diff: the files and mount points it manages in every container. */
const MANAGED = new Set([
  '/dev',
  '/etc/hostname',
  '/etc/hosts',
  '/etc/resolv.conf',
  '/proc',
  '/run',
  '/run/notify',
  '/run/.containerenv',
  '/run/secrets',
  '/run/podman-init',
  '/sys',
  '/etc/mtab',
]);

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];
const CAPABILITY = 'security.capability';
const SLASH = Buffer.from('/');

/**
 * The changes of a container's read-write layer against its image, or of an image's top layer against its parent,
 * as `podman diff` lists them.
 */
export async function diff(store: Store, query: string, options: DiffOptions = {}): Promise<DiffResult> {
  const type = options.type ?? 'all';
  let target: { id: string; type: 'container' | 'image'; layer: string | undefined } | undefined;
  if (type !== 'container') {
    const image = await store.image(query);
    if (image) target = { id: image.id, type: 'image', layer: image.topLayer };
  }
  if (!target && type !== 'image') {
    const container = await store.container(query);
    if (container) target = { id: container.id, type: 'container', layer: container.layer };
  }
  if (!target) {
    const what = type === 'all' ? 'image or container' : type;
    throw new CarrierError('CARRIER_NOT_FOUND', `${what} not known: ${query}`);
  }
  if (target.layer === undefined) return { id: target.id, type: target.type, changes: [] };
  const chain = await layerChain(store, target.layer);
  const top = Buffer.from(chain[chain.length - 1]!.path);
  const lowers = chain.slice(0, -1).reverse().map((l) => Buffer.from(l.path));
  const all = store.driverName === 'overlay' ? await overlayChanges(top, lowers) : await treeChanges(top, lowers[0]);
  return { id: target.id, type: target.type, changes: all.filter((c) => !MANAGED.has(c.path)) };
}

// ---- overlay: the layer's own directory against the layers below it ------------------------------------------

async function statOrUndefined(p: Buffer, follow: boolean): Promise<BigIntStats | undefined> {
  try {
    return follow ? await stat(p, { bigint: true }) : await lstat(p, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

const isWhiteout = (st: BigIntStats | undefined): boolean => st !== undefined && st.isCharacterDevice() && st.rdev === 0n;

const under = (root: Buffer, path: Buffer): Buffer => Buffer.concat([root, path]);

/** `/a/b/c` → `/a/b`, `/a` → `/`. */
function dirOf(path: Buffer): Buffer {
  const at = path.lastIndexOf(0x2f);
  return at <= 0 ? SLASH : path.subarray(0, at);
}

/** containers/storage's time test: equal, or equal seconds where one side has no nanoseconds (or rounded up one). */
function sameTime(a: BigIntStats, b: BigIntStats): boolean {
  const as = a.mtimeNs / 1_000_000_000n;
  const bs = b.mtimeNs / 1_000_000_000n;
  const an = a.mtimeNs % 1_000_000_000n;
  const bn = b.mtimeNs % 1_000_000_000n;
  if (as === bs && an === bn) return true;
  if (an !== 0n && bn !== 0n) return false;
  if (as === bs) return true;
  return (bn === 0n && as === bs - 1n) || (an === 0n && as - 1n === bs);
}

/** A whiteout for `path`, or for a directory above it, in `layer`. */
async function whitedOut(layer: Buffer, path: Buffer): Promise<boolean> {
  for (let p = path; p.length > 1; p = dirOf(p)) {
    if (isWhiteout(await statOrUndefined(under(layer, p), true))) return true;
  }
  return false;
}

async function overlayChanges(upper: Buffer, lowers: Buffer[]): Promise<Change[]> {
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
      if (below.isDirectory() && st.isDirectory() && below.size === st.size && below.mode === st.mode && sameTime(st, below)) {
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

// ---- vfs: the layer's whole tree against its parent's --------------------------------------------------------

interface Trees {
  layer: Buffer;
  parent: Buffer | undefined;
  layerXattrs: TreeXattrs;
  parentXattrs: TreeXattrs;
}

async function names(dir: Buffer): Promise<Buffer[]> {
  return (
    await readdir(dir, { encoding: 'buffer' }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [] as Buffer[];
      throw err;
    })
  ).sort(Buffer.compare);
}

/** containers/storage's test; a directory's size and mtime say nothing (they change with its entries). */
function differs(now: BigIntStats, before: BigIntStats, nowCap: Buffer | undefined, beforeCap: Buffer | undefined): boolean {
  if (now.mode !== before.mode || now.uid !== before.uid || now.gid !== before.gid || now.rdev !== before.rdev) return true;
  if (!before.isDirectory() && (now.size !== before.size || !sameTime(now, before))) return true;
  return nowCap === undefined || beforeCap === undefined ? nowCap !== beforeCap : !nowCap.equals(beforeCap);
}

async function treeChanges(layer: Buffer, parent: Buffer | undefined): Promise<Change[]> {
  const t: Trees = {
    layer,
    parent,
    layerXattrs: await readTreeXattrs(layer.toString()),
    parentXattrs: parent === undefined ? new Map() : await readTreeXattrs(parent.toString()),
  };
  const changes: Change[] = [];
  await compare(t, SLASH, true, undefined, changes, true);
  return changes;
}

/**
 * containers/storage's addChanges for the entry `path`: `before` is its lstat in the parent tree (none: added).
 * Children in name order (containers/storage takes them in Go map order, which is unspecified), then deletions;
 * a directory that did not change itself is listed before changes inside it.
 */
async function compare(t: Trees, path: Buffer, isDir: boolean, before: BigIntStats | undefined, out: Change[], root = false, added = false): Promise<void> {
  const mark = out.length;
  if (!root && before === undefined) {
    out.push({ kind: 'A', path: path.toString() });
    added = true;
  }
  const rel = (p: Buffer): Buffer => (p.length === 1 ? Buffer.alloc(0) : p.subarray(1));
  const inLayer = isDir ? await names(under(t.layer, root ? Buffer.alloc(0) : path)) : [];
  const inParent = isDir && (before !== undefined || root) && t.parent ? await names(under(t.parent, root ? Buffer.alloc(0) : path)) : [];
  const gone = new Map(inParent.map((n) => [n.toString('latin1'), n]));
  for (const name of inLayer) {
    const child = root ? Buffer.concat([SLASH, name]) : Buffer.concat([path, SLASH, name]);
    const now = await statOrUndefined(under(t.layer, child), false);
    if (!now) continue;
    const key = name.toString('latin1');
    const old = gone.has(key) && t.parent ? await statOrUndefined(under(t.parent, child), false) : undefined;
    gone.delete(key);
    let childAdded = false;
    if (old && differs(now, old, t.layerXattrs.get(xattrKey(rel(child)))?.get(CAPABILITY), t.parentXattrs.get(xattrKey(rel(child)))?.get(CAPABILITY))) {
      out.push({ kind: 'C', path: child.toString() });
      childAdded = true;
    }
    await compare(t, child, now.isDirectory(), old, out, false, childAdded);
  }
  for (const name of gone.values()) out.push({ kind: 'D', path: (root ? Buffer.concat([SLASH, name]) : Buffer.concat([path, SLASH, name])).toString() });
  if (out.length > mark && isDir && !added && !root) out.splice(mark, 0, { kind: 'C', path: path.toString() });
}

// vfs's change listing: a layer directory holds the whole tree, so its changes are found by comparing it with its
// parent's tree, in the order containers/storage's Changes lists them.
import type { BigIntStats } from 'node:fs';
import { CAPABILITY, SLASH, metadataDiffers, namesIn, statOrUndefined, under, type Change } from './changes.js';
import { readTreeXattrs, xattrKey, type TreeXattrs } from './xattrs.js';

interface Trees {
  layer: Buffer;
  parent: Buffer | undefined;
  layerXattrs: TreeXattrs;
  parentXattrs: TreeXattrs;
}

/** The changes of tree `layer` against tree `parent` (none: everything is added), in podman diff's order. */
export async function treeChanges(layer: Buffer, parent: Buffer | undefined): Promise<Change[]> {
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
  const inLayer = isDir ? await sortedNames(under(t.layer, root ? Buffer.alloc(0) : path)) : [];
  const inParent = isDir && (before !== undefined || root) && t.parent ? await sortedNames(under(t.parent, root ? Buffer.alloc(0) : path)) : [];
  const gone = new Map(inParent.map((n) => [n.toString('latin1'), n]));
  for (const name of inLayer) {
    const child = root ? Buffer.concat([SLASH, name]) : Buffer.concat([path, SLASH, name]);
    const now = await statOrUndefined(under(t.layer, child), false);
    if (!now) continue;
    const key = name.toString('latin1');
    const old = gone.has(key) && t.parent ? await statOrUndefined(under(t.parent, child), false) : undefined;
    gone.delete(key);
    let childAdded = false;
    if (old && metadataDiffers(now, old, t.layerXattrs.get(xattrKey(rel(child)))?.get(CAPABILITY), t.parentXattrs.get(xattrKey(rel(child)))?.get(CAPABILITY), true)) {
      out.push({ kind: 'C', path: child.toString() });
      childAdded = true;
    }
    await compare(t, child, now.isDirectory(), old, out, false, childAdded);
  }
  for (const name of gone.values()) out.push({ kind: 'D', path: (root ? Buffer.concat([SLASH, name]) : Buffer.concat([path, SLASH, name])).toString() });
  if (out.length > mark && isDir && !added && !root) out.splice(mark, 0, { kind: 'C', path: path.toString() });
}

async function sortedNames(dir: Buffer): Promise<Buffer[]> {
  return (await namesIn(dir)).sort(Buffer.compare);
}

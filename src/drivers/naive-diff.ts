// vfs's diff, as containers/storage's naive diff driver makes it: a layer directory holds the whole tree, so its
// changes are found by comparing it with its parent's tree. An entry only in the layer is added (with everything
// below it); one only in the parent is deleted (a `.wh.NAME` entry); one in both is changed when its type, mode,
// owner, device number or file capability differ, or — not for directories — its size or mtime. A directory that
// did not change itself is still archived before changes inside it, so they keep their parent's metadata.
import { Readable } from 'node:stream';
import { END_OF_ARCHIVE } from '../save/tar.js';
import { CAPABILITY, metadataDiffers, namesIn } from './changes.js';
import { DiffTarWriter, joinRel, lstatOrUndefined } from './diff-tar.js';
import { readTreeXattrs, xattrKey, type TreeXattrs } from './xattrs.js';

type Change = { rel: Buffer; kind: 'add' | 'modify' } | { rel: Buffer; kind: 'delete'; dir: Buffer | undefined; name: Buffer };

/** The changes of tree `layer` against tree `parent` (none: everything is added) as an uncompressed layer tar. */
export function naiveDiffStream(layer: string, parent: string | undefined): Readable {
  return Readable.from(naiveDiffChunks(layer, parent), { objectMode: false });
}

async function* naiveDiffChunks(layer: string, parent: string | undefined): AsyncGenerator<Buffer> {
  const trees = {
    layer: Buffer.from(layer),
    parent: parent === undefined ? undefined : Buffer.from(parent),
    layerXattrs: await readTreeXattrs(layer),
    parentXattrs: parent === undefined ? new Map() : await readTreeXattrs(parent),
  };
  const changes: Change[] = [];
  await compareDir(trees, undefined, changes);
  const writer = new DiffTarWriter();
  const now = Math.floor(Date.now() / 1000);
  for (const c of changes) {
    if (c.kind === 'delete') {
      yield writer.whiteout(c.dir, c.name, { mtime: now });
      continue;
    }
    const full = joinRel(trees.layer, c.rel);
    const st = await lstatOrUndefined(full);
    if (st) yield* writer.entry(full, c.rel, st, trees.layerXattrs.get(xattrKey(c.rel)));
  }
  yield END_OF_ARCHIVE;
}

interface Trees {
  layer: Buffer;
  parent: Buffer | undefined;
  layerXattrs: TreeXattrs;
  parentXattrs: TreeXattrs;
}

/** Appends the changes below directory `rel` (present in the layer; maybe in the parent) in archive order. */
async function compareDir(t: Trees, rel: Buffer | undefined, out: Change[]): Promise<void> {
  const layerNames = await namesIn(rel ? joinRel(t.layer, rel) : t.layer);
  const parentNames = t.parent === undefined ? [] : await namesIn(rel ? joinRel(t.parent, rel) : t.parent);
  const inLayer = new Set(layerNames.map((n) => n.toString('latin1')));
  const inParent = new Set(parentNames.map((n) => n.toString('latin1')));
  const all = [...new Set([...inLayer, ...inParent])].sort().map((n) => Buffer.from(n, 'latin1'));
  for (const name of all) {
    const key = name.toString('latin1');
    const childRel = joinRel(rel, name);
    if (!inLayer.has(key)) {
      out.push({ rel: childRel, kind: 'delete', dir: rel, name });
      continue;
    }
    const now = await lstatOrUndefined(joinRel(t.layer, childRel));
    if (!now) continue;
    const before = inParent.has(key) && t.parent !== undefined ? await lstatOrUndefined(joinRel(t.parent, childRel)) : undefined;
    if (!before) {
      out.push({ rel: childRel, kind: 'add' });
      if (now.isDirectory()) await addAll(t, childRel, out);
      continue;
    }
    const changed = metadataDiffers(now, before, t.layerXattrs.get(xattrKey(childRel))?.get(CAPABILITY), t.parentXattrs.get(xattrKey(childRel))?.get(CAPABILITY));
    if (now.isDirectory() && before.isDirectory()) {
      const mark = out.length;
      if (changed) out.push({ rel: childRel, kind: 'modify' });
      await compareDir(t, childRel, out);
      if (!changed && out.length > mark) out.splice(mark, 0, { rel: childRel, kind: 'modify' });
    } else if (changed) {
      out.push({ rel: childRel, kind: 'modify' });
      if (now.isDirectory()) await addAll(t, childRel, out);
    }
  }
}

/** Everything below directory `rel` of the layer, as added. */
async function addAll(t: Trees, rel: Buffer, out: Change[]): Promise<void> {
  for (const name of (await namesIn(joinRel(t.layer, rel))).sort(Buffer.compare)) {
    const childRel = joinRel(rel, name);
    out.push({ rel: childRel, kind: 'add' });
    const st = await lstatOrUndefined(joinRel(t.layer, childRel));
    if (st?.isDirectory()) await addAll(t, childRel, out);
  }
}

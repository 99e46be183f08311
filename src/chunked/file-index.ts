// Which file contents the store already has, by sha256: one small index per layer (`<id>.files.json` beside its
// tar-split) listing each regular file with content, its size and, once known, its digest. A layer pulled partially
// gets every digest from its verified TOC; any other layer's index is made from its tar-split's names and sizes, and a
// file is hashed only when a pull wants content of its size, so a big store is not read through for one pull. The
// index is a hint: every byte taken from it is hashed again as it is used, and the layer's diff_id checked at the end.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Writable } from 'node:stream';
import { writeFileAtomic } from '../store/atomic.js';
import { fileIndexPath } from '../store/layers.js';
import type { Store } from '../store/store.js';
import { parseTarSplit } from './toc.js';

export interface IndexedFile {
  name: string;
  size: number;
  /** `sha256:<hex>`; null: not hashed yet; '': not usable (missing or not a regular file of that size). */
  digest: string | null;
}

/** Where a content digest can be read in the store. */
export interface LocalFile {
  path: string;
  size: number;
}

/** A tar name as a path inside a layer directory; undefined for a name that would leave it. */
export function layerPath(dir: string, name: string): string | undefined {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) return undefined;
  return join(dir, ...parts);
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return `sha256:${h.digest('hex')}`;
}

async function readSplitNames(tarSplitPath: string): Promise<{ name: string; size: number }[]> {
  const chunks: Buffer[] = [];
  await pipeline(
    createReadStream(tarSplitPath),
    createGunzip(),
    new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        cb();
      },
    }),
  );
  const out: { name: string; size: number }[] = [];
  for (const e of parseTarSplit(Buffer.concat(chunks).toString('utf8'), tarSplitPath)) if (e.type === 'file' && e.size > 0) out.push(e);
  return out;
}

/** Writes a layer's index (a partial pull knows every digest from its verified TOC). */
export async function writeFileIndex(store: Store, layerId: string, files: readonly IndexedFile[]): Promise<void> {
  const body = JSON.stringify({ version: 1, files: files.map((f) => [f.name, f.size, f.digest]) });
  await writeFileAtomic(fileIndexPath(store.layerTarSplitPath(layerId)), body, 0o600);
}

async function readIndex(store: Store, id: string): Promise<IndexedFile[] | undefined> {
  try {
    const doc = JSON.parse(await readFile(fileIndexPath(store.layerTarSplitPath(id)), 'utf8')) as { version?: number; files?: [string, number, string | null][] };
    if (doc.version === 1 && Array.isArray(doc.files)) return doc.files.map(([name, size, digest]) => ({ name, size, digest }));
  } catch {
    /* missing or unreadable: made again */
  }
  return undefined;
}

/** The layer's index, with every file of a size in `sizes` hashed (and the index saved when that changed it). */
async function layerIndex(store: Store, id: string, sizes: ReadonlySet<number>, signal?: AbortSignal): Promise<IndexedFile[]> {
  let files = await readIndex(store, id);
  let changed = false;
  if (!files) {
    try {
      files = (await readSplitNames(store.layerTarSplitPath(id))).map((n) => ({ ...n, digest: null }));
    } catch {
      return []; // a layer without a tar-split (made by another tool) offers nothing
    }
    changed = true;
  }
  const dir = store.layerDiffPath(id);
  for (const f of files) {
    if (f.digest !== null || !sizes.has(f.size)) continue;
    signal?.throwIfAborted();
    const p = layerPath(dir, f.name);
    const st = p ? await lstat(p).catch(() => undefined) : undefined;
    f.digest = p && st?.isFile() && st.size === f.size ? await sha256File(p) : '';
    changed = true;
  }
  if (changed) await writeFileIndex(store, id, files).catch(() => {}); // a read-only graphroot: made again next time
  return files;
}

/** The store's file contents of the sizes wanted, by digest, from its complete layers. */
export async function storeFiles(store: Store, sizes: ReadonlySet<number>, signal?: AbortSignal): Promise<Map<string, LocalFile>> {
  const out = new Map<string, LocalFile>();
  const layers = (await store.layers()).filter((l) => !l.incomplete && !l.readOnly);
  for (const l of layers) {
    const dir = store.layerDiffPath(l.id);
    for (const f of await layerIndex(store, l.id, sizes, signal)) {
      const p = f.digest ? layerPath(dir, f.name) : undefined;
      if (p && !out.has(f.digest!)) out.set(f.digest!, { path: p, size: f.size });
    }
  }
  return out;
}

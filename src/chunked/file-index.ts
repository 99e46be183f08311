// Which file contents the store already has, by sha256: one small index per layer (`<id>.files.json` beside its
// tar-split) listing each regular file with content, its size and, once known, its digest. A layer pulled partially
// gets every digest from its verified TOC; any other layer's index is made from its tar-split's names and sizes, and a
// file is hashed only when a pull wants content of its size, so a big store is not read through for one pull. Hashing
// runs on native worker threads (native/file_hash.cc), a few batches at once, the event loop free meanwhile. The
// index is a hint: every byte taken from it is hashed again as it is used, and the layer's diff_id checked at the end.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Writable } from 'node:stream';
import { native } from '../native.js';
import { fromNative, type NativeFailure } from '../errors.js';
import { writeFileAtomic } from '../store/atomic.js';
import { fileIndexPath } from '../store/layers.js';
import type { Store } from '../store/store.js';
import { parseTarSplit } from './toc.js';

export interface IndexedFile {
  name: string;
  size: number;
  /** `sha256:<hex>`; null: not hashed yet; '': not usable (missing or not a regular file of that size). */
  digest: string | null;
  /**
   * The digest a TOC gave for the file when its layer was pulled whole: not verified (the layer's diff_id covers its
   * tar, not its TOC), so it only steers: a file whose claim no pull wants is not hashed, and one whose claim is
   * wanted is used without hashing first and hashed as it is read (a lie then fails as CARRIER_STALE_INDEX).
   */
  claimed?: string;
}

/** Where a content digest can be read in the store. */
export interface LocalFile {
  path: string;
  size: number;
  /** Known only from an unverified TOC claim (IndexedFile.claimed). */
  claimed?: boolean;
}

/** A name with an empty, `.` or `..` component (or empty): one that needs cleaning. */
const UNCLEAN = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** A tar name as a path inside a layer directory; undefined for a name that would leave it. */
export function layerPath(dir: string, name: string): string | undefined {
  // Most names are clean: no split and join for each of a store's thousands of files (a pull computes every one).
  if (!UNCLEAN.test(name) && !dir.endsWith('/')) return `${dir}/${name}`;
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) return undefined;
  return join(dir, ...parts);
}

/** Files (and bytes) one native hashing job takes: small enough that an abort or the next batch is not far off. */
const HASH_BATCH_FILES = 256;
const HASH_BATCH_BYTES = 64 << 20;

/**
 * Sets the digest of every file of `files` from its content inside the layer directory `dir`, on native threads
 * ('' for one that is missing, not a regular file of its size, or named outside the layer).
 */
export async function hashLayerFiles(dir: string, files: readonly IndexedFile[], signal?: AbortSignal): Promise<void> {
  const batches: IndexedFile[][] = [];
  let cur: IndexedFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (!layerPath(dir, f.name)) {
      f.digest = '';
      continue;
    }
    if (cur.length > 0 && (cur.length >= HASH_BATCH_FILES || bytes + f.size > HASH_BATCH_BYTES)) {
      batches.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += f.size;
  }
  if (cur.length > 0) batches.push(cur);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      signal?.throwIfAborted();
      const batch = batches[next++]!;
      const digests = await native.hashFiles(dir, batch.map((f) => f.name), batch.map((f) => f.size)).catch((f: unknown) => {
        throw fromNative(f as NativeFailure);
      });
      batch.forEach((f, i) => (f.digest = digests[i] ?? ''));
    }
  };
  await Promise.all(Array.from({ length: Math.min(batches.length, Math.max(1, Math.min(4, availableParallelism()))) }, worker));
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

/**
 * Writes a layer's index (a partial pull knows every digest from its verified TOC). Not synced: it is a hint, every
 * byte taken from it hashed again, and one a crash left empty or missing is made again (two fsyncs were most of what
 * a pull that fetched whole paid for it).
 */
export async function writeFileIndex(store: Store, layerId: string, files: readonly IndexedFile[]): Promise<void> {
  const body = JSON.stringify({ version: 1, files: files.map((f) => (f.claimed && !f.digest ? [f.name, f.size, f.digest, f.claimed] : [f.name, f.size, f.digest])) });
  await writeFileAtomic(fileIndexPath(store.layerTarSplitPath(layerId)), body, 0o600, false);
}

async function readIndex(store: Store, id: string): Promise<IndexedFile[] | undefined> {
  try {
    const doc = JSON.parse(await readFile(fileIndexPath(store.layerTarSplitPath(id)), 'utf8')) as { version?: number; files?: [string, number, string | null, string?][] };
    if (doc.version === 1 && Array.isArray(doc.files)) {
      return doc.files.map(([name, size, digest, claimed]) => ({ name, size, digest, ...(typeof claimed === 'string' && DIGEST.test(claimed) ? { claimed } : {}) }));
    }
  } catch {
    /* missing or unreadable: made again */
  }
  return undefined;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** What a pull wants from the store: contents of these sizes, and (to match claims against) these digests. */
export interface WantedFiles {
  sizes: ReadonlySet<number>;
  digests: ReadonlySet<string>;
}

/** A layer's index as stored, or made from its tar-split (`changed`: not stored yet); undefined without a tar-split. */
async function loadIndex(store: Store, id: string): Promise<{ files: IndexedFile[]; changed: boolean } | undefined> {
  const files = await readIndex(store, id);
  if (files) return { files, changed: false };
  try {
    return { files: (await readSplitNames(store.layerTarSplitPath(id))).map((n) => ({ ...n, digest: null })), changed: true };
  } catch {
    return undefined; // a layer without a tar-split (made by another tool) offers nothing
  }
}

/**
 * The layer's index, with every file a pull could use hashed (of a wanted size, and, when it has a claim, a wanted
 * claim); the index is saved when that changed it.
 */
async function layerIndex(store: Store, id: string, loaded: { files: IndexedFile[]; changed: boolean } | undefined, wanted: WantedFiles, signal?: AbortSignal): Promise<IndexedFile[]> {
  if (!loaded) return [];
  const { files } = loaded;
  let { changed } = loaded;
  const todo = files.filter((f) => f.digest === null && f.claimed === undefined && wanted.sizes.has(f.size));
  if (todo.length > 0) {
    await hashLayerFiles(store.layerDiffPath(id), todo, signal).catch((err: unknown) => {
      // A layer directory that cannot be opened offers nothing (and is indexed again next time).
      if (signal?.aborted) throw err;
      for (const f of todo) f.digest = null;
      todo.length = 0;
    });
    changed = todo.length > 0 || changed;
  }
  if (changed) await writeFileIndex(store, id, files).catch(() => {}); // a read-only graphroot: made again next time
  return files;
}

/**
 * The store's file contents a pull wants, by digest, from its complete layers (a verified digest before a claim).
 * `wanted` may still be coming (the TOCs being fetched): the layers' indexes are read meanwhile. Undefined when it
 * comes as undefined (nothing to pull partially).
 */
export async function storeFiles(store: Store, wanted: WantedFiles, signal?: AbortSignal): Promise<Map<string, LocalFile>>;
export async function storeFiles(store: Store, wanted: Promise<WantedFiles | undefined>, signal?: AbortSignal): Promise<Map<string, LocalFile> | undefined>;
export async function storeFiles(store: Store, wanted: WantedFiles | Promise<WantedFiles | undefined>, signal?: AbortSignal): Promise<Map<string, LocalFile> | undefined> {
  const out = new Map<string, LocalFile>();
  const layers = (await store.layers()).filter((l) => !l.incomplete && !l.readOnly);
  const loaded: Awaited<ReturnType<typeof loadIndex>>[] = [];
  for (const l of layers) loaded.push(await loadIndex(store, l.id));
  const want = await wanted;
  if (!want) return undefined;
  for (const [i, l] of layers.entries()) {
    const dir = store.layerDiffPath(l.id);
    for (const f of await layerIndex(store, l.id, loaded[i], want, signal)) {
      const digest = f.digest || (f.digest === null && f.claimed && want.digests.has(f.claimed) ? f.claimed : undefined);
      const p = digest ? layerPath(dir, f.name) : undefined;
      const prev = digest ? out.get(digest) : undefined;
      // A verified file is kept; a claim never replaces one.
      if (!p || !digest || (prev && (!prev.claimed || digest !== f.digest))) continue;
      out.set(digest, { path: p, size: f.size, ...(digest === f.digest ? {} : { claimed: true }) });
    }
  }
  return out;
}

/** The index of a layer pulled whole from a zstd:chunked blob: its TOC's digests, kept as claims. */
export function claimedIndex(contents: readonly { name: string; size: number; digest: string }[]): IndexedFile[] {
  return contents.map((c) => ({ name: c.name, size: c.size, digest: null, claimed: c.digest }));
}

// `carrier export`: a container's merged tree (its image's layers and its own read-write layer) as one tar.
import { lstat, readdir } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { CarrierError } from '../errors.js';
import type { Store } from '../store/store.js';
import { END_OF_ARCHIVE } from '../save/tar.js';
import { DiffTarWriter, joinRel } from '../drivers/diff-tar.js';
import { writeOutput } from '../transports/archive-output.js';
import { checkoutLayers, containerChain, flattenSources, scratchDir } from './checkout.js';
import type { MergeMode, MergeResult } from '../fs/merge.js';

export interface ExportOptions {
  signal?: AbortSignal;
  /** Where the merged tree is made (default `<graphroot>/carrier-tmp`, on the store's filesystem for reflinks). */
  tmpDir?: string;
  /** How the merged tree gets its file contents (default `auto`: reflinks where the filesystem can). */
  mode?: MergeMode;
}

export interface ExportResult {
  /** The container's id. */
  id: string;
  /** Entries written to the tar. */
  entries: number;
  /** Bytes of tar written. */
  bytes: number;
  /** How the merged tree was made. */
  merge: MergeResult;
}

/**
 * The tree under `root` as tar blocks: entries in sorted order, parents before children, names relative to the
 * root (directories with a trailing slash), types, permission bits, owners, mtimes (seconds), symlink targets, device
 * numbers, hard links within the tree as link entries. Sockets are left out. Names are kept as bytes (PAX `path` when
 * they are not ASCII or too long). Xattrs are not carried. Each entry is written as the drivers write a layer's.
 */
export async function* treeTarChunks(root: string, counters: { entries: number; bytes: number } = { entries: 0, bytes: 0 }, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const writer = new DiffTarWriter({ permissionsOnly: true, doing: 'it was exported' });
  const rootBuf = Buffer.from(root);
  async function* walk(rel: Buffer | undefined): AsyncGenerator<Buffer> {
    const dirPath = rel ? joinRel(rootBuf, rel) : rootBuf;
    const names = (await readdir(dirPath, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      if (signal?.aborted) throw new CarrierError('ABORT_ERR', 'The operation was aborted', { cause: signal.reason });
      const childRel = joinRel(rel, name);
      const full = joinRel(rootBuf, childRel);
      const st = await lstat(full, { bigint: true });
      for await (const b of writer.entry(full, childRel, st, undefined)) {
        counters.entries = writer.entries;
        counters.bytes += b.length;
        yield b;
      }
      if (st.isDirectory()) yield* walk(childRel);
    }
  }
  yield* walk(undefined);
  counters.entries = writer.entries;
  counters.bytes += END_OF_ARCHIVE.length;
  yield END_OF_ARCHIVE;
}

/**
 * A container's merged tree as a tar stream, made from a flattened checkout in a private scratch directory (reflinks
 * where the filesystem can), which is removed once the stream ends, fails or is destroyed.
 */
export async function exportContainerStream(store: Store, query: string, options: ExportOptions = {}): Promise<{ stream: Readable; done: Promise<ExportResult> }> {
  const chain = await containerChain(store, query);
  const scratch = await scratchDir(store, options.tmpDir);
  const tree = `${scratch.path}/rootfs`;
  let merge: MergeResult;
  try {
    merge = await checkoutLayers(flattenSources(store, chain.layers), tree, {
      ...(options.mode ? { mode: options.mode } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    await scratch.release().catch(() => {});
    throw err;
  }
  const counters = { entries: 0, bytes: 0 };
  let resolve!: (r: ExportResult) => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<ExportResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => {});
  async function* chunks(): AsyncGenerator<Buffer> {
    let ok = false;
    try {
      yield* treeTarChunks(tree, counters, options.signal);
      ok = true;
    } finally {
      await scratch.release().catch(() => {});
      if (ok) resolve({ id: chain.id, entries: counters.entries, bytes: counters.bytes, merge });
      else reject(new CarrierError('ABORT_ERR', 'the export stream was not read to its end'));
    }
  }
  const stream = Readable.from(chunks(), { objectMode: false });
  return { stream, done };
}

/**
 * `carrier export`: writes a container's merged tree (its image's layers and its own writes, overlay semantics) as a
 * tar to `out`: a writable stream, or a file path. A regular file is written beside and renamed into place when
 * complete (an existing one is replaced, as podman does; a failure leaves it as it was); a FIFO or device is written
 * as it is. Nothing Carrier did not create is removed.
 */
export async function exportContainer(store: Store, query: string, out: string | Writable, options: ExportOptions = {}): Promise<ExportResult> {
  return store.withLayersHeld(() => exportContainerTo(store, query, out, options));
}

async function exportContainerTo(store: Store, query: string, out: string | Writable, options: ExportOptions): Promise<ExportResult> {
  const { stream, done } = await exportContainerStream(store, query, options);
  try {
    await writeOutput(out, stream, {}, options.signal);
  } catch (err) {
    stream.destroy();
    throw err;
  }
  return done;
}

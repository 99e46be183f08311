// `carrier export`: a container's merged tree (its image's layers and its own read-write layer) as one tar.
import { constants, createWriteStream } from 'node:fs';
import { lstat, open, readdir, readlink, unlink } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError } from '../errors.js';
import type { Store } from '../store/store.js';
import { END_OF_ARCHIVE, padding, tarHeader, type TarEntryType } from '../save/tar.js';
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

const CHUNK = 1 << 20;

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
}

/**
 * The tree under `root` as tar blocks: entries in sorted order, parents before children, names relative to the
 * root (directories with a trailing slash), types, modes, owners, mtimes (seconds), symlink targets, device numbers,
 * hard links within the tree as link entries. Sockets are left out. Names are kept as bytes (PAX `path` when they
 * are not ASCII or too long). Xattrs are not carried.
 */
export async function* treeTarChunks(root: string, counters: { entries: number; bytes: number } = { entries: 0, bytes: 0 }, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const links = new Map<string, Buffer>();
  const rootBuf = Buffer.from(root);
  const emit = (b: Buffer): Buffer => {
    counters.bytes += b.length;
    return b;
  };
  async function* walk(rel: Buffer | undefined): AsyncGenerator<Buffer> {
    const dirPath = rel ? Buffer.concat([rootBuf, Buffer.from('/'), rel]) : rootBuf;
    const names = (await readdir(dirPath, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      if (signal?.aborted) throw new CarrierError('ABORT_ERR', 'The operation was aborted', { cause: signal.reason });
      const childRel = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const full = Buffer.concat([rootBuf, Buffer.from('/'), childRel]);
      const st = await lstat(full, { bigint: true });
      const base = {
        name: childRel,
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: Number(st.mtimeMs / 1000n),
      };
      let type: TarEntryType;
      if (st.isDirectory()) type = 'dir';
      else if (st.isFile()) type = 'file';
      else if (st.isSymbolicLink()) type = 'symlink';
      else if (st.isFIFO()) type = 'fifo';
      else if (st.isCharacterDevice()) type = 'char';
      else if (st.isBlockDevice()) type = 'block';
      else continue; // sockets
      counters.entries++;
      if (type !== 'dir' && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first) {
          yield emit(tarHeader({ ...base, type: 'hardlink', linkname: first }));
          continue;
        }
        links.set(key, childRel);
      }
      switch (type) {
        case 'dir':
          yield emit(tarHeader({ ...base, type }));
          yield* walk(childRel);
          break;
        case 'symlink':
          yield emit(tarHeader({ ...base, type, linkname: await readlink(full, { encoding: 'buffer' }) }));
          break;
        case 'char':
        case 'block':
          yield emit(tarHeader({ ...base, type, devmajor: major(st.rdev), devminor: minor(st.rdev) }));
          break;
        case 'fifo':
          yield emit(tarHeader({ ...base, type }));
          break;
        case 'file': {
          const size = Number(st.size);
          yield emit(tarHeader({ ...base, type, size }));
          const fh = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW);
          try {
            let done = 0;
            while (done < size) {
              const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - done));
              const { bytesRead } = await fh.read(buf, 0, buf.length, done);
              if (bytesRead === 0) throw new CarrierError('CARRIER_CHANGED', `file shrank while it was exported`, { path: childRel.toString() });
              done += bytesRead;
              yield emit(buf.subarray(0, bytesRead));
            }
          } finally {
            await fh.close();
          }
          yield emit(padding(size));
          break;
        }
      }
    }
  }
  yield* walk(undefined);
  yield emit(END_OF_ARCHIVE);
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
 * tar to `out` (a file path, created or truncated, removed again on failure; or a writable stream).
 */
export async function exportContainer(store: Store, query: string, out: string | Writable, options: ExportOptions = {}): Promise<ExportResult> {
  return store.withLayersHeld(() => exportContainerTo(store, query, out, options));
}

async function exportContainerTo(store: Store, query: string, out: string | Writable, options: ExportOptions): Promise<ExportResult> {
  const { stream, done } = await exportContainerStream(store, query, options);
  const sink = typeof out === 'string' ? createWriteStream(out, { mode: 0o644 }) : out;
  try {
    if (options.signal) await pipeline(stream, sink, { signal: options.signal });
    else await pipeline(stream, sink);
  } catch (err) {
    stream.destroy();
    if (typeof out === 'string') await unlink(out).catch(() => {});
    throw err;
  }
  return done;
}

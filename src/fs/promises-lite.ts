// node:fs/promises as the CLI bundle sees it (scripts/bundle-cli.mjs resolves the import here; the library as tsc
// builds it imports Node's own). Loading Node's module costs every short command ~1.4 ms of CPU on Node 20: it pulls in
// its FileHandle class, readline, fs watchers and the stream helpers, none of which a short command uses, while the
// callback API of node:fs is loaded with Node itself (issue 21: start-up). Here each function the library calls is the
// callback function of node:fs in a promise: the same system call, the same validation and the same errors (code,
// errno, syscall, path), and `open` gives a FileHandle of this module whose methods behave as Node's do (one write per
// `write`, all of it for `writeFile`, `{ bytesRead, buffer }` from `read`, `close` waiting for the handle's pending
// operations, EBADF "file closed" after it). What the library does not call (cp, opendir, watch, recursive readdir...)
// goes to Node's own module, loaded then.
import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import type * as Fsp from 'node:fs/promises';

type Failure = NodeJS.ErrnoException;
type Done = (err: Failure | null, ...values: unknown[]) => void;
type AnyFn = (...args: any[]) => any;

/** Node's own module, loaded the first time something here is not implemented on node:fs. */
function real(): typeof Fsp {
  return fs.promises;
}

/**
 * A callback function of node:fs called as a promise, resolved with its first result. It gets at most `arity` of the
 * caller's arguments (the promise API ignores the rest; the callback one would take the next for its callback), and
 * none of the trailing undefined ones: to the promise API they are its defaults, and the callback API counts its
 * arguments (fs.access(path, undefined, cb) would pass no mode at all).
 */
function promised(fn: AnyFn, arity: number): AnyFn {
  return (...args: unknown[]) =>
    new Promise((resolve, reject) => {
      call(fn, args, arity, (err, value) => (err ? reject(err) : resolve(value)));
    });
}

function call(fn: AnyFn, args: unknown[], arity: number, done: Done): void {
  let n = Math.min(args.length, arity);
  while (n > 0 && args[n - 1] === undefined) n--;
  args.length = n;
  fn(...args, done);
}

/** A function left to Node's own module. */
function forwarded(name: keyof typeof Fsp): AnyFn {
  return (...args: unknown[]) => (real()[name] as AnyFn)(...args);
}

const isView = ArrayBuffer.isView;

function isCustomIterable(data: unknown): data is Iterable<unknown> | AsyncIterable<unknown> {
  return (
    data !== null &&
    typeof data === 'object' &&
    !isView(data) &&
    (typeof (data as Iterable<unknown>)[Symbol.iterator] === 'function' || typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function')
  );
}

/** Node's AbortError (name AbortError, code ABORT_ERR, the signal's reason as cause). */
function checkAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const err: Failure = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  throw err;
}

/** Node's own error for data that is neither a string nor bytes: node:fs's writeFile checks its data first, and throws. */
function invalidData(data: unknown): never {
  fs.writeFile('', data as string, () => {});
  throw new TypeError('invalid data');
}

/** Node's limit on one write of writeFile (kWriteFileMaxChunkSize). */
const WRITE_CHUNK = 512 * 1024;

/**
 * What fs/promises' open() gives: the descriptor, and methods that run one operation each on it. A count of references
 * (the owner's, one per pending operation, one per stream made from it) keeps the descriptor open until the last is
 * gone, as Node's FileHandle does: close() while a read is pending closes after the read.
 */
export class FileHandle extends EventEmitter {
  #fd: number;
  #refs = 1;
  #closing: Promise<void> | undefined = undefined;
  #closed: { resolve: () => void; reject: (err: unknown) => void } | undefined = undefined;

  constructor(fd: number) {
    super();
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }

  /** An operation on the descriptor (fsCall in Node's module): EBADF once closed, and a reference while pending. */
  async #call<T>(syscall: string, run: (fd: number) => Promise<T>): Promise<T> {
    if (this.#fd === -1) {
      const err: Failure = new Error('file closed');
      err.code = 'EBADF';
      err.syscall = syscall;
      throw err;
    }
    this.#refs++;
    try {
      return await run(this.#fd);
    } finally {
      this.#unref();
    }
  }

  #unref(): void {
    if (--this.#refs > 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    const closed = this.#closed;
    fs.close(fd, (err) => (err ? closed?.reject(err) : closed?.resolve()));
  }

  /** One callback function of node:fs on the descriptor, resolved with its result. */
  #op<T>(syscall: string, fn: AnyFn, ...args: unknown[]): Promise<T> {
    return this.#call(syscall, (fd) => new Promise<T>((resolve, reject) => call(fn, [fd, ...args], args.length + 1, (err, value) => (err ? reject(err) : resolve(value as T)))));
  }

  close = (): Promise<void> => {
    if (this.#fd === -1) return Promise.resolve();
    if (this.#closing) return this.#closing;
    let closing: Promise<void>;
    if (this.#refs === 1) {
      const fd = this.#fd;
      this.#refs = 0;
      this.#fd = -1;
      closing = new Promise<void>((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
    } else {
      this.#refs--;
      closing = new Promise<void>((resolve, reject) => {
        this.#closed = { resolve, reject };
      });
    }
    this.#closing = closing.finally(() => {
      this.#closing = undefined;
      this.#closed = undefined;
    });
    const result = this.#closing;
    this.emit('close');
    return result;
  };

  async [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  read(bufferOrParams?: unknown, offsetOrOptions?: unknown, length?: number | null, position?: number | bigint | null): Promise<{ bytesRead: number; buffer: NodeJS.ArrayBufferView }> {
    return this.#call('read', (fd) => {
      // the arguments as Node's FileHandle.read reads them: (buffer, offset, length, position), (buffer, options), (options)
      let buffer = bufferOrParams as NodeJS.ArrayBufferView;
      let offset = offsetOrOptions as number | null | undefined;
      if (!isView(bufferOrParams)) {
        if (bufferOrParams !== null && bufferOrParams !== undefined && (typeof bufferOrParams !== 'object' || Array.isArray(bufferOrParams))) {
          return fsRead(fd, [bufferOrParams]); // node:fs's read refuses it with the same error (not an options object)
        }
        const p = (bufferOrParams ?? {}) as { buffer?: NodeJS.ArrayBufferView; offset?: number; length?: number; position?: number | bigint | null };
        buffer = p.buffer === undefined ? Buffer.alloc(16384) : p.buffer;
        offset = p.offset === undefined ? 0 : p.offset;
        length = p.length === undefined ? buffer.byteLength - offset : p.length;
        position = p.position === undefined ? null : p.position;
      }
      if (offset !== null && typeof offset === 'object') {
        const o = offset as { offset?: number; length?: number; position?: number | bigint | null };
        offset = o.offset === undefined ? 0 : o.offset;
        length = o.length === undefined ? buffer.byteLength - offset : o.length;
        position = o.position === undefined ? null : o.position;
      }
      offset ??= 0;
      length ??= buffer.byteLength - offset;
      // a position that is not a safe integer (null, a bigint) reads at the file's position, as Node's does
      return fsRead(fd, [buffer, offset, length, Number.isSafeInteger(position) ? position : -1]);
    });
  }

  write(buffer: unknown, offsetOrOptions?: unknown, length?: unknown, position?: unknown): Promise<{ bytesWritten: number; buffer: unknown }> {
    return this.#call('write', (fd) => {
      if ((buffer as { byteLength?: number } | null | undefined)?.byteLength === 0) return Promise.resolve(result('bytesWritten', 0, buffer));
      return new Promise((resolve, reject) => {
        const done = (err: Failure | null, written: number) => (err ? reject(err) : resolve(result('bytesWritten', written, buffer)));
        // a buffer: (buffer, offset, length, position) or (buffer, options); a string: (string, position, encoding)
        if (isView(buffer)) fs.write(fd, buffer as NodeJS.ArrayBufferView, offsetOrOptions as number, length as number, position as number, done);
        else fs.write(fd, buffer as string, offsetOrOptions as number, length as BufferEncoding, done);
      });
    });
  }

  readv(buffers: NodeJS.ArrayBufferView[], position?: number | null): Promise<{ bytesRead: number; buffers: NodeJS.ArrayBufferView[] }> {
    return this.#call('readv', (fd) => new Promise((resolve, reject) =>
      fs.readv(fd, buffers, typeof position === 'number' ? position : null, (err, n) => (err ? reject(err) : resolve(vectored('bytesRead', n, buffers)))),
    ));
  }

  writev(buffers: NodeJS.ArrayBufferView[], position?: number | null): Promise<{ bytesWritten: number; buffers: NodeJS.ArrayBufferView[] }> {
    return this.#call('writev', (fd) => {
      if (Array.isArray(buffers) && buffers.length === 0) return Promise.resolve(vectored('bytesWritten', 0, buffers));
      return new Promise((resolve, reject) =>
        fs.writev(fd, buffers, typeof position === 'number' ? position : null, (err, n) => (err ? reject(err) : resolve(vectored('bytesWritten', n, buffers)))),
      );
    });
  }

  stat(options?: fs.StatOptions): Promise<fs.Stats | fs.BigIntStats> {
    return this.#op('fstat', fs.fstat, options);
  }

  sync(): Promise<void> {
    return this.#op('fsync', fs.fsync);
  }

  datasync(): Promise<void> {
    return this.#op('fdatasync', fs.fdatasync);
  }

  chmod(mode: fs.Mode): Promise<void> {
    return this.#op('fchmod', fs.fchmod, mode);
  }

  chown(uid: number, gid: number): Promise<void> {
    return this.#op('fchown', fs.fchown, uid, gid);
  }

  truncate(len = 0): Promise<void> {
    return this.#op('ftruncate', fs.ftruncate, len);
  }

  utimes(atime: fs.TimeLike, mtime: fs.TimeLike): Promise<void> {
    return this.#op('futimes', fs.futimes, atime, mtime);
  }

  /** The rest of the file from the current position, as Node's FileHandle.readFile reads it. */
  readFile(options?: unknown): Promise<Buffer | string> {
    return this.#op('readFile', fs.readFile, options);
  }

  /** All of `data` from the current position (a write of at most 512 KiB at a time, again until all is written). */
  writeFile(data: unknown, options?: unknown): Promise<void> {
    const o = typeof options === 'string' ? { encoding: options as BufferEncoding } : ((options ?? {}) as { encoding?: BufferEncoding; signal?: AbortSignal });
    return this.#call('writeFile', () => {
      const encoding = o.encoding || 'utf8';
      if (!isView(data) && !isCustomIterable(data)) data = typeof data === 'string' ? Buffer.from(data, encoding) : invalidData(data);
      return writeAll(this, data, encoding, o.signal);
    });
  }

  appendFile(data: unknown, options?: unknown): Promise<void> {
    return this.writeFile(data, options);
  }

  /** A ReadStream on the descriptor, reading through this handle and closing it at the end (autoClose), as Node's. */
  createReadStream(options?: Record<string, unknown>): fs.ReadStream {
    return this.#stream(fs.createReadStream, options);
  }

  createWriteStream(options?: Record<string, unknown>): fs.WriteStream {
    return this.#stream(fs.createWriteStream, options);
  }

  readLines(options?: Record<string, unknown>): Interface {
    return createInterface({ input: this.createReadStream(options), crlfDelay: Infinity });
  }

  #stream<S extends { close(): void }>(make: AnyFn, options: Record<string, unknown> | undefined): S {
    const stream = make(undefined, { ...options, fd: this.#fd, fs: this.#streamOps() }) as S;
    this.#refs++;
    this.on('close', () => stream.close());
    return stream;
  }

  /** The fs functions a stream calls, on this handle (Node's FileHandleOperations). */
  #streamOps(): Record<string, AnyFn> {
    return {
      open: () => {
        throw new Error('open() is not implemented for a FileHandle');
      },
      close: (_fd: number, cb: Done) => {
        this.#unref();
        this.close().then(() => cb(null), cb);
      },
      fsync: (_fd: number, cb: Done) => void this.sync().then(() => cb(null), cb),
      read: (_fd: number, buf: Buffer, offset: number, length: number, pos: number | null, cb: Done) =>
        void this.read(buf, offset, length, pos).then((r) => cb(null, r.bytesRead, r.buffer), (err: Failure) => cb(err, 0, buf)),
      write: (_fd: number, buf: Buffer, offset: number, length: number, pos: number | null, cb: Done) =>
        void this.write(buf, offset, length, pos).then((r) => cb(null, r.bytesWritten, r.buffer), (err: Failure) => cb(err, 0, buf)),
      writev: (_fd: number, buffers: Buffer[], pos: number | null, cb: Done) =>
        void this.writev(buffers, pos).then((r) => cb(null, r.bytesWritten, r.buffers), (err: Failure) => cb(err, 0, buffers)),
    };
  }
}

/** Node's results have no prototype. */
function result(key: 'bytesRead' | 'bytesWritten', n: number, buffer: unknown): { bytesRead: number; bytesWritten: number; buffer: never } {
  return { __proto__: null, [key]: n, buffer } as never;
}

function vectored(key: 'bytesRead' | 'bytesWritten', n: number, buffers: NodeJS.ArrayBufferView[]): never {
  return { __proto__: null, [key]: n || 0, buffers } as never;
}

function fsRead(fd: number, args: unknown[]): Promise<{ bytesRead: number; buffer: NodeJS.ArrayBufferView }> {
  return new Promise((resolve, reject) =>
    (fs.read as AnyFn)(fd, ...args, (err: Failure | null, n: number, buffer: NodeJS.ArrayBufferView) => (err ? reject(err) : resolve(result('bytesRead', n, buffer)))),
  );
}

/** Node's writeFileHandle: each piece written whole, at most 512 KiB a write. */
async function writeAll(fh: FileHandle, data: unknown, encoding: BufferEncoding, signal: AbortSignal | undefined): Promise<void> {
  checkAborted(signal);
  const pieces: Iterable<unknown> | AsyncIterable<unknown> = isCustomIterable(data) ? data : [data];
  for await (const piece of pieces) {
    const bytes = isView(piece) ? piece : Buffer.from(piece as string, encoding);
    let view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (view.byteLength > 0) {
      checkAborted(signal);
      const { bytesWritten } = await fh.write(view, 0, Math.min(WRITE_CHUNK, view.byteLength));
      view = view.subarray(bytesWritten);
    }
  }
}

export const constants = fs.constants;
export const access = promised(fs.access, 2) as typeof Fsp.access;
export const chmod = promised(fs.chmod, 2) as typeof Fsp.chmod;
export const lstat = promised(fs.lstat, 2) as typeof Fsp.lstat;
export const mkdir = promised(fs.mkdir, 2) as typeof Fsp.mkdir;
export const mkdtemp = promised(fs.mkdtemp, 2) as typeof Fsp.mkdtemp;
export const readlink = promised(fs.readlink, 2) as typeof Fsp.readlink;
// fs/promises' realpath is realpath(3), as fs.realpath.native; fs.realpath walks the path in JavaScript
export const realpath = promised(fs.realpath.native, 2) as typeof Fsp.realpath;
export const rename = promised(fs.rename, 2) as typeof Fsp.rename;
export const rm = promised(fs.rm, 2) as typeof Fsp.rm;
export const rmdir = promised(fs.rmdir, 2) as typeof Fsp.rmdir;
export const stat = promised(fs.stat, 2) as typeof Fsp.stat;
export const statfs = promised(fs.statfs, 2) as typeof Fsp.statfs;
export const symlink = promised(fs.symlink, 3) as typeof Fsp.symlink;
export const unlink = promised(fs.unlink, 1) as typeof Fsp.unlink;
export const utimes = promised(fs.utimes, 3) as typeof Fsp.utimes;

const fsOpen = promised(fs.open, 3);
export const open = (async (path: fs.PathLike, flags?: string | number, mode?: fs.Mode) => new FileHandle(await fsOpen(path, flags, mode))) as unknown as typeof Fsp.open;

const fsReaddir = promised(fs.readdir, 2);
/** A recursive listing is Node's (node:fs lists recursively with synchronous calls). */
export const readdir = ((path: fs.PathLike, options?: unknown) =>
  (options as { recursive?: unknown } | null | undefined)?.recursive ? real().readdir(path, options as never) : fsReaddir(path, options)) as typeof Fsp.readdir;

const fsReadFile = promised(fs.readFile, 2);
// (node:fs's readFile and writeFile take a number as a descriptor; fs/promises refuses it, as Node's does here)
export const readFile = ((path: unknown, options?: unknown) => {
  if (path instanceof FileHandle) return path.readFile(options);
  return typeof path === 'number' ? real().readFile(path as never, options as never) : fsReadFile(path, options);
}) as typeof Fsp.readFile;

const fsWriteFile = promised(fs.writeFile, 3);
/** A path with a string or bytes is node:fs's writeFile (open, write all, flush if asked, close); iterables are Node's. */
export const writeFile = ((file: unknown, data: unknown, options?: unknown) => {
  if (file instanceof FileHandle) return file.writeFile(data, options);
  if (typeof file === 'number' || isCustomIterable(data)) return real().writeFile(file as string, data as never, options as never);
  return fsWriteFile(file, data, options);
}) as typeof Fsp.writeFile;

export const appendFile = ((file: unknown, data: unknown, options?: unknown) =>
  file instanceof FileHandle ? file.appendFile(data, options) : real().appendFile(file as string, data as never, options as never)) as typeof Fsp.appendFile;

export const copyFile = forwarded('copyFile') as typeof Fsp.copyFile;
export const cp = forwarded('cp') as typeof Fsp.cp;
export const opendir = forwarded('opendir') as typeof Fsp.opendir;
export const truncate = forwarded('truncate') as typeof Fsp.truncate;
export const link = forwarded('link') as typeof Fsp.link;
export const chown = forwarded('chown') as typeof Fsp.chown;
export const lchown = forwarded('lchown') as typeof Fsp.lchown;
export const lchmod = forwarded('lchmod') as typeof Fsp.lchmod;
export const lutimes = forwarded('lutimes') as typeof Fsp.lutimes;
export const watch = forwarded('watch') as typeof Fsp.watch;

export default {
  constants, access, appendFile, chmod, chown, copyFile, cp, lchmod, lchown, link, lstat, lutimes, mkdir, mkdtemp, open, opendir, readFile,
  readdir, readlink, realpath, rename, rm, rmdir, stat, statfs, symlink, truncate, unlink, utimes, watch, writeFile,
};

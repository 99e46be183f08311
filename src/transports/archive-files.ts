// The files of an image archive: a tar (indexed, read in place) or a directory (an OCI layout), behind one small
// interface the layout and docker-archive readers share.
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import { normaliseEntryName, type TarEntry, type TarIndex } from '../load/tarindex.js';

export function invalidArchive(message: string, p?: string): CarrierError {
  return new CarrierError('CARRIER_INVALID_ARCHIVE', message, p === undefined ? {} : { path: p });
}

export interface FileInfo {
  size: number;
  /** Reads the first `n` bytes (or fewer if the file is shorter). */
  head(n: number): Promise<Buffer>;
  open(): Promise<Readable>;
}

export interface FileSource {
  /** Undefined when the file is absent. */
  stat(name: string): Promise<FileInfo | undefined>;
  close(): Promise<void>;
}

export async function readAll(info: FileInfo, name: string, cap: number): Promise<Buffer> {
  if (info.size > cap) {
    throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `'${name}' is ${info.size} bytes, over the ${cap}-byte cap`, { path: name });
  }
  const buf = await info.head(info.size);
  if (buf.length !== info.size) throw new CarrierError('CARRIER_TRUNCATED', `'${name}' is shorter than its recorded size`, { path: name });
  return buf;
}

export async function readRequired(src: FileSource, name: string, cap: number, what: string): Promise<Buffer> {
  const info = await src.stat(name);
  if (!info) throw invalidArchive(`${what} '${name}' is not in the archive`, name);
  return readAll(info, name, cap);
}

export class TarSource implements FileSource {
  private closed = false;
  constructor(
    private readonly file: string,
    private readonly fh: FileHandle,
    readonly index: TarIndex,
  ) {}

  has(name: string): boolean {
    return this.index.entries.has(name);
  }

  async stat(name: string): Promise<FileInfo | undefined> {
    const e: TarEntry | undefined = this.index.resolveFile(name);
    if (!e) return undefined;
    return {
      size: e.size,
      head: async (n) => {
        this.checkOpen();
        const buf = Buffer.alloc(Math.min(n, e.size));
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await this.fh.read(buf, got, buf.length - got, e.offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      },
      open: async () => {
        this.checkOpen();
        if (e.size === 0) return Readable.from([]);
        return fs.createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
      },
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'the image archive is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/**
 * Files of an OCI layout directory. A file is opened with O_NOFOLLOW (a symlinked blob is refused) and its
 * parent's real path must be the expected directory inside the layout (a symlinked `blobs/` is refused).
 */
export class DirSource implements FileSource {
  private closed = false;
  private constructor(
    private readonly root: string,
    private readonly realRoot: string,
  ) {}

  static async create(root: string): Promise<DirSource> {
    return new DirSource(root, await fsp.realpath(root));
  }

  private async openSafe(name: string): Promise<FileHandle | undefined> {
    if (this.closed) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'the image archive is closed');
    const rel = normaliseEntryName(name, 0);
    const full = path.join(this.root, rel);
    let fh: FileHandle;
    try {
      fh = await fsp.open(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') throw new CarrierError('CARRIER_UNSAFE_PATH', `'${rel}' in the OCI layout is a symlink`, { path: full, cause: err });
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw invalidArchive(`'${rel}' in the OCI layout is not a regular file`, full);
      const parent = await fsp.realpath(path.dirname(full));
      const wantParent = path.join(this.realRoot, path.posix.dirname(rel));
      if (parent !== wantParent) {
        throw new CarrierError('CARRIER_UNSAFE_PATH', `'${rel}' resolves outside the OCI layout (${parent})`, { path: full });
      }
      return fh;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async stat(name: string): Promise<FileInfo | undefined> {
    const fh = await this.openSafe(name);
    if (!fh) return undefined;
    let size: number;
    try {
      size = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
    return {
      size,
      head: async (n) => {
        const h = await this.openSafe(name);
        if (!h) throw invalidArchive(`'${name}' disappeared from the OCI layout`, name);
        try {
          const buf = Buffer.alloc(Math.min(n, size));
          let got = 0;
          while (got < buf.length) {
            const { bytesRead } = await h.read(buf, got, buf.length - got, got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return buf.subarray(0, got);
        } finally {
          await h.close();
        }
      },
      open: async () => {
        const h = await this.openSafe(name);
        if (!h) throw invalidArchive(`'${name}' disappeared from the OCI layout`, name);
        return h.createReadStream({ highWaterMark: 1 << 20 });
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

// A layer's changes as tar, the way containers/storage's archive package writes them: a header per entry from its
// lstat (mode, owner, whole-second mtime, size, link target, device numbers), its xattrs as PAX records, a second
// name of an inode already written as a hard-link entry, and `.wh.` entries for deletions and opaque directories.
// Headers come from the project's one tar writer (src/save/tar.ts); this file only decides what goes in them.
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { CarrierError } from '../errors.js';
import { padding, tarHeader, type TarEntryType, type TarHeaderFields } from '../save/tar.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

const CHUNK = 1 << 20;
const SLASH = Buffer.from('/');

/** `a/b` + `c` as bytes (names are kept as bytes: they need not be UTF-8). */
export function joinRel(dir: Buffer | undefined, name: Buffer): Buffer {
  return dir ? Buffer.concat([dir, SLASH, name]) : name;
}

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
}

function typeOf(st: BigIntStats): TarEntryType | undefined {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return undefined; // sockets are not archived
}

export interface DiffTarWriterOptions {
  /**
   * Only the permission bits of st_mode in headers, as `carrier export` writes a tree; by default the whole st_mode,
   * file-type bits included, as Go's archive/tar header from a FileInfo has it (so containers/storage's layers).
   */
  permissionsOnly?: boolean;
  /** What is being done with the files, for the error when one shrinks while it is read. */
  doing?: string;
}

/** Writes entries of one archive; remembers inodes already written so further names of one become hard links. */
export class DiffTarWriter {
  private readonly links = new Map<string, Buffer>();
  private readonly modeMask: bigint;
  private readonly doing: string;
  entries = 0;

  constructor(options: DiffTarWriterOptions = {}) {
    this.modeMask = options.permissionsOnly ? 0o7777n : 0o177777n;
    this.doing = options.doing ?? 'its layer was archived';
  }

  /** The header of a whiteout: `dir/.wh.NAME`, an empty regular file. */
  whiteout(dir: Buffer | undefined, name: Buffer, meta: Partial<TarHeaderFields> = {}): Buffer {
    this.entries++;
    return tarHeader({ mode: 0, ...meta, name: joinRel(dir, Buffer.concat([Buffer.from(WHITEOUT_PREFIX), name])), type: 'file', size: 0 });
  }

  /** The `.wh..wh..opq` entry that marks directory `dir` opaque: the directory's permissions and owner, no mtime. */
  opaque(dir: Buffer, st: BigIntStats): Buffer {
    this.entries++;
    return tarHeader({
      name: joinRel(dir, Buffer.from(OPAQUE_MARKER)),
      type: 'file',
      mode: Number(st.mode & 0o777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: 0,
      size: 0,
    });
  }

  /** The entry for the file at `full` (already lstat'ed as `st`), named `name` in the archive, with its data. */
  async *entry(full: Buffer, name: Buffer, st: BigIntStats, xattrs: Map<string, Buffer> | undefined): AsyncGenerator<Buffer> {
    const type = typeOf(st);
    if (type === undefined) return;
    this.entries++;
    const base: TarHeaderFields = {
      name,
      type,
      mode: Number(st.mode & this.modeMask),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: Number(st.mtimeMs / 1000n),
    };
    if (xattrs && xattrs.size > 0) base.xattrs = new Map([...xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first) {
        yield tarHeader({ ...base, type: 'hardlink', linkname: first });
        return;
      }
      this.links.set(key, name);
    }
    switch (type) {
      case 'symlink':
        yield tarHeader({ ...base, linkname: await readlink(full, { encoding: 'buffer' }) });
        return;
      case 'char':
      case 'block':
        yield tarHeader({ ...base, devmajor: major(st.rdev), devminor: minor(st.rdev) });
        return;
      case 'file':
        yield* this.fileData(full, name, base, Number(st.size));
        return;
      default:
        yield tarHeader(base);
    }
  }

  private async *fileData(full: Buffer, name: Buffer, base: TarHeaderFields, size: number): AsyncGenerator<Buffer> {
    yield tarHeader({ ...base, size });
    const fh = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      let done = 0;
      while (done < size) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - done));
        const { bytesRead } = await fh.read(buf, 0, buf.length, done);
        if (bytesRead === 0) throw new CarrierError('CARRIER_CHANGED', `file shrank while ${this.doing}`, { path: name.toString() });
        done += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
    yield padding(size);
  }
}

/** lstat with bigint fields, or undefined when the path is gone. */
export async function lstatOrUndefined(p: Buffer): Promise<BigIntStats | undefined> {
  return lstat(p, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

// A small tar writer: ustar headers, with a PAX extended header in front of an entry whenever a field does not fit
// (long or non-ASCII names and link targets, ids or sizes too big for octal, sub-second times, xattrs). Output is a
// POSIX.1-2001 archive that GNU tar, bsdtar, Go's archive/tar and Carrier's own reader accept.

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarHeaderFields {
  /** Path inside the archive (bytes kept as given; a directory gets a trailing slash when it has none). */
  name: string | Buffer;
  type: TarEntryType;
  /** Permission bits, with the st_mode file-type bits too when given (Go's archive/tar, so c/storage, writes them). */
  mode: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Data size (regular files only). */
  size?: number;
  /** Seconds since the epoch; a fraction goes into a PAX `mtime` record. */
  mtime?: number;
  /** Symlink or hard-link target. */
  linkname?: string | Buffer;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: Map<string, Buffer>;
}

const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

/** Zero bytes that pad `size` data bytes to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function asBytes(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** Whether `value` fits an octal field of `len` bytes (len-1 digits and a NUL). */
function fitsOctal(value: number, len: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value < 8 ** (len - 1);
}

function writeOctal(block: Buffer, off: number, len: number, value: number): void {
  block.write(Math.max(0, Math.floor(value)).toString(8).padStart(len - 1, '0'), off, len - 1, 'ascii');
  block[off + len - 1] = 0;
}

/** Plain ASCII without NULs: what a ustar name field carries unambiguously. */
function isPortable(b: Buffer): boolean {
  for (const c of b) if (c === 0 || c >= 0x80) return false;
  return true;
}

/** Splits a long name into ustar's prefix (<= 155 bytes) and name (<= 100) at a slash, or gives up. */
function splitUstar(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name };
  for (let i = Math.min(name.length - 2, 155); i > 0; i--) {
    if (name[i] === 0x2f && name.length - i - 1 <= 100) return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
  }
  return undefined;
}

/** One PAX record: "<len> <key>=<value>\n", where len counts the whole record, its own digits included. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length > len) len++;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

interface UstarFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  f.name.copy(b, 0, 0, Math.min(100, f.name.length));
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, f.uid);
  writeOctal(b, 116, 8, f.gid);
  writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, f.mtime);
  b.write(f.typeflag, 156, 1, 'ascii');
  f.linkname.copy(b, 157, 0, Math.min(100, f.linkname.length));
  b.write('ustar\u000000', 257, 8, 'latin1');
  b.write(f.uname, 265, 31, 'utf8');
  b.write(f.gname, 297, 31, 'utf8');
  writeOctal(b, 329, 8, f.devmajor);
  writeOctal(b, 337, 8, f.devminor);
  f.prefix.copy(b, 345, 0, Math.min(155, f.prefix.length));
  // The checksum is computed with its own field read as spaces, then stored as 6 digits, NUL, space.
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

function paxTime(t: number): string {
  const sec = Math.floor(t);
  const ns = Math.round((t - sec) * 1e9);
  return ns === 0 ? String(sec) : `${sec}.${String(ns).padStart(9, '0').replace(/0+$/, '')}`;
}

/** The header block(s) of one entry: a PAX extended header first when some field needs it, then the ustar header. */
export function tarHeader(h: TarHeaderFields): Buffer {
  let name = asBytes(h.name);
  if (h.type === 'dir' && name[name.length - 1] !== 0x2f) name = Buffer.concat([name, Buffer.from('/')]);
  const linkname = asBytes(h.linkname ?? '');
  const uid = h.uid ?? 0;
  const gid = h.gid ?? 0;
  const size = h.type === 'file' ? h.size ?? 0 : 0;
  const mtime = h.mtime ?? 0;
  const uname = h.uname ?? '';
  const gname = h.gname ?? '';
  const records: Buffer[] = [];
  const split = isPortable(name) ? splitUstar(name) : undefined;
  if (!split) records.push(paxRecord('path', name));
  const longLink = linkname.length > 100 || !isPortable(linkname);
  if (longLink) records.push(paxRecord('linkpath', linkname));
  if (!fitsOctal(uid, 8)) records.push(paxRecord('uid', Buffer.from(String(uid))));
  if (!fitsOctal(gid, 8)) records.push(paxRecord('gid', Buffer.from(String(gid))));
  if (!fitsOctal(size, 12)) records.push(paxRecord('size', Buffer.from(String(size))));
  if (!Number.isInteger(mtime) || !fitsOctal(mtime, 12)) records.push(paxRecord('mtime', Buffer.from(paxTime(mtime))));
  const unameFits = Buffer.byteLength(uname) <= 31 && isPortable(Buffer.from(uname));
  const gnameFits = Buffer.byteLength(gname) <= 31 && isPortable(Buffer.from(gname));
  if (!unameFits) records.push(paxRecord('uname', Buffer.from(uname)));
  if (!gnameFits) records.push(paxRecord('gname', Buffer.from(gname)));
  for (const [k, v] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = ustarBlock({
    name: split ? split.name : Buffer.from(name.toString('latin1').replace(/[^\x20-\x7e]/g, '_').slice(-100), 'latin1'),
    prefix: split ? split.prefix : Buffer.alloc(0),
    mode: h.mode & 0o177777,
    uid: fitsOctal(uid, 8) ? uid : 0,
    gid: fitsOctal(gid, 8) ? gid : 0,
    size: fitsOctal(size, 12) ? size : 0,
    mtime: fitsOctal(Math.floor(mtime), 12) ? Math.floor(mtime) : 0,
    typeflag: TYPEFLAG[h.type],
    linkname: longLink ? Buffer.alloc(0) : linkname,
    uname: unameFits ? uname : '',
    gname: gnameFits ? gname : '',
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  // The extended header's own name is informational: readers never extract it.
  const base = name.toString('latin1').replace(/[^\x20-\x7e]/g, '_').replace(/\/+$/, '').split('/').pop() ?? '';
  const pax = ustarBlock({
    name: Buffer.from(`PaxHeaders.0/${base}`.slice(0, 99), 'latin1'),
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: 0,
    typeflag: 'x',
    linkname: Buffer.alloc(0),
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([pax, data, padding(data.length), main]);
}

import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CarrierError, abortError } from '../errors.js';

/**
 * A header-only index of a tar file: each header is read at its offset with FileHandle.read, contents are skipped,
 * so indexing a multi-GB archive costs a few reads per entry. Understands ustar and star prefixes, GNU long names and
 * link names ('L'/'K'), PAX `path`, `linkpath` and `size` records, and base-256 sizes. Names are read as Go's
 * archive/tar reads them (podman loads the same archive): a GNU long name wins over a PAX path, which wins over the
 * header; an empty one keeps what comes after it; the prefix goes by the magic, as in the native layer reader.
 */
export interface TarEntry {
  /** Normalised archive path: no leading `./` or `/`, no trailing `/`, no `.`/`..` components. */
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '5' directory, other typeflags as found. */
  type: string;
  /** Offset of the first content byte in the tar file. */
  offset: number;
  size: number;
  linkname: string;
}

export interface TarIndexLimits {
  /** Most entries accepted (default 1,000,000). */
  maxEntries?: number;
  /** Largest PAX or GNU long-name record accepted (default 1 MiB). */
  maxMetaBytes?: number;
}

const BLOCK = 512;

function badTar(message: string, offset: number): CarrierError {
  return new CarrierError('CARRIER_BAD_TAR', `${message} (header at offset ${offset})`);
}

function cString(b: Buffer): Buffer {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

function parseNumber(field: Buffer, what: string, offset: number): number {
  if (field[0]! & 0x80) {
    if (field[0] === 0xff) throw badTar(`negative ${what}`, offset);
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) {
      n = n * 256 + field[i]!;
      if (n > Number.MAX_SAFE_INTEGER) throw badTar(`${what} overflows`, offset);
    }
    return n;
  }
  const s = cString(field).toString('latin1').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw badTar(`malformed ${what} '${s}'`, offset);
  const n = parseInt(s, 8);
  if (!Number.isSafeInteger(n)) throw badTar(`${what} overflows`, offset);
  return n;
}

function checksumOK(block: Buffer): boolean {
  const stored = cString(block.subarray(148, 156)).toString('latin1').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const want = parseInt(stored, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

const isAscii = (b: Buffer): boolean => b.every((c) => c < 0x80);

/**
 * The name a header spells by itself, by its format as Go tells them apart: "ustar\0" + "tar\0" at 508 (star,
 * 131-byte prefix), "ustar\0" (155-byte prefix), GNU "ustar  \0" (no prefix, unless its atime/ctime bytes are not
 * numbers but ASCII: a pre-Go-1.8 writer's ustar prefix), anything else v7 (no prefix).
 */
function headerName(block: Buffer, offset: number): Buffer {
  const name = cString(block.subarray(0, 100));
  const magic = block.subarray(257, 263).toString('latin1');
  let prefix: Buffer = Buffer.alloc(0);
  if (magic === 'ustar\0') {
    const star = block.subarray(508, 512).toString('latin1') === 'tar\0';
    prefix = cString(block.subarray(345, star ? 476 : 500));
  } else if (magic === 'ustar ' && block.subarray(263, 265).toString('latin1') === ' \0') {
    const timesParse = [345, 357].every((at) => {
      if (block[at] === 0) return true;
      try {
        parseNumber(block.subarray(at, at + 12), 'time', offset);
        return true;
      } catch {
        return false;
      }
    });
    const old = cString(block.subarray(345, 500));
    if (!timesParse && isAscii(old)) prefix = old;
  }
  return prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), name]) : name;
}

/** A PAX value when present and not empty (an empty one keeps the header's field, as in Go). */
function paxValue(pax: Map<string, Buffer> | undefined, key: string): Buffer | undefined {
  const v = pax?.get(key);
  return v !== undefined && v.length > 0 ? v : undefined;
}

/** True when the block is a tar header with a valid checksum (used to sniff the format). */
export function looksLikeTarHeader(block: Buffer): boolean {
  return block.length >= BLOCK && !block.subarray(0, BLOCK).every((b) => b === 0) && checksumOK(block);
}

/** PAX extended header records: `LEN key=value\n`. */
function parsePax(data: Buffer, offset: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad with NULs
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw badTar('malformed PAX record', offset);
    const lenText = data.subarray(pos, space).toString('latin1');
    if (!/^[0-9]{1,9}$/.test(lenText)) throw badTar('malformed PAX record length', offset);
    const len = Number(lenText);
    if (len <= space - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw badTar('malformed PAX record', offset);
    }
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw badTar('PAX record without =', offset);
    const key = record.subarray(0, eq).toString('utf8');
    const value = record.subarray(eq + 1);
    if (value.includes(0) && (key === 'path' || key === 'linkpath' || key === 'size')) {
      throw badTar(`NUL in PAX ${key}`, offset);
    }
    out.set(key, value);
    pos += len;
  }
  return out;
}

/**
 * Normalises an entry name as found in the archive. Refuses (CARRIER_UNSAFE_PATH) absolute names, `..` components,
 * NUL bytes and empty names: an image archive never needs them, so their presence means a crafted file.
 */
export function normaliseEntryName(raw: string, offset: number): string {
  if (raw.includes('\0')) throw new CarrierError('CARRIER_UNSAFE_PATH', `NUL in archive entry name (offset ${offset})`);
  if (raw.startsWith('/')) {
    throw new CarrierError('CARRIER_UNSAFE_PATH', `absolute archive entry name '${raw}'`, { path: raw });
  }
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new CarrierError('CARRIER_UNSAFE_PATH', `archive entry name '${raw}' contains '..'`, { path: raw });
  }
  return parts.join('/');
}

export class TarIndex {
  /** Entries by normalised name (directories included). */
  readonly entries = new Map<string, TarEntry>();

  private constructor(readonly fileSize: number) {}

  /**
   * Reads every header of the tar at `fh`. Refuses truncated or malformed archives (CARRIER_BAD_TAR,
   * CARRIER_TRUNCATED), unsafe names (CARRIER_UNSAFE_PATH) and a name that occurs twice (CARRIER_DUPLICATE_ENTRY).
   */
  static async build(fh: FileHandle, options: TarIndexLimits & { signal?: AbortSignal } = {}): Promise<TarIndex> {
    const maxEntries = options.maxEntries ?? 1_000_000;
    const maxMeta = options.maxMetaBytes ?? 1 << 20;
    const { size: fileSize } = await fh.stat();
    const index = new TarIndex(fileSize);
    const block = Buffer.alloc(BLOCK);
    let offset = 0;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    let pax: Map<string, Buffer> | undefined;
    let count = 0;
    while (offset + BLOCK <= fileSize) {
      if (options.signal?.aborted) throw abortError(options.signal);
      const { bytesRead } = await fh.read(block, 0, BLOCK, offset);
      if (bytesRead < BLOCK) break;
      if (block.every((b) => b === 0)) break;
      if (!checksumOK(block)) throw badTar('bad header checksum', offset);
      let type = String.fromCharCode(block[156]!);
      const headerSize = parseNumber(block.subarray(124, 136), 'size', offset);
      const dataOffset = offset + BLOCK;
      const isMeta = type === 'x' || type === 'g' || type === 'L' || type === 'K';
      let size = headerSize;
      const paxSize = isMeta ? undefined : paxValue(pax, 'size');
      if (paxSize) {
        const s = paxSize.toString('latin1');
        // Go's strconv.ParseInt: an optional sign, then digits (leading zeros allowed).
        if (!/^\+?[0-9]+$/.test(s) || !Number.isSafeInteger(Number(s))) throw badTar(`malformed PAX size '${s}'`, offset);
        size = Number(s);
      }
      let nameBuf: Buffer = Buffer.alloc(0);
      if (!isMeta) {
        nameBuf = longName && longName.length > 0 ? longName : (paxValue(pax, 'path') ?? headerName(block, offset));
        if (type === '\0') type = nameBuf[nameBuf.length - 1] === 0x2f ? '5' : '0';
      }
      // Links, directories, devices and fifos carry no content whatever their size field says.
      const hasData = isMeta || !['1', '2', '3', '4', '5', '6'].includes(type);
      const dataLength = hasData ? size : 0;
      if (dataOffset + dataLength > fileSize) {
        throw new CarrierError('CARRIER_TRUNCATED', `tar entry at offset ${offset} runs past the end of the file`);
      }
      if (isMeta) {
        if (size > maxMeta) {
          throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `tar meta header of ${size} bytes at offset ${offset} is over the ${maxMeta}-byte cap`);
        }
        const data = Buffer.alloc(size);
        if (size > 0) await fh.read(data, 0, size, dataOffset);
        if (type === 'x') pax = parsePax(data, offset);
        else if (type === 'L') longName = cString(data);
        else if (type === 'K') longLink = cString(data);
        else {
          // 'g' (global PAX): Go hands it over as an entry of its own, which ends whatever was pending; its records
          // set nothing image archives use.
          longName = undefined;
          longLink = undefined;
          pax = undefined;
        }
      } else {
        if (++count > maxEntries) throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `more than ${maxEntries} entries in the archive`);
        const linkBuf = (longLink && longLink.length > 0 ? longLink : undefined) ?? paxValue(pax, 'linkpath') ?? cString(block.subarray(157, 257));
        const rawName = nameBuf.toString('utf8');
        const name = normaliseEntryName(rawName, offset);
        if (name !== '' || type !== '5') {
          if (name === '') throw new CarrierError('CARRIER_UNSAFE_PATH', `archive entry at offset ${offset} names the root`);
          if (index.entries.has(name)) {
            throw new CarrierError('CARRIER_DUPLICATE_ENTRY', `'${name}' occurs twice in the archive`, { path: name });
          }
          index.entries.set(name, { name, type, offset: dataOffset, size: dataLength, linkname: linkBuf.toString('utf8') });
        }
        longName = undefined;
        longLink = undefined;
        pax = undefined;
      }
      offset = dataOffset + Math.ceil(dataLength / BLOCK) * BLOCK;
    }
    // An extended header with nothing after it is dropped, as Go's archive/tar (and so podman load) does.
    return index;
  }

  /**
   * The regular file an archive path names, following symlinks and hard links inside the archive (docker save and
   * podman save link duplicate layers). Undefined when the path is absent; CARRIER_UNSAFE_PATH when a link leaves
   * the archive; CARRIER_INVALID_ARCHIVE when it names something other than a file or loops.
   */
  resolveFile(name: string): TarEntry | undefined {
    let current = name;
    for (let hops = 0; hops <= 16; hops++) {
      const e = this.entries.get(current);
      if (!e) return undefined;
      if (e.type === '0' || e.type === '7') return e;
      if (e.type === '2' || e.type === '1') {
        const target = e.linkname;
        const joined = e.type === '2' && !target.startsWith('/') ? path.posix.join(path.posix.dirname(current), target) : target;
        const norm = path.posix.normalize(joined);
        if (target.startsWith('/') || norm === '..' || norm.startsWith('../') || norm === '.' || target.includes('\0')) {
          throw new CarrierError('CARRIER_UNSAFE_PATH', `'${name}' links outside the archive ('${target}')`, { path: name });
        }
        current = norm;
        continue;
      }
      throw new CarrierError('CARRIER_INVALID_ARCHIVE', `'${name}' in the archive is not a regular file`, { path: name });
    }
    throw new CarrierError('CARRIER_INVALID_ARCHIVE', `too many links resolving '${name}' in the archive`, { path: name });
  }
}

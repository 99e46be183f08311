/**
 * Hostile-archive toolkit for the security tests.
 *
 * - A raw tar writer with full control of every header byte (tar-stream sanitizes, so it cannot produce the
 *   malformed headers these tests need): any field may be given as raw bytes, sizes may be octal, base-256 or
 *   negative, the checksum may be wrong, PAX records may hold anything (NUL included), GNU 'L'/'K' headers.
 * - Cheap multi-member gzip builders for bombs (identical members are compressed once and repeated).
 * - A per-test sandbox: `layer/` (the apply target), a sibling `victim/`, a unique victim dir in /tmp and a set of
 *   "pwned" paths an escape would create, with a snapshot function to prove that nothing outside `layer/` changed.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { applyLayer, CarrierError, type AppliedLayer, type ApplyLayerOptions } from '../../src/index.js';

export const BLOCK = 512;

// ---------------------------------------------------------------------------------------------------------------
// Raw header builder
// ---------------------------------------------------------------------------------------------------------------

/** A header field value: raw bytes are copied verbatim (NUL-padded), strings are UTF-8, numbers are octal. */
export type Field = string | Buffer;
export type NumField = number | bigint | Buffer;

export interface HeaderSpec {
  name?: Field;
  mode?: NumField;
  uid?: NumField;
  gid?: NumField;
  /** number/bigint: octal when it fits the 11 digits, else GNU base-256; negative → base-256 two's complement. */
  size?: NumField;
  mtime?: NumField;
  /** Default: the correct checksum. A number is written as octal (may be wrong on purpose); a Buffer verbatim. */
  checksum?: NumField;
  /** Added to the computed checksum (e.g. 1 for an off-by-one checksum). */
  checksumDelta?: number;
  /** '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'x' PAX, 'g' global, 'L', 'K'. */
  typeflag?: string | number;
  linkname?: Field;
  /** Default 'ustar\0' + '00' (POSIX); use gnuMagic for 'ustar  \0'. */
  magic?: Buffer;
  uname?: Field;
  gname?: Field;
  devmajor?: NumField;
  devminor?: NumField;
  prefix?: Field;
  /** Last chance to poke bytes before the checksum is computed. */
  mutate?: (block: Buffer) => void;
}

const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8], // magic(6) + version(2)
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;

export const posixMagic = Buffer.from('ustar\x0000', 'latin1');
export const gnuMagic = Buffer.from('ustar  \x00', 'latin1');

function putBytes(block: Buffer, [off, len]: readonly [number, number], bytes: Buffer, what: string): void {
  if (bytes.length > len) throw new Error(`hostile tar: ${what} is ${bytes.length} bytes, field holds ${len}`);
  bytes.copy(block, off);
}

function putString(block: Buffer, f: readonly [number, number], v: Field, what: string): void {
  putBytes(block, f, typeof v === 'string' ? Buffer.from(v, 'utf8') : v, what);
}

/** Encodes a number into a numeric field: octal + NUL when it fits, else base-256 (GNU), two's complement if < 0. */
export function numField(value: number | bigint, len: number): Buffer {
  const v = BigInt(value);
  const out = Buffer.alloc(len);
  const maxOctal = 8n ** BigInt(len - 1) - 1n;
  if (v >= 0n && v <= maxOctal) {
    out.write(v.toString(8).padStart(len - 1, '0'), 0, 'latin1');
    return out;
  }
  return base256(v, len);
}

/** GNU base-256: high bit of the first byte set; value big-endian two's complement over the whole field. */
export function base256(value: number | bigint, len: number): Buffer {
  let v = BigInt(value);
  const out = Buffer.alloc(len);
  const mod = 1n << BigInt(8 * len);
  if (v < 0n) v = mod + v; // two's complement: leading bytes become 0xff
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0] |= 0x80;
  return out;
}

function putNum(block: Buffer, f: readonly [number, number], v: NumField, what: string): void {
  if (Buffer.isBuffer(v)) putBytes(block, f, v, what);
  else putBytes(block, f, numField(v, f[1]), what);
}

export function checksumOf(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

/** One raw 512-byte header. Every field can be overridden; defaults describe an empty regular file. */
export function header(spec: HeaderSpec = {}): Buffer {
  const b = Buffer.alloc(BLOCK);
  putString(b, F.name, spec.name ?? '', 'name');
  putNum(b, F.mode, spec.mode ?? 0o644, 'mode');
  putNum(b, F.uid, spec.uid ?? 0, 'uid');
  putNum(b, F.gid, spec.gid ?? 0, 'gid');
  putNum(b, F.size, spec.size ?? 0, 'size');
  putNum(b, F.mtime, spec.mtime ?? 1_700_000_000, 'mtime');
  const tf = spec.typeflag ?? '0';
  b[F.typeflag[0]] = typeof tf === 'number' ? tf : tf.charCodeAt(0);
  putString(b, F.linkname, spec.linkname ?? '', 'linkname');
  putBytes(b, F.magic, spec.magic ?? posixMagic, 'magic');
  putString(b, F.uname, spec.uname ?? '', 'uname');
  putString(b, F.gname, spec.gname ?? '', 'gname');
  putNum(b, F.devmajor, spec.devmajor ?? 0, 'devmajor');
  putNum(b, F.devminor, spec.devminor ?? 0, 'devminor');
  putString(b, F.prefix, spec.prefix ?? '', 'prefix');
  spec.mutate?.(b);
  if (spec.checksum !== undefined) {
    putNum(b, F.chksum, Buffer.isBuffer(spec.checksum) ? spec.checksum : numField(spec.checksum, 7), 'checksum');
  } else {
    const sum = checksumOf(b) + (spec.checksumDelta ?? 0);
    // The classic encoding: six octal digits, NUL, space.
    Buffer.from(sum.toString(8).padStart(6, '0') + '\x00 ', 'latin1').copy(b, F.chksum[0]);
  }
  return b;
}

/** Zero bytes that pad `n` up to the next block boundary. */
export function padding(n: number): Buffer {
  return Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
}

/** A header followed by its data, padded. `size` defaults to the data length (override it to lie). */
export function entry(spec: HeaderSpec, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([header({ size: data.length, ...spec }), data, padding(data.length)]);
}

// ----- PAX -----

export type PaxRecord = [key: string, value: string | Buffer];

/** Encodes PAX records `"<len> <key>=<value>\n"`, the length counting itself. Values may contain any byte. */
export function paxData(records: PaxRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.from(String(len), 'latin1'), body);
  }
  return Buffer.concat(parts);
}

/** A PAX extended header ('x', or 'g' for global) with the given records or raw data. */
export function pax(records: PaxRecord[] | Buffer, spec: HeaderSpec = {}): Buffer {
  const data = Buffer.isBuffer(records) ? records : paxData(records);
  return entry({ name: 'PaxHeaders.0/entry', typeflag: 'x', mode: 0o644, ...spec }, data);
}

// ----- GNU -----

/** A GNU long-name ('L') or long-link ('K') header carrying `value` (NUL-terminated, as GNU tar writes it). */
export function gnuLong(type: 'L' | 'K', value: string | Buffer, spec: HeaderSpec = {}): Buffer {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  const data = Buffer.concat([v, Buffer.from([0])]);
  return entry({ name: '././@LongLink', typeflag: type, mode: 0, magic: gnuMagic, ...spec }, data);
}

// ----- Ordinary entries, with a choice of how the path is spelled -----

/**
 * How a path reaches the parser:
 * - 'ustar': the 100-byte name field;
 * - 'prefix': ustar prefix + name, split at a '/';
 * - 'pax': a PAX `path` record (the header name holds an innocent placeholder);
 * - 'gnu': a GNU 'L' header (the header name holds an innocent placeholder).
 */
export type Spelling = 'ustar' | 'prefix' | 'pax' | 'gnu';
export const SPELLINGS: Spelling[] = ['ustar', 'prefix', 'pax', 'gnu'];

export interface EntryOptions extends HeaderSpec {
  spelling?: Spelling;
  /** How the link target is spelled: linkname field, PAX linkpath or GNU 'K'. */
  linkSpelling?: 'ustar' | 'pax' | 'gnu';
  /** Extra PAX records to put in the entry's PAX header (creates one if needed). */
  paxExtra?: PaxRecord[];
}

let placeholderSeq = 0;

function spelled(p: string, linkTarget: string | undefined, o: EntryOptions, content: Buffer): Buffer {
  const { spelling = 'ustar', linkSpelling = 'ustar', paxExtra = [], ...spec } = o;
  const out: Buffer[] = [];
  const records: PaxRecord[] = [...paxExtra];
  const h: HeaderSpec = { ...spec };
  const placeholder = `placeholder-${++placeholderSeq}`;
  switch (spelling) {
    case 'ustar':
      h.name = p;
      break;
    case 'prefix': {
      const cut = splitForPrefix(p);
      h.prefix = cut.prefix;
      h.name = cut.name;
      break;
    }
    case 'pax':
      records.push(['path', p]);
      h.name = placeholder;
      break;
    case 'gnu':
      out.push(gnuLong('L', p));
      h.name = placeholder;
      break;
  }
  if (linkTarget !== undefined) {
    switch (linkSpelling) {
      case 'ustar':
        h.linkname = linkTarget;
        break;
      case 'pax':
        records.push(['linkpath', linkTarget]);
        h.linkname = 'placeholder-link';
        break;
      case 'gnu':
        out.push(gnuLong('K', linkTarget));
        h.linkname = 'placeholder-link';
        break;
    }
  }
  if (records.length > 0) out.unshift(pax(records));
  out.push(entry(h, content));
  return Buffer.concat(out);
}

/** Splits a path into ustar prefix (≤155) and name (≤100) at a '/'. */
export function splitForPrefix(p: string): { prefix: string; name: string } {
  for (let i = p.length - 1; i > 0; i--) {
    if (p[i] !== '/') continue;
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { prefix, name };
  }
  throw new Error(`hostile tar: cannot split '${p}' into prefix/name`);
}

export function file(p: string, content: string | Buffer = '', o: EntryOptions = {}): Buffer {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  return spelled(p, undefined, { typeflag: '0', mode: 0o644, ...o }, data);
}

export function dir(p: string, o: EntryOptions = {}): Buffer {
  return spelled(p, undefined, { typeflag: '5', mode: 0o755, ...o }, Buffer.alloc(0));
}

export function symlink(p: string, target: string, o: EntryOptions = {}): Buffer {
  return spelled(p, target, { typeflag: '2', mode: 0o777, ...o }, Buffer.alloc(0));
}

export function hardlink(p: string, target: string, o: EntryOptions = {}): Buffer {
  return spelled(p, target, { typeflag: '1', mode: 0o644, ...o }, Buffer.alloc(0));
}

export function device(p: string, kind: 'char' | 'block', major: number, minor: number, o: EntryOptions = {}): Buffer {
  return spelled(p, undefined, { typeflag: kind === 'char' ? '3' : '4', mode: 0o666, devmajor: major, devminor: minor, ...o }, Buffer.alloc(0));
}

/** Directory entries for every proper ancestor of `p` (`/a/b/c` → `/a/`, `/a/b/`), spelled like `p`. */
export function parents(p: string, o: EntryOptions = {}): Buffer {
  const lead = /^\/*/.exec(p)![0];
  const parts = p.slice(lead.length).split('/').filter(Boolean);
  const out: Buffer[] = [];
  for (let i = 1; i < parts.length; i++) out.push(dir(lead + parts.slice(0, i).join('/') + '/', o));
  return Buffer.concat(out);
}

/** Two zero blocks: the end-of-archive marker. */
export const END = Buffer.alloc(2 * BLOCK);

/** Concatenates entries and appends the end-of-archive marker. */
export function tar(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, END]);
}

// ---------------------------------------------------------------------------------------------------------------
// Multi-member gzip (bombs and huge headers without building the huge thing in memory)
// ---------------------------------------------------------------------------------------------------------------

/** Raw bytes, or `length` copies of `byte` (compressed in identical chunks, each its own gzip member). */
export type GzPart = Buffer | { fill: number; length: number; chunk?: number };

const memberCache = new Map<string, Buffer>();

function fillMember(byte: number, length: number): Buffer {
  const key = `${byte}:${length}`;
  let m = memberCache.get(key);
  if (!m) {
    m = gzipSync(Buffer.alloc(length, byte), { level: 9 });
    memberCache.set(key, m);
  }
  return m;
}

/** Yields gzip members that decompress (as one multi-member stream) to the concatenation of `parts`. */
export function* gzipMembers(parts: GzPart[]): Generator<Buffer> {
  for (const part of parts) {
    if (Buffer.isBuffer(part)) {
      if (part.length > 0) yield gzipSync(part);
      continue;
    }
    const chunk = part.chunk ?? 64 * 1024 * 1024;
    const full = Math.floor(part.length / chunk);
    const rem = part.length % chunk;
    if (full > 0) {
      const m = fillMember(part.fill, chunk);
      for (let i = 0; i < full; i++) yield m;
    }
    if (rem > 0) yield fillMember(part.fill, rem);
  }
}

// ----- zstd (through the zstd CLI; Node 20 has no zstd encoder) -----

/** One zstd frame holding `b`. A missing CLI fails the test with what to install, never skips it. */
export function zstd(b: Buffer): Buffer {
  try {
    return execFileSync('zstd', ['-q', '-c', '-19'], { input: b, maxBuffer: 256 * 1024 * 1024 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error("the zstd CLI is missing: install Debian's 'zstd'");
    throw err;
  }
}

const zstdCache = new Map<string, Buffer>();

/** Writes concatenated zstd frames that decompress to the concatenation of `parts`; returns the file size. */
export function writeZstdFrames(file: string, parts: GzPart[]): number {
  const fd = fs.openSync(file, 'w');
  let size = 0;
  const put = (b: Buffer): void => {
    fs.writeSync(fd, b);
    size += b.length;
  };
  try {
    for (const part of parts) {
      if (Buffer.isBuffer(part)) {
        if (part.length > 0) put(zstd(part));
        continue;
      }
      const chunk = part.chunk ?? 64 * 1024 * 1024;
      const frame = (len: number): Buffer => {
        const key = `${part.fill}:${len}`;
        let f = zstdCache.get(key);
        if (!f) zstdCache.set(key, (f = zstd(Buffer.alloc(len, part.fill))));
        return f;
      };
      for (let i = 0; i < Math.floor(part.length / chunk); i++) put(frame(chunk));
      if (part.length % chunk) put(frame(part.length % chunk));
    }
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

/** Writes a multi-member gzip file; returns its size. */
export function writeGzipMembers(file: string, parts: GzPart[]): number {
  const fd = fs.openSync(file, 'w');
  let size = 0;
  try {
    for (const m of gzipMembers(parts)) {
      fs.writeSync(fd, m);
      size += m.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

/** A readable of gzip members that counts how many compressed bytes the consumer actually pulled. */
export function countingGzipStream(parts: GzPart[]): { stream: Readable; pulled: () => number; total: () => number } {
  let pulled = 0;
  let total = 0;
  for (const m of gzipMembers(parts)) total += m.length;
  const gen = (function* () {
    for (const m of gzipMembers(parts)) {
      pulled += m.length;
      yield m;
    }
  })();
  return { stream: Readable.from(gen, { objectMode: false }), pulled: () => pulled, total: () => total };
}

// ---------------------------------------------------------------------------------------------------------------
// Sandbox + snapshots
// ---------------------------------------------------------------------------------------------------------------

export interface Sandbox {
  /** Unique token used in every name this sandbox creates. */
  token: string;
  /** The sandbox directory (in os.tmpdir()). */
  root: string;
  /** The apply target. */
  layer: string;
  /** Sibling of `layer` full of files an escape would touch. */
  victim: string;
  /** Where test archives are written (outside `layer`, not snapshotted). */
  src: string;
  /** A second victim directory directly in /tmp: `/tmp/carrier-victim-<token>`. */
  tmpVictim: string;
  /** Paths that must not exist before or after (an escape would create them). */
  pwned: string[];
  /** Add more paths to watch. */
  watch(...paths: string[]): void;
  snapshot(): Record<string, string>;
  /** Writes an archive into `src/` and returns its path. */
  write(name: string, bytes: Buffer): string;
  cleanup(): void;
}

const VICTIM_MTIME = new Date('2001-02-03T04:05:06Z');

function populateVictim(d: string, token: string): void {
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'passwd'), `root:x:0:0:victim ${token}:/root:/bin/sh\n`, { mode: 0o644 });
  fs.writeFileSync(path.join(d, 'shadow'), `secret ${token}\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(d, 'marker'), `marker ${token}\n`, { mode: 0o640 });
  fs.mkdirSync(path.join(d, 'sub'), { mode: 0o755 });
  fs.writeFileSync(path.join(d, 'sub', 'file'), `sub ${token}\n`, { mode: 0o644 });
  fs.symlinkSync('passwd', path.join(d, 'link'));
  for (const p of ['passwd', 'shadow', 'marker', 'sub/file', 'sub', '.']) fs.utimesSync(path.join(d, p), VICTIM_MTIME, VICTIM_MTIME);
}

let haveGetfattr: boolean | undefined;

/** Every extended attribute under `root` (one getfattr call), keyed by absolute path. Symlinks are not followed. */
function xattrTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  if (haveGetfattr === undefined) {
    try {
      execFileSync('getfattr', ['--version'], { stdio: 'ignore' });
      haveGetfattr = true;
    } catch {
      haveGetfattr = false;
    }
  }
  if (!haveGetfattr) return out;
  let text = '';
  try {
    text = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (e) {
    text = String((e as { stdout?: string }).stdout ?? '');
  }
  let current = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) current = line.slice(8);
    else if (line && current) out.set(current, (out.get(current) ?? '') + line + ';');
  }
  return out;
}

/** Describes one path: type, mode, owner, size, link count, inode, mtime/ctime (ns), content hash or link target. */
export function describe(p: string): string {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(p, { bigint: true });
  } catch (e) {
    return `absent(${(e as NodeJS.ErrnoException).code})`;
  }
  let what = '';
  if (st.isFile()) what = 'file:' + createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
  else if (st.isSymbolicLink()) what = 'symlink:' + fs.readlinkSync(p);
  else if (st.isDirectory()) what = 'dir';
  else what = `other:${st.rdev}`;
  return `${what} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${st.size} nlink=${st.nlink} ino=${st.ino} mtime=${st.mtimeNs} ctime=${st.ctimeNs}`;
}

function walk(base: string, out: Record<string, string>, label: string, xa: Map<string, string>): void {
  out[label] = describe(base) + ` xattrs=[${xa.get(base) ?? ''}]`;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(base);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  for (const name of fs.readdirSync(base).sort()) walk(path.join(base, name), out, `${label}/${name}`, xa);
}

export function createSandbox(): Sandbox {
  const token = randomBytes(6).toString('hex');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `carrier-sec-${token}-`));
  const layer = path.join(root, 'layer');
  const victim = path.join(root, 'victim');
  const src = path.join(root, 'src');
  const tmpVictim = `/tmp/carrier-victim-${token}`;
  fs.mkdirSync(layer);
  fs.mkdirSync(src);
  populateVictim(victim, token);
  populateVictim(tmpVictim, token);
  const pwned = [
    `/tmp/carrier-${token}-pwned`,
    `/carrier-${token}-pwned`,
    path.join(root, `carrier-${token}-pwned`),
    path.join(os.tmpdir(), `carrier-${token}-pwned`),
  ];
  const sb: Sandbox = {
    token,
    root,
    layer,
    victim,
    src,
    tmpVictim,
    pwned,
    watch: (...paths) => void pwned.push(...paths),
    snapshot() {
      const out: Record<string, string> = {};
      // The sandbox itself (its listing, mode and times), minus the two directories the test owns.
      out['<sandbox>'] = describe(root);
      out['<sandbox>/*'] = fs.readdirSync(root).sort().join(',');
      walk(victim, out, '<victim>', xattrTree(victim));
      walk(tmpVictim, out, '<tmpVictim>', xattrTree(tmpVictim));
      for (const p of pwned) out[`<watch>${p}`] = describe(p);
      return out;
    },
    write(name, bytes) {
      const p = path.join(src, name);
      fs.writeFileSync(p, bytes);
      return p;
    },
    cleanup() {
      // If an escape did happen, remove what it created so later tests start clean.
      for (const p of pwned) fs.rmSync(p, { recursive: true, force: true });
      for (const d of [root, tmpVictim]) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // chattr'd or otherwise stuck: leave it, it is in /tmp.
        }
      }
    },
  };
  return sb;
}

/** Every path under `d` (relative, sorted, directories with a trailing '/'); symlinks are not followed. */
export function tree(d: string): string[] {
  const out: string[] = [];
  const rec = (rel: string): void => {
    const abs = rel ? path.join(d, rel) : d;
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(d, r));
      if (st.isDirectory()) {
        out.push(r + '/');
        rec(r);
      } else out.push(r);
    }
  };
  rec('');
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Harness: run an attack, prove containment
// ---------------------------------------------------------------------------------------------------------------


export type Outcome = { ok: true; result: AppliedLayer } | { ok: false; error: unknown };

export type ArchiveSource = Buffer | { path: string } | { stream: () => Readable };

function show(o: Outcome): string {
  if (o.ok) return `resolved: ${JSON.stringify(o.result)}`;
  const e = o.error as Partial<CarrierError> & Error;
  return `rejected: ${e?.name} code=${e?.code} path=${e?.path} message=${e?.message}`;
}

/**
 * Applies `archive` to `sb.layer` and asserts the first invariant of every hostile test: nothing outside the layer
 * root changed (victim trees, /tmp victim, watched "pwned" paths, the sandbox listing).
 */
export async function attack(sb: Sandbox, archive: ArchiveSource, options: ApplyLayerOptions = {}): Promise<Outcome> {
  const before = sb.snapshot();
  let outcome: Outcome;
  try {
    let source: string | Readable;
    if (Buffer.isBuffer(archive)) source = sb.write(`layer-${randomBytes(3).toString('hex')}.tar`, archive);
    else if ('path' in archive) source = archive.path;
    else source = archive.stream();
    outcome = { ok: true, result: await applyLayer(source, sb.layer, options) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const after = sb.snapshot();
  if (process.env.CARRIER_SECURITY_VERBOSE) console.log(`[attack] ${expect.getState().currentTestName}: ${show(outcome)}`);
  expect(after, `something outside the layer root changed (${show(outcome)})`).toEqual(before);
  return outcome;
}

/** Rejected with a CarrierError whose code is one of `codes` (any code when omitted), and `layer/` is empty. */
export function expectRefused(sb: Sandbox, o: Outcome, codes?: string | string[]): CarrierError {
  expect(o.ok, `expected a rejection, got ${show(o)}`).toBe(false);
  const err = (o as { error: unknown }).error;
  expect(err, `expected a CarrierError, got ${show(o)}`).toBeInstanceOf(CarrierError);
  const e = err as CarrierError;
  if (codes !== undefined) {
    const list = Array.isArray(codes) ? codes : [codes];
    expect(list, `wrong error code (${show(o)})`).toContain(e.code);
  }
  expect(tree(sb.layer), `layer dir not emptied after ${show(o)}`).toEqual([]);
  return e;
}

/** Resolved; returns the result. */
export function expectApplied(o: Outcome): AppliedLayer {
  expect(o.ok, `expected success, got ${show(o)}`).toBe(true);
  return (o as { result: AppliedLayer }).result;
}

/**
 * Either rejected with a CarrierError (layer emptied) or resolved (containment already proven by `attack`).
 * When resolved, `onApplied` checks where things landed.
 */
export function expectContained(sb: Sandbox, o: Outcome, onApplied?: (r: AppliedLayer) => void): void {
  if (o.ok) onApplied?.(o.result);
  else expectRefused(sb, o);
}

/** A path inside the layer (joins even absolute `p` under the root). */
export function inLayer(sb: Sandbox, p: string): string {
  return path.join(sb.layer, p);
}

export function readIn(sb: Sandbox, p: string): string {
  return fs.readFileSync(inLayer(sb, p), 'utf8');
}

export function lstatIn(sb: Sandbox, p: string): fs.Stats {
  return fs.lstatSync(inLayer(sb, p));
}

/** Runs `fn` with a fresh sandbox, always cleaned up. */
export function sandboxed(fn: (sb: Sandbox) => Promise<void>): () => Promise<void> {
  return async () => {
    const sb = createSandbox();
    try {
      await fn(sb);
    } finally {
      sb.cleanup();
    }
  };
}

/** True when `skipped` mentions the layer root (spelled '', '.', './', '/', ...). */
export function skippedRoot(r: AppliedLayer): boolean {
  return r.skipped.some((s) => s.path.replace(/^(\.?\/)+/, '').replace(/\/+$/, '').replace(/^\.$/, '') === '');
}

export function gz(b: Buffer): Buffer {
  return gzipSync(b);
}

// ---- shared by the security suites -------------------------------------------------------------------------------

/** Per-test timeout of the security suites. */
export const T = 20_000;
/** Every hostile shape is tried with and without privilege. */
export const MODES = [
  { label: 'rootless', rootless: true },
  { label: 'privileged', rootless: false },
] as const;
/** What a hostile layer tries to write outside its root. */
export const PAYLOAD = 'written by a hostile layer\n';
/** The victim file's path relative to the layer dir: `../victim/passwd`. */
export const up = (sb: Sandbox, p = 'passwd'): string => path.relative(sb.layer, path.join(sb.victim, p));
/** The /tmp victim relative to the layer dir: `../../carrier-victim-<token>/passwd`. */
export const upTmp = (sb: Sandbox, p = 'passwd'): string => path.relative(sb.layer, path.join(sb.tmpVictim, p));

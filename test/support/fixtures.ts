/**
 * Layer fixtures built by code: source trees on disk, tarballs written by GNU tar, bsdtar and tar-stream, and
 * their gzip/zstd encodings. Nothing here is a committed binary; every fixture is generated into a temp dir.
 *
 * Debian packages used: tar, libarchive-tools (bsdtar), gzip, zstd, attr (setfattr/getfattr), coreutils (mkfifo,
 * mknod, touch), util-linux (setpriv, for the unprivileged tests). Must run as root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';

export const MiB = 1 << 20;
/** Size of the big file: over 100 MiB and not a multiple of 512, so its padding is exercised. */
export const BIG_SIZE = 100 * MiB + 12345;

const TOOL_ENV = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `carrier-${prefix}-`));
}

/** Runs a tool; throws with its stderr when it exits non-zero. Returns stdout. */
export function run(cmd: string, args: string[], options: { cwd?: string; stdout?: number; input?: Buffer } = {}): Buffer {
  try {
    const out = execFileSync(cmd, args, {
      cwd: options.cwd,
      env: TOOL_ENV,
      input: options.input,
      stdio: [options.input ? 'pipe' : 'ignore', options.stdout ?? 'pipe', 'pipe'],
      maxBuffer: 1 << 30,
    });
    return out ?? Buffer.alloc(0);
  } catch (err) {
    const e = err as { stderr?: Buffer; status?: number };
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${e.status}): ${e.stderr?.toString() ?? String(err)}`);
  }
}

/** Runs a tool with its stdout going to a file. */
export function runToFile(cmd: string, args: string[], outFile: string, append = false): void {
  const fd = fs.openSync(outFile, append ? 'a' : 'w');
  try {
    run(cmd, args, { stdout: fd });
  } finally {
    fs.closeSync(fd);
  }
}

/** Deterministic pseudo-random bytes: the AES-128-CTR keystream of a seed. */
export function prng(size: number, seed: string): Buffer {
  const key = crypto.createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** Compressible, deterministic text of about `size` bytes. */
export function textContent(size: number, seed: number): Buffer {
  const words = ['layer', 'carrier', 'overlay', 'digest', 'tar', 'split', 'whiteout', 'blob', 'manifest', 'rootless'];
  let s = '';
  let i = seed;
  while (s.length < size) {
    i = (i * 1103515245 + 12345) & 0x7fffffff;
    s += `${words[i % words.length]} ${i % 1000}${i % 7 === 0 ? '\n' : ' '}`;
  }
  return Buffer.from(s.slice(0, size));
}

/** Writes `size` bytes quickly: a 1 MiB pseudo-random block repeated, each copy stamped with its index. */
export function writeBigFile(file: string, size: number, seed = 'big'): void {
  const block = prng(MiB, seed);
  const fd = fs.openSync(file, 'w');
  try {
    let written = 0;
    let i = 0;
    while (written < size) {
      const n = Math.min(MiB, size - written);
      block.writeUInt32BE(i++, 0);
      fs.writeSync(fd, block, 0, n);
      written += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function sha256(buf: Buffer): string {
  return 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: MiB }), h);
  return 'sha256:' + h.digest('hex');
}

export function fileSize(file: string): number {
  return fs.statSync(file).size;
}

// ---------------------------------------------------------------------------------------------------------------
// The source tree archived by GNU tar and bsdtar

export interface SourceTreeOptions {
  /** Include big/blob.bin (BIG_SIZE bytes). */
  big: boolean;
  /** Number of small files under many/ (default 5000). */
  many?: number;
}

export interface SourceTree {
  root: string;
  /** Top-level names, all ASCII, to pass to tar on the command line. */
  topLevel: string[];
}

/** security.capability value for cap_net_raw+ep (VFS_CAP_REVISION_2, little-endian). */
export const FILE_CAPS_HEX = '0x0100000200200000000000000000000000000000';
const FILE_CAPS_STRING = Buffer.from(FILE_CAPS_HEX.slice(2), 'hex').toString('latin1'); // all bytes < 0x80

const LONG_NAME_120 = 'n'.repeat(120) + '.txt';
const LONG_NAME_250 = 'N'.repeat(250);
export const DEEP_DIR = 'long/deep/' + Array.from({ length: 20 }, (_, i) => `level-${String(i).padStart(2, '0')}-abcdefghij`).join('/');

/**
 * Builds a tree with everything the writers tests need: long and deep names, non-UTF-8 and non-ASCII names, hard
 * links (incl. to a symlink and to an empty file), relative/absolute/dangling symlinks, empty files and dirs, a fifo,
 * setuid/setgid/sticky modes, user.* xattrs, several owners (incl. ids too big for octal fields), fractional
 * mtimes, thousands of small files, and optionally a >100 MiB file. Must run as root (chown).
 */
export function buildSourceTree(root: string, options: SourceTreeOptions): SourceTree {
  const many = options.many ?? 5000;
  const R = (rel: string | Buffer): Buffer => Buffer.concat([Buffer.from(root + '/'), Buffer.isBuffer(rel) ? rel : Buffer.from(rel)]);
  const mkdir = (rel: string | Buffer): void => void fs.mkdirSync(R(rel), { recursive: true });
  const file = (rel: string | Buffer, content: string | Buffer): void => fs.writeFileSync(R(rel), content);

  mkdir('dir-a/nested/deeper');
  file('dir-a/file.txt', 'hello from dir-a\n');
  file('dir-a/exec.sh', '#!/bin/sh\necho hi\n');
  file('dir-a/nested/deeper/file', textContent(3000, 1));

  mkdir('long');
  file(`long/${LONG_NAME_120}`, 'name longer than 100 bytes\n');
  file(`long/${LONG_NAME_250}`, 'basename of 250 bytes\n');
  mkdir(DEEP_DIR);
  file(`${DEEP_DIR}/file-at-the-bottom-of-a-very-deep-tree.txt`, 'deep\n');
  fs.symlinkSync(LONG_NAME_120, R('long/symlink-long-target'));
  fs.symlinkSync('/' + 'x'.repeat(150) + '/dangling-absolute', R('long/symlink-long-absolute'));
  fs.linkSync(R(`long/${LONG_NAME_250}`), R('long/hardlink-to-long'));

  mkdir('names/日本');
  file('names/café.txt', 'accent\n');
  file('names/日本/語.txt', 'kanji\n');
  file('names/emoji-😀.txt', 'emoji\n');
  file('names/with space.txt', 'space\n');
  file('names/back\\slash.txt', 'backslash\n');
  file('names/tab\tand=equals.txt', 'tab\n');
  file(Buffer.from('names/bad-\xff\xfe.bin', 'latin1'), 'not utf-8\n');
  mkdir(Buffer.from('names/dir-\xe9', 'latin1'));
  file(Buffer.from('names/dir-\xe9/inner.txt', 'latin1'), 'inside a latin-1 named dir\n');

  mkdir('links/sub');
  file('links/target.txt', 'target\n');
  fs.linkSync(R('links/target.txt'), R('links/hard1'));
  fs.linkSync(R('links/target.txt'), R('links/sub/hard2'));
  fs.symlinkSync('target.txt', R('links/rel'));
  fs.symlinkSync('../dir-a/file.txt', R('links/up'));
  fs.symlinkSync('/etc/passwd', R('links/abs'));
  fs.symlinkSync('does/not/exist', R('links/dangling'));
  fs.symlinkSync('../dir-a', R('links/dirlink'));
  fs.symlinkSync('../names/日本', R('links/nonascii-target'));
  fs.linkSync(R('links/rel'), R('links/hl-to-symlink')); // link(2) does not follow: a second name for the symlink

  mkdir('empty/dir');
  file('empty/empty.txt', '');
  fs.linkSync(R('empty/empty.txt'), R('empty/empty-hard'));

  if (options.big) {
    mkdir('big');
    writeBigFile(path.join(root, 'big/blob.bin'), BIG_SIZE);
    file('big/after.txt', 'entry after the big file\n');
  }

  mkdir('special');
  run('mkfifo', ['-m', '0640', path.join(root, 'special/fifo')]);

  mkdir('modes/sticky');
  mkdir('modes/setgid-dir');
  mkdir('modes/readonly-dir');
  mkdir('modes/private');
  for (const n of ['setuid', 'setgid', 'all-bits', 'noperm']) file(`modes/${n}`, `${n}\n`);
  file('modes/setgid-dir/file', 'x\n');
  file('modes/readonly-dir/file', 'ro\n');
  file('modes/private/secret', 's\n');

  mkdir('xattr/dir');
  file('xattr/file', 'has xattrs\n');
  file('xattr/long-value', 'long xattr value\n');

  mkdir('owners/dir');
  file('owners/nobody', 'nobody\n');
  file('owners/big-ids', 'ids beyond the octal fields\n');
  file('owners/mixed', 'root user, other group\n');
  file('owners/dir/file', 'owned by 1000\n');
  fs.symlinkSync('nobody', R('owners/symlink'));

  for (let d = 0; d < 10; d++) mkdir(`many/d${d}`);
  for (let i = 0; i < many; i++) file(`many/d${i % 10}/f${String(i).padStart(5, '0')}.txt`, `file ${i}\n`);

  // Owners first (chown clears setuid/setgid), then modes, then xattrs, then times.
  const chown = (rel: string, uid: number, gid: number): void => fs.lchownSync(R(rel), uid, gid);
  chown('dir-a', 1000, 1000);
  chown('dir-a/file.txt', 1000, 1000);
  chown('owners/nobody', 65534, 65534);
  chown('owners/big-ids', 3000000, 3000001);
  chown('owners/mixed', 0, 1000);
  chown('owners/dir', 4242, 4343);
  chown('owners/dir/file', 1000, 1000);
  chown('owners/symlink', 1001, 1002);
  chown('modes/setuid', 1000, 1000);

  const chmod = (rel: string, mode: number): void => fs.chmodSync(R(rel), mode);
  chmod('dir-a/exec.sh', 0o755);
  chmod('modes/setuid', 0o4755);
  chmod('modes/setgid', 0o2755);
  chmod('modes/all-bits', 0o7777);
  chmod('modes/noperm', 0o000);
  chmod('modes/sticky', 0o1777);
  chmod('modes/setgid-dir', 0o2775);
  chmod('modes/readonly-dir/file', 0o444);
  chmod('modes/readonly-dir', 0o555);
  chmod('modes/private', 0o700);

  const setfattr = (rel: string, name: string, value?: string): void =>
    void run('setfattr', ['-h', '-n', name, ...(value === undefined ? [] : ['-v', value]), path.join(root, rel)]);
  setfattr('xattr/file', 'user.foo', 'bar');
  setfattr('xattr/file', 'user.bin', '0xff00fe');
  setfattr('xattr/file', 'user.empty');
  setfattr('xattr/long-value', 'user.long', 'v'.repeat(1500));
  setfattr('xattr/dir', 'user.dirattr', 'yes');
  // File capabilities (cap_net_raw+ep, VFS_CAP_REVISION_2), as Debian's ping carries them.
  file('xattr/ping', 'pretend ping\n');
  chmod('xattr/ping', 0o755);
  setfattr('xattr/ping', 'security.capability', FILE_CAPS_HEX);

  setTimes(root);
  return { root, topLevel: fs.readdirSync(root).sort() };
}

/** Gives every entry below root a distinct mtime, many with a sub-second part; directories last, deepest first. */
export function setTimes(root: string): void {
  const entries: { p: Buffer; dir: boolean; depth: number }[] = [];
  const rootBuf = Buffer.from(root);
  const visit = (abs: Buffer, depth: number): void => {
    for (const name of fs.readdirSync(abs, { encoding: 'buffer' }) as Buffer[]) {
      const p = Buffer.concat([abs, Buffer.from('/'), name]);
      const st = fs.lstatSync(p);
      entries.push({ p, dir: st.isDirectory(), depth });
      if (st.isDirectory()) visit(p, depth + 1);
    }
  };
  visit(rootBuf, 0);
  entries.sort((a, b) => Number(a.dir) - Number(b.dir) || b.depth - a.depth);
  entries.forEach((e, i) => {
    const whole = 1_600_000_000 + i * 3617;
    const t = i % 5 === 0 ? whole : whole + ((i * 7919) % 997) / 1000 + 0.000123;
    fs.lutimesSync(e.p, t, t);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Writers

/** GNU tar: 'gnu' format (././@LongLink names, base-256 ids, whole-second times) or 'posix' (PAX, xattrs, ns). */
export function gnuTar(src: SourceTree, out: string, format: 'gnu' | 'posix', names = src.topLevel): void {
  const args = ['--sort=name', `--format=${format}`, '-cf', out, '-C', src.root];
  if (format === 'posix') args.push('--xattrs', '--xattrs-include=*');
  run('tar', [...args, '--', ...names]);
}

/** bsdtar (libarchive) in full pax format: pax headers for every entry, hdrcharset=BINARY for non-UTF-8 names. */
export function bsdTar(src: SourceTree, out: string, names = src.topLevel): void {
  run('bsdtar', ['--format=pax', '-cf', out, '-C', src.root, ...names]);
}

/**
 * Extracts with GNU tar the way the reference trees are made (as root: owners, modes, xattrs restored).
 * --delay-directory-restore makes GNU tar set directory times at the very end; without it GNU tar sets a
 * directory's mtime when the archive leaves that directory, and a later entry inside it (bsdtar's order) bumps it.
 */
export function gnuExtract(tarFile: string, dest: string): void {
  run('tar', ['-xpf', tarFile, '--xattrs', '--xattrs-include=*', '--numeric-owner', '--delay-directory-restore', '-C', dest]);
}

type TsHeader = Partial<Omit<Header, 'pax'>> & { name: string; pax?: Record<string, string> };

export interface TarStreamEntry {
  header: TsHeader;
  content?: Buffer | string;
  /** Write `size` bytes from writeBigFile's generator instead of content. */
  bigSize?: number;
}

/** Writes entries with tar-stream. Placeholder bytes `\u0001\u0002` in ustar names are patched to 0xff 0xfe after. */
export async function writeTarStream(out: string, entries: TarStreamEntry[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, fs.createWriteStream(out));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.bigSize !== undefined) {
        const sink = pack.entry({ ...e.header, size: e.bigSize }, cb);
        void (async () => {
          const block = prng(MiB, 'big');
          let written = 0;
          let i = 0;
          while (written < e.bigSize!) {
            const n = Math.min(MiB, e.bigSize! - written);
            const chunk = Buffer.from(block.subarray(0, n));
            chunk.writeUInt32BE(i++, 0);
            written += n;
            if (!sink.write(chunk)) await once(sink, 'drain');
          }
          (sink as unknown as { end(): void }).end();
        })().catch(reject);
      } else if (e.content !== undefined) {
        pack.entry(e.header, Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content), cb);
      } else {
        pack.entry(e.header, cb);
      }
    });
  }
  pack.finalize();
  await done;
  patchPlaceholderNames(out);
}

const PLACEHOLDER = Buffer.from([0x01, 0x02]);

/** Turns placeholder bytes 01 02 in ustar header names into ff fe and fixes those headers' checksums. */
function patchPlaceholderNames(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    for (const h of tarHeadersOfFile(fd)) {
      const block = Buffer.alloc(512);
      fs.readSync(fd, block, 0, 512, h.offset);
      const at = block.subarray(0, 100).indexOf(PLACEHOLDER);
      if (at < 0) continue;
      block[at] = 0xff;
      block[at + 1] = 0xfe;
      writeChecksum(block);
      fs.writeSync(fd, block, 0, 512, h.offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}

export interface TarHeaderInfo {
  offset: number;
  typeflag: string;
  size: number;
}

function parseSize(block: Buffer): number {
  const field = block.subarray(124, 136);
  if (field[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < 12; i++) n = n * 256 + field[i]!;
    return n;
  }
  const s = field.toString('latin1').replace(/[\0 ]+$/g, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** Offsets of all header blocks (meta headers included) up to the end-of-archive marker. PAX size is honoured. */
function tarHeadersOfFile(fd: number): TarHeaderInfo[] {
  const out: TarHeaderInfo[] = [];
  const block = Buffer.alloc(512);
  let offset = 0;
  let paxSize: number | undefined;
  for (;;) {
    if (fs.readSync(fd, block, 0, 512, offset) < 512) break;
    if (block.every((b) => b === 0)) break;
    const typeflag = String.fromCharCode(block[156]!);
    let size = parseSize(block);
    if (typeflag === 'x') {
      const pax = Buffer.alloc(size);
      fs.readSync(fd, pax, 0, size, offset + 512);
      const m = /(?:^|\n)\d+ size=(\d+)\n/.exec(pax.toString('latin1'));
      paxSize = m ? Number(m[1]) : undefined;
    } else if (typeflag !== 'g' && typeflag !== 'L' && typeflag !== 'K') {
      if (paxSize !== undefined) size = paxSize;
      paxSize = undefined;
    }
    out.push({ offset, typeflag, size });
    const hasData = !['1', '2', '3', '4', '5', '6'].includes(typeflag);
    offset += 512 + (hasData ? Math.ceil(size / 512) * 512 : 0);
  }
  return out;
}

export function tarHeaders(file: string): TarHeaderInfo[] {
  const fd = fs.openSync(file, 'r');
  try {
    return tarHeadersOfFile(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Offset just past the last entry's content: where the end-of-archive zero blocks begin. */
export function tarDataEnd(file: string): number {
  const hs = tarHeaders(file);
  const last = hs[hs.length - 1]!;
  const hasData = !['1', '2', '3', '4', '5', '6'].includes(last.typeflag);
  return last.offset + 512 + (hasData ? Math.ceil(last.size / 512) * 512 : 0);
}

export interface TarStats {
  /** Entries as a tar reader sees them (PAX/GNU meta headers not counted). */
  entries: number;
  uidset: number[];
  gidset: number[];
  /** Entry names as tar-stream decodes them (UTF-8, lossy for other bytes). */
  names: string[];
}

/** Reads a tar with tar-stream, an independent parser, to know what the engine should report. */
export async function tarStats(file: string): Promise<TarStats> {
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const uids = new Set<number>();
  const gids = new Set<number>();
  const names: string[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const h = entry.header as TsHeader;
      uids.add(h.pax?.uid !== undefined ? Number(h.pax.uid) : h.uid!);
      gids.add(h.pax?.gid !== undefined ? Number(h.pax.gid) : h.gid!);
      names.push(h.name);
      entry.resume();
    }
  })();
  await pipeline(fs.createReadStream(file, { highWaterMark: MiB }), extract);
  await reading;
  const sort = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);
  return { entries: names.length, uidset: sort(uids), gidset: sort(gids), names };
}

// ---------------------------------------------------------------------------------------------------------------
// The tar-stream fixture

/**
 * The entries the tar-stream writer fixture is made of: ustar names split into prefix/name, PAX path/linkpath for
 * longer and non-ASCII names, a non-UTF-8 ustar name (patched bytes), hard links, symlinks, devices, a fifo, modes
 * with setuid/sticky, SCHILY.xattr PAX records, PAX mtimes with nanoseconds, a directory entry after its content,
 * thousands of files and optionally the big file.
 */
export function tarStreamEntries(options: { big: boolean; many?: number }): TarStreamEntry[] {
  const many = options.many ?? 5000;
  const t = (s: number): Date => new Date(s * 1000);
  const E: TarStreamEntry[] = [];
  const dir = (name: string, mode = 0o755, extra: Partial<TsHeader> = {}): void =>
    void E.push({ header: { name, type: 'directory', mode, mtime: t(1_650_000_000 + E.length), ...extra } });
  const reg = (name: string, content: string | Buffer, extra: Partial<TsHeader> = {}): void =>
    void E.push({ header: { name, type: 'file', mode: 0o644, mtime: t(1_650_000_000 + E.length), ...extra }, content });
  const link = (name: string, type: 'link' | 'symlink', linkname: string, extra: Partial<TsHeader> = {}): void =>
    void E.push({ header: { name, type, linkname, mode: type === 'symlink' ? 0o777 : 0o644, mtime: t(1_650_000_000 + E.length), ...extra } });

  dir('ts-names/');
  reg('ts-names/bad-\u0001\u0002.bin', 'not utf-8 (patched bytes ff fe)\n'); // ustar name, patched after writing
  reg('ts-names/café.txt', 'pax path with é\n');
  dir('ts-names/日本/');
  reg('ts-names/日本/語.txt', 'pax path with kanji\n');

  dir('ts-long/');
  const prefixSplit = 'ts-long/' + 'p'.repeat(90) + '/' + 'q'.repeat(90) + '.txt'; // 193 bytes: ustar prefix + name
  dir('ts-long/' + 'p'.repeat(90) + '/');
  reg(prefixSplit, 'ustar prefix/name split\n');
  reg('ts-long/' + 'c'.repeat(150), 'basename longer than 100: needs pax path\n');
  const deep = 'ts-long/' + Array.from({ length: 15 }, (_, i) => `deep-${i}-abcdefghijklmnop`).join('/');
  let acc = 'ts-long';
  for (const seg of deep.split('/').slice(1)) {
    acc += '/' + seg;
    dir(acc + '/');
  }
  reg(deep + '/bottom.txt', 'path longer than 255\n');

  dir('ts-links/');
  reg('ts-links/target.txt', 'link target\n', { uid: 1000, gid: 1000 });
  link('ts-links/hard', 'link', 'ts-links/target.txt', { uid: 1000, gid: 1000 });
  link('ts-links/hard-to-long', 'link', 'ts-long/' + 'c'.repeat(150));
  link('ts-links/rel', 'symlink', 'target.txt');
  link('ts-links/abs', 'symlink', '/usr/bin/env');
  link('ts-links/long-target', 'symlink', '../ts-long/' + 'c'.repeat(150));
  link('ts-links/dangling', 'symlink', '../no/such/file');

  dir('ts-empty/');
  reg('ts-empty/empty.txt', '');
  dir('ts-empty/empty-dir/', 0o700);

  if (options.big) {
    dir('ts-big/');
    E.push({ header: { name: 'ts-big/blob.bin', type: 'file', mode: 0o600, mtime: t(1_650_000_500) }, bigSize: BIG_SIZE });
    reg('ts-big/after.txt', 'after the big file\n');
  }

  dir('ts-special/');
  E.push({ header: { name: 'ts-special/fifo', type: 'fifo', mode: 0o640, mtime: t(1_650_000_600) } });
  E.push({ header: { name: 'ts-special/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3, mtime: t(1_650_000_601) } });
  E.push({ header: { name: 'ts-special/loop0', type: 'block-device', mode: 0o660, devmajor: 7, devminor: 0, gid: 6, mtime: t(1_650_000_602) } });

  dir('ts-modes/');
  reg('ts-modes/setuid', 'setuid\n', { mode: 0o4755, uid: 1000, gid: 100 });
  reg('ts-modes/setgid', 'setgid\n', { mode: 0o2711 });
  dir('ts-modes/sticky/', 0o1777);
  dir('ts-modes/setgid-dir/', 0o2775, { gid: 50 });

  dir('ts-xattr/');
  reg('ts-xattr/file', 'pax xattrs\n', { pax: { 'SCHILY.xattr.user.foo': 'bar', 'SCHILY.xattr.user.utf8': 'valué' } });
  dir('ts-xattr/dir/', 0o755, { pax: { 'SCHILY.xattr.user.dirattr': 'on a directory' } });
  reg('ts-xattr/ping', 'pretend ping\n', { mode: 0o755, pax: { 'SCHILY.xattr.security.capability': FILE_CAPS_STRING } });

  dir('ts-times/');
  reg('ts-times/ns', 'nanoseconds\n', { pax: { mtime: '1700000000.123456789' } });
  reg('ts-times/us', 'microseconds\n', { pax: { mtime: '1700000001.5' } });
  link('ts-times/symlink', 'symlink', 'ns', { pax: { mtime: '1700000002.000000007' } });
  dir('ts-times/dir/', 0o755, { pax: { mtime: '1700000003.999999999' } });

  // A directory entry after its own content: the entry's metadata must win.
  reg('ts-late/file.txt', 'created before its directory entry\n');
  dir('ts-late/', 0o750, { uid: 1234, gid: 5678, mtime: t(1_600_000_000) });

  dir('ts-owners/');
  reg('ts-owners/a', 'a\n', { uid: 65534, gid: 65534 });
  reg('ts-owners/b', 'b\n', { uid: 200000, gid: 100000 });

  dir('ts-many/');
  for (let d = 0; d < 10; d++) dir(`ts-many/d${d}/`);
  for (let i = 0; i < many; i++) reg(`ts-many/d${i % 10}/f${String(i).padStart(5, '0')}`, `small ${i}\n`);
  return E;
}

export async function tarStreamFixture(out: string, options: { big: boolean; many?: number }): Promise<void> {
  await writeTarStream(out, tarStreamEntries(options));
}

/** A small layer with overlay whiteouts: a file whiteout, an opaque dir whose marker comes after its content. */
export async function whiteoutFixture(out: string): Promise<void> {
  const m = new Date(1_700_000_000_000);
  await writeTarStream(out, [
    { header: { name: 'wh/', type: 'directory', mode: 0o755, mtime: m } },
    { header: { name: 'wh/.wh.gone', type: 'file', mode: 0o644, mtime: m }, content: '' },
    { header: { name: 'wh/kept.txt', type: 'file', mode: 0o644, mtime: m }, content: 'kept\n' },
    { header: { name: 'wh/opaque/', type: 'directory', mode: 0o755, mtime: m } },
    { header: { name: 'wh/opaque/new.txt', type: 'file', mode: 0o644, mtime: m }, content: 'same-layer content survives\n' },
    { header: { name: 'wh/opaque/.wh..wh..opq', type: 'file', mode: 0o644, mtime: m }, content: '' },
    { header: { name: '.wh.top-level-gone', type: 'file', mode: 0o644, mtime: m }, content: '' },
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// A medium layer for the compression tests: a few MiB, compressible text plus one incompressible file.

export function buildMediumTree(root: string): SourceTree {
  for (let d = 0; d < 8; d++) fs.mkdirSync(path.join(root, `dir${d}/sub`), { recursive: true });
  for (let i = 0; i < 240; i++) {
    const size = (i * 7919) % 40000;
    fs.writeFileSync(path.join(root, `dir${i % 8}/${i % 3 === 0 ? 'sub/' : ''}file${i}.txt`), textContent(size, i));
  }
  fs.writeFileSync(path.join(root, 'dir0/random.bin'), prng(2 * MiB + 77, 'medium'));
  fs.writeFileSync(path.join(root, 'zz-last.txt'), textContent(300_000, 999));
  fs.symlinkSync('dir0/random.bin', path.join(root, 'dir1/link-to-random'));
  fs.linkSync(path.join(root, 'dir2/file2.txt'), path.join(root, 'dir3/hardlink'));
  setTimes(root);
  return { root, topLevel: fs.readdirSync(root).sort() };
}

/** The big layer: one BIG_SIZE file first, then a few small files. */
export function buildBigTree(root: string): SourceTree {
  fs.mkdirSync(path.join(root, 'big'));
  writeBigFile(path.join(root, 'big/blob.bin'), BIG_SIZE);
  fs.mkdirSync(path.join(root, 'small'));
  for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(root, `small/f${i}`), `small ${i}\n`);
  setTimes(root);
  return { root, topLevel: ['big', 'small'] };
}

// ---------------------------------------------------------------------------------------------------------------
// Compression

export function gzip(input: string, out: string, level = 6): void {
  runToFile('gzip', ['-c', '-n', `-${level}`, input], out);
}

/** `gzip -k` on a file: the header carries FNAME and MTIME. */
export function gzipNamed(input: string): string {
  run('gzip', ['-k', '-f', input]);
  return input + '.gz';
}

export function zstd(input: string, out: string, args: string[] = []): void {
  runToFile('zstd', ['-q', '-c', ...args, input], out);
}

/** Splits `input` at `at` and compresses each piece separately into `out` (two gzip members / two zstd frames). */
export function twoPieces(input: string, out: string, at: number, codec: 'gzip' | 'zstd'): void {
  const data = fs.readFileSync(input);
  const a = out + '.piece-a';
  const b = out + '.piece-b';
  fs.writeFileSync(a, data.subarray(0, at));
  fs.writeFileSync(b, data.subarray(at));
  fs.writeFileSync(out, '');
  for (const piece of [a, b]) {
    if (codec === 'gzip') runToFile('gzip', ['-c', '-n', piece], out, true);
    else runToFile('zstd', ['-q', '-c', piece], out, true);
  }
  fs.rmSync(a);
  fs.rmSync(b);
}

/** Appends a zstd skippable frame (as zstd:chunked layers carry their metadata in). */
export function appendSkippableFrame(file: string, payload: Buffer): void {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50, 0);
  head.writeUInt32LE(payload.length, 4);
  fs.appendFileSync(file, Buffer.concat([head, payload]));
}

/** One ustar header block (typeflag '0' by default), checksum filled in. */
export function ustarHeader(name: string, size: number, typeflag = '0', mode = 0o644): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write(mode.toString(8).padStart(7, '0') + '\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  b.write((1_700_000_000).toString(8).padStart(11, '0') + '\0', 136, 'latin1');
  b.write(typeflag, 156, 'latin1');
  b.write('ustar\0' + '00', 257, 'latin1');
  writeChecksum(b);
  return b;
}

/**
 * Walking and comparing extracted trees.
 *
 * A tree is walked with Buffer paths (so names that are not valid UTF-8 survive), recording for every entry below
 * the root its type, permission bits (setuid/setgid/sticky included), size, content sha256, symlink target, device
 * numbers, owner, mtime in nanoseconds, xattrs (read with one `getfattr -R` per tree) and inode (for hard-link
 * identity). Two trees are compared field by field and the differences returned as readable lines, so a failing
 * test says exactly which path differs and how.
 */
import fs from 'node:fs';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

export interface TreeNode {
  /** Display form of the path relative to the root (bytes that are not UTF-8 shown as \xNN). */
  path: string;
  /** Raw path bytes relative to the root. */
  raw: Buffer;
  type: NodeType;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  perm: number;
  size?: number;
  sha256?: string;
  /** Symlink target, display form. */
  target?: string;
  /** "major:minor" for device nodes. */
  rdev?: string;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  ino: bigint;
  nlink: number;
  /** xattr name -> hex value. */
  xattrs: Record<string, string>;
}

export interface Tree {
  root: string;
  nodes: Map<string, TreeNode>;
}

/** Readable, unambiguous-enough form of a name: UTF-8 as is, otherwise bytes >= 0x80 as \xNN. */
export function displayName(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(bytes)) return s;
  let out = '';
  for (const b of bytes) out += b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

function typeOf(st: fs.BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

const hashBuf = Buffer.allocUnsafe(1 << 20);

/** sha256 hex of a file's content, read synchronously with a reused 1 MiB buffer. */
export function sha256FileSync(p: string | Buffer): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(p, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, hashBuf, 0, hashBuf.length, null);
      if (n === 0) break;
      h.update(hashBuf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function majorMinor(rdev: bigint): string {
  const r = Number(rdev);
  // glibc encoding of dev_t
  const major = ((r >>> 8) & 0xfff) | (Math.floor(r / 2 ** 32) & ~0xfff);
  const minor = (r & 0xff) | ((r >>> 12) & ~0xff);
  return `${major}:${minor}`;
}

/** Unescapes getfattr's `\ooo` octal escapes in a raw output line. */
function unescapeOctal(line: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < line.length; i++) {
    const b = line[i]!;
    if (b === 0x5c && i + 3 < line.length && /^[0-7]{3}$/.test(line.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(line.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out);
}

/**
 * All xattrs under root (not following symlinks), keyed by display path relative to root ('' for root itself).
 * Values are hex strings.
 */
export function readXattrs(root: string): Map<string, Record<string, string>> {
  const result = new Map<string, Record<string, string>>();
  let out: Buffer;
  try {
    out = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 1 << 30,
    });
  } catch (err) {
    const e = err as { status?: number; stdout?: Buffer; stderr?: Buffer };
    // getfattr exits 1 when some entry has no xattr support; its stdout is still complete.
    if (e.stdout === undefined) throw err;
    out = e.stdout;
  }
  let current: Record<string, string> | undefined;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end < 0) end = out.length;
    const line = out.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const prefix = Buffer.from('# file: ');
    if (line.subarray(0, prefix.length).equals(prefix)) {
      let p = unescapeOctal(line.subarray(prefix.length));
      if (p.equals(Buffer.from('.'))) p = Buffer.alloc(0);
      else if (p.subarray(0, 2).equals(Buffer.from('./'))) p = p.subarray(2);
      current = {};
      result.set(displayName(p), current);
      continue;
    }
    if (!current) continue;
    const text = line.toString('latin1');
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    let value = eq < 0 ? '' : text.slice(eq + 1);
    if (value.startsWith('0x')) value = value.slice(2);
    else if (value.startsWith('"')) value = Buffer.from(value.slice(1, -1), 'latin1').toString('hex');
    current[name] = value.toLowerCase();
  }
  return result;
}

export interface WalkOptions {
  /** Hash file contents (default true). */
  hash?: boolean;
  /** Read xattrs (default true). */
  xattrs?: boolean;
}

/** Walks everything below root (root itself excluded). */
export function walkTree(root: string, options: WalkOptions = {}): Tree {
  const hash = options.hash ?? true;
  const nodes = new Map<string, TreeNode>();
  const rootBuf = Buffer.from(root);
  const visit = (rel: Buffer): void => {
    const abs = rel.length === 0 ? rootBuf : Buffer.concat([rootBuf, Buffer.from('/'), rel]);
    const names = fs.readdirSync(abs, { encoding: 'buffer' }) as Buffer[];
    for (const name of names) {
      const childRel = rel.length === 0 ? Buffer.from(name) : Buffer.concat([rel, Buffer.from('/'), name]);
      const childAbs = Buffer.concat([rootBuf, Buffer.from('/'), childRel]);
      const st = fs.lstatSync(childAbs, { bigint: true });
      const type = typeOf(st);
      const node: TreeNode = {
        path: displayName(childRel),
        raw: childRel,
        type,
        perm: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtimeNs: st.mtimeNs,
        ino: st.ino,
        nlink: Number(st.nlink),
        xattrs: {},
      };
      if (type === 'file') {
        node.size = Number(st.size);
        if (hash) node.sha256 = sha256FileSync(childAbs);
      } else if (type === 'symlink') {
        node.target = displayName(fs.readlinkSync(childAbs, { encoding: 'buffer' }) as Buffer);
      } else if (type === 'char' || type === 'block') {
        node.rdev = majorMinor(st.rdev);
      }
      nodes.set(node.path, node);
      if (type === 'dir') visit(childRel);
    }
  };
  visit(Buffer.alloc(0));
  if (options.xattrs ?? true) {
    for (const [p, attrs] of readXattrs(root)) {
      const node = nodes.get(p);
      if (node) node.xattrs = attrs;
    }
  }
  return { root, nodes };
}

/** Groups of paths (sorted) that share an inode, for non-directories with more than one name in the tree. */
export function hardlinkGroups(tree: Tree): string[][] {
  const byIno = new Map<bigint, string[]>();
  for (const node of tree.nodes.values()) {
    if (node.type === 'dir') continue;
    const list = byIno.get(node.ino) ?? [];
    list.push(node.path);
    byIno.set(node.ino, list);
  }
  return [...byIno.values()]
    .filter((g) => g.length > 1)
    .map((g) => g.sort())
    .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
}

export type Field = 'type' | 'mode' | 'size' | 'content' | 'target' | 'rdev' | 'owner' | 'mtime' | 'xattrs' | 'links';

export const ALL_FIELDS: readonly Field[] = ['type', 'mode', 'size', 'content', 'target', 'rdev', 'owner', 'mtime', 'xattrs', 'links'];

export interface CompareOptions {
  /** What to compare besides which paths exist (default: everything). 'links' = hard-link groups. */
  fields?: readonly Field[];
  /** Paths to leave out of the comparison (and out of hard-link groups). */
  ignore?: (path: string) => boolean;
}

function fmtNs(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${s}.${frac.toString().padStart(9, '0')}`;
}

/**
 * Differences between an expected and an actual tree, one readable line each; [] when they match.
 * Entries are matched by path (both directions); hard-link identity by comparing the groups of paths sharing an inode.
 */
export function compareTrees(expected: Tree, actual: Tree, options: CompareOptions = {}): string[] {
  const fields = new Set(options.fields ?? ALL_FIELDS);
  const ignore = options.ignore ?? (() => false);
  const diffs: string[] = [];
  for (const [p, e] of expected.nodes) {
    if (ignore(p)) continue;
    const a = actual.nodes.get(p);
    if (!a) {
      diffs.push(`${p}: missing (expected ${e.type})`);
      continue;
    }
    const d = (field: string, ev: unknown, av: unknown): void => {
      if (ev !== av) diffs.push(`${p}: ${field} expected ${String(ev)} got ${String(av)}`);
    };
    if (e.type !== a.type) {
      diffs.push(`${p}: type expected ${e.type} got ${a.type}`);
      continue;
    }
    if (fields.has('mode') && e.type !== 'symlink') {
      d('mode', e.perm.toString(8).padStart(4, '0'), a.perm.toString(8).padStart(4, '0'));
    }
    if (fields.has('size')) d('size', e.size, a.size);
    if (fields.has('content')) d('sha256', e.sha256, a.sha256);
    if (fields.has('target')) d('symlink target', e.target, a.target);
    if (fields.has('rdev')) d('rdev', e.rdev, a.rdev);
    if (fields.has('owner')) {
      d('uid', e.uid, a.uid);
      d('gid', e.gid, a.gid);
    }
    if (fields.has('mtime')) d('mtime', fmtNs(e.mtimeNs), fmtNs(a.mtimeNs));
    if (fields.has('xattrs')) d('xattrs', JSON.stringify(sortObj(e.xattrs)), JSON.stringify(sortObj(a.xattrs)));
  }
  for (const p of actual.nodes.keys()) {
    if (ignore(p)) continue;
    if (!expected.nodes.has(p)) diffs.push(`${p}: unexpected ${actual.nodes.get(p)!.type}`);
  }
  if (fields.has('links')) {
    const groups = (t: Tree): Set<string> =>
      new Set(
        hardlinkGroups(t)
          .map((g) => g.filter((p) => !ignore(p)))
          .filter((g) => g.length > 1)
          .map((g) => JSON.stringify(g)),
      );
    const eg = groups(expected);
    const ag = groups(actual);
    for (const g of eg) if (!ag.has(g)) diffs.push(`hard-link group ${g} not found in actual tree`);
    for (const g of ag) if (!eg.has(g)) diffs.push(`unexpected hard-link group ${g} in actual tree`);
  }
  return diffs;
}

function sortObj(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Names directly inside a directory (display form), sorted. */
export function listDir(dir: string): string[] {
  return (fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[]).map(displayName).sort();
}

/** Removes a tree even when it contains read-only directories. */
export function removeTree(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

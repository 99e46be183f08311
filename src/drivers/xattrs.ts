// Extended attributes of a whole tree, read in one pass with getfattr(1) (Debian package `attr`): Node has no xattr
// API, and a diff needs them for overlay's opaque markers and to carry file capabilities and user xattrs. One child
// process per tree, not per file.
import { spawn } from 'node:child_process';
import { CarrierError } from '../errors.js';
import { findOnPath } from '../fs/paths.js';

/** Path relative to the tree root (raw bytes as a latin1 string; '' for the root) → xattr name → value. */
export type TreeXattrs = Map<string, Map<string, Buffer>>;

/** The key {@link TreeXattrs} uses for a relative path given as bytes. */
export function xattrKey(rel: Buffer | undefined): string {
  return rel ? rel.toString('latin1') : '';
}

let getfattr: Promise<string | undefined> | undefined;

/** Every xattr this process may read under `root`, symlinks not followed. */
export async function readTreeXattrs(root: string): Promise<TreeXattrs> {
  const prog = await (getfattr ??= findOnPath('getfattr'));
  if (!prog) {
    throw new CarrierError('CARRIER_UNSUPPORTED', `cannot read the extended attributes under '${root}': getfattr is not installed (Debian package attr)`, {
      path: root,
    });
  }
  const out = await run(prog, ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], root);
  return parse(out);
}

function run(cmd: string, args: string[], cwd: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      if (stderr.length < 4096) stderr += c;
    });
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(new CarrierError(err.code ?? 'CARRIER_UNSUPPORTED', `cannot run '${cmd}': ${err.message}`, { path: cwd, syscall: 'spawn' })),
    );
    child.on('close', (code) => {
      // Status 1: some entry could not be read (no xattr support on it); what could be read is still listed.
      if (code === 0 || code === 1) resolve(Buffer.concat(chunks));
      else reject(new CarrierError('EIO', `reading extended attributes under '${cwd}' failed: ${stderr.trim() || `exit status ${code}`}`, { path: cwd }));
    });
  });
}

const FILE = Buffer.from('# file: ');

function parse(out: Buffer): TreeXattrs {
  const result: TreeXattrs = new Map();
  let current: Map<string, Buffer> | undefined;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end < 0) end = out.length;
    const line = out.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    if (line.subarray(0, FILE.length).equals(FILE)) {
      let p = unescapeOctal(line.subarray(FILE.length));
      if (p.length === 1 && p[0] === 0x2e) p = Buffer.alloc(0);
      else if (p[0] === 0x2e && p[1] === 0x2f) p = p.subarray(2);
      current = new Map();
      result.set(p.toString('latin1'), current);
      continue;
    }
    if (!current) continue;
    const text = line.toString('latin1');
    const eq = text.indexOf('=');
    const name = unescapeOctal(Buffer.from(eq < 0 ? text : text.slice(0, eq), 'latin1')).toString('utf8');
    const value = eq < 0 ? '' : text.slice(eq + 1);
    if (value.startsWith('0x')) current.set(name, Buffer.from(value.slice(2), 'hex'));
    else if (value.startsWith('"')) current.set(name, unescapeOctal(Buffer.from(value.slice(1, -1), 'latin1')));
    else current.set(name, Buffer.alloc(0));
  }
  return result;
}

/** getfattr writes bytes outside printable ASCII, and the backslash, as `\ooo`. */
function unescapeOctal(b: Buffer): Buffer {
  if (!b.includes(0x5c)) return b;
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const oct = b.subarray(i + 1, i + 4).toString('latin1');
    if (b[i] === 0x5c && /^[0-7]{3}$/.test(oct)) {
      out.push(parseInt(oct, 8));
      i += 3;
    } else {
      out.push(b[i]!);
    }
  }
  return Buffer.from(out);
}

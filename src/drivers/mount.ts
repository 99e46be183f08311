// Overlay mounts of layer stacks, three ways:
//   fsopen — the new mount API with one `lowerdir+` per layer (Linux 6.8): any number of layers up to the kernel's
//            500, and the kernel's own error text in failures. Done natively on a thread of its own.
//   mount  — mount(2) with a one-page option string. Paths are made relative to their common directory (the store's
//            overlay/, so a lower is `l/<26 chars>`), which the native side enters on the mounting thread only
//            (unshare(CLONE_FS) + fchdir: no process-wide chdir). About 130 layers fit — podman's limit too.
//   fuse   — fuse-overlayfs (or the configured mount_program), for when native overlay is not permitted.
// `auto` tries them in that order, moving on only when a method is unavailable here (not permitted, not in the
// kernel, or past its size limit); any other failure (a missing layer directory, a bad option) is reported at once.
import { findOnPath } from '../fs/paths.js';
import { isRootless } from '../host.js';
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, lstat, readFile, realpath, statfs } from 'node:fs/promises';
import { release } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CarrierError, fromNative, type NativeFailure } from '../errors.js';
import { native, type NativeOverlayMount } from '../native.js';

export interface OverlayMountSpec {
  /** Absolute paths, topmost first. */
  lowerdirs: string[];
  upperdir?: string;
  workdir?: string;
  target: string;
  /** Opaque markers in user.overlay.* (rootless stores). Default: true when running rootless or in a user namespace. */
  userxattr?: boolean;
  /** From storage.conf `mountopt`, e.g. 'nodev', 'metacopy=on'. Mount attributes and overlay parameters alike. */
  extraOptions?: string[];
  readOnly?: boolean;
}

export type OverlayMountMethod = 'fsopen' | 'mount' | 'fuse';

export interface OverlayMountOptions {
  method?: 'auto' | OverlayMountMethod;
  /** A fuse-overlayfs compatible program (storage.conf `mount_program`); with `auto` it is always used. */
  mountProgram?: string;
}

export interface OverlaySupport {
  /** fsopen("overlay") is permitted here (root, or root in a user namespace). */
  fsopen: boolean;
  /** The kernel takes `lowerdir+` (Linux 6.8). Inferred from the kernel release when fsopen is not permitted. */
  lowerdirPlus: boolean;
  /** The kernel takes `userxattr` (Linux 5.11). Inferred from the kernel release when fsopen is not permitted. */
  userxattr: boolean;
  /** Path of fuse-overlayfs on PATH, when installed. */
  fuseOverlayfs?: string;
}

/** overlayfs's maximum number of lower layers (OVL_MAX_STACK). */
export const MAX_OVERLAY_LOWERS = 500;

let support: Promise<OverlaySupport> | undefined;
let kernel: Promise<Omit<OverlaySupport, 'fuseOverlayfs'>> | undefined;

/** What this process can use, detected once and cached. */
export function overlaySupport(): Promise<OverlaySupport> {
  support ??= detectSupport().catch((err: unknown) => {
    support = undefined;
    throw err;
  });
  return support;
}

async function detectSupport(): Promise<OverlaySupport> {
  const [k, fuse] = await Promise.all([kernelSupport(), findProgram('fuse-overlayfs')]);
  const out: OverlaySupport = { ...k };
  if (fuse) out.fuseOverlayfs = fuse;
  return out;
}

/**
 * What the kernel permits (the native probe), detected once and cached. A mount asks only this: searching PATH for
 * fuse-overlayfs is a file-system round trip per PATH entry, and a mount needs it only when native overlay fails.
 */
function kernelSupport(): Promise<Omit<OverlaySupport, 'fuseOverlayfs'>> {
  kernel ??= (async () => {
    let probe;
    try {
      probe = await native.overlayProbe();
    } catch (err) {
      throw fromNative(err as NativeFailure);
    }
    return {
      fsopen: probe.fsopen,
      lowerdirPlus: probe.lowerdirPlus ?? kernelAtLeast(6, 8),
      userxattr: probe.userxattr ?? kernelAtLeast(5, 11),
    };
  })().catch((err: unknown) => {
    kernel = undefined;
    throw err;
  });
  return kernel;
}

function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

const findProgram = (name: string): Promise<string | undefined> => findOnPath(name);

/** Mounts an overlay of `spec.lowerdirs` (and the upper/work pair, when given) on `spec.target`. */
export async function mountOverlay(spec: OverlayMountSpec, opts: OverlayMountOptions = {}): Promise<{ method: OverlayMountMethod }> {
  const s = normalize(spec);
  const method = opts.method ?? 'auto';
  const userxattr = s.userxattr ?? isRootless();
  if (method === 'fuse' || (method === 'auto' && opts.mountProgram)) {
    await mountFuse(s, opts.mountProgram);
    return { method: 'fuse' };
  }
  if (method === 'fsopen') {
    const sup = await kernelSupport();
    await mountFsopen(s, userxattr, sup.lowerdirPlus);
    return { method };
  }
  if (method === 'mount') {
    await mountLegacy(s, userxattr);
    return { method };
  }

  const sup = await kernelSupport();
  const tried: string[] = [];
  const attempt = async (m: OverlayMountMethod, run: () => Promise<void>): Promise<boolean> => {
    try {
      await run();
      return true;
    } catch (err) {
      if (!unavailable(err)) throw withTried(err, tried);
      tried.push(`${m}: ${(err as Error).message}`);
      return false;
    }
  };
  if (sup.fsopen && sup.lowerdirPlus && (await attempt('fsopen', () => mountFsopen(s, userxattr, true)))) return { method: 'fsopen' };
  if (await attempt('mount', () => mountLegacy(s, userxattr))) return { method: 'mount' };
  const fuse = (await overlaySupport()).fuseOverlayfs;
  if (fuse && (await attempt('fuse', () => mountFuse(s, fuse)))) return { method: 'fuse' };
  throw new CarrierError(
    'CARRIER_UNSUPPORTED',
    `cannot mount an overlay on '${s.target}' here: ${tried.join('; ')}` +
      (fuse ? '' : '; fuse-overlayfs is not installed (Debian package fuse-overlayfs)'),
    { path: s.target },
  );
}

/** A method that cannot work here, as opposed to a mount that is wrong: the next method may succeed. */
function unavailable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'EPERM' || code === 'ENODEV' || code === 'ENOSYS' || code === 'CARRIER_LIMIT_EXCEEDED';
}

function withTried(err: unknown, tried: string[]): unknown {
  if (tried.length === 0 || !(err instanceof Error)) return err;
  err.message += ` (after: ${tried.join('; ')})`;
  return err;
}

interface NormalSpec {
  lowerdirs: string[];
  upperdir?: string;
  workdir?: string;
  target: string;
  userxattr?: boolean;
  extraOptions: string[];
  readOnly: boolean;
}

function normalize(spec: OverlayMountSpec): NormalSpec {
  const bad = (msg: string): never => {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `overlay mount on '${spec.target}': ${msg}`, { path: spec.target });
  };
  if (!spec.target) bad('no target');
  if (!Array.isArray(spec.lowerdirs) || spec.lowerdirs.length === 0) bad('at least one lower directory is needed');
  if (spec.lowerdirs.length > MAX_OVERLAY_LOWERS) {
    throw new CarrierError(
      'CARRIER_LIMIT_EXCEEDED',
      `overlay mount on '${spec.target}': ${spec.lowerdirs.length} lower layers, more than overlayfs allows (${MAX_OVERLAY_LOWERS})`,
      { path: spec.target },
    );
  }
  for (const d of [...spec.lowerdirs, spec.upperdir, spec.workdir]) {
    if (d !== undefined && !isAbsolute(d)) bad(`'${d}' is not an absolute path`);
  }
  if ((spec.upperdir === undefined) !== (spec.workdir === undefined)) bad('upperdir and workdir go together');
  if (spec.upperdir === undefined && spec.lowerdirs.length < 2) {
    // The kernel's rule for a mount without an upper layer (it says so only in dmesg). c/storage's answer is the
    // base layer's empty/ directory as the bottom lower.
    bad('overlayfs needs at least two lower directories when there is no upperdir (add an empty directory, such as the base layer\'s empty/, as the bottom one)');
  }
  for (const o of spec.extraOptions ?? []) {
    if (!o || o.includes(',')) bad(`bad mount option '${o}' (one option per entry)`);
    if (/^(lowerdir|upperdir|workdir)\+?=/.test(o)) bad(`'${o}' is set from the spec, not from extraOptions`);
  }
  const out: NormalSpec = {
    lowerdirs: spec.lowerdirs.map((d) => resolve(d)),
    target: resolve(spec.target),
    extraOptions: [...(spec.extraOptions ?? [])],
    readOnly: spec.readOnly ?? false,
  };
  if (spec.upperdir !== undefined) out.upperdir = resolve(spec.upperdir);
  if (spec.workdir !== undefined) out.workdir = resolve(spec.workdir);
  if (spec.userxattr !== undefined) out.userxattr = spec.userxattr;
  return out;
}

async function callNative(m: NativeOverlayMount): Promise<void> {
  try {
    await native.overlayMount(m);
  } catch (err) {
    throw fromNative(err as NativeFailure);
  }
}

function nativeSpec(s: NormalSpec, method: 'fsopen' | 'mount', userxattr: boolean): NativeOverlayMount {
  const m: NativeOverlayMount = { method, lowerdirs: s.lowerdirs, target: s.target, userxattr, readOnly: s.readOnly, options: s.extraOptions };
  if (s.upperdir !== undefined) m.upperdir = s.upperdir;
  if (s.workdir !== undefined) m.workdir = s.workdir;
  return m;
}

function mountFsopen(s: NormalSpec, userxattr: boolean, lowerdirPlus: boolean): Promise<void> {
  return callNative({ ...nativeSpec(s, 'fsopen', userxattr), lowerdirPlus });
}

async function mountLegacy(s: NormalSpec, userxattr: boolean): Promise<void> {
  const attemptWith = (lowers: string[]): Promise<void> => {
    const dirs = [...lowers, ...(s.upperdir ? [s.upperdir, s.workdir!] : [])];
    const base = commonDir(dirs);
    const rel = (p: string): string => relative(base, p) || '.';
    const m = nativeSpec(s, 'mount', userxattr);
    m.cwd = base;
    m.lowerdirs = lowers.map(rel);
    if (s.upperdir) {
      m.upperdir = rel(s.upperdir);
      m.workdir = rel(s.workdir!);
    }
    return callNative(m);
  };
  try {
    await attemptWith(s.lowerdirs);
  } catch (err) {
    if ((err as CarrierError).code !== 'CARRIER_LIMIT_EXCEEDED') throw err;
    // Layers named by their diff/ directories: the store's l/ links are shorter (what c/storage mounts with).
    const short = await Promise.all(s.lowerdirs.map(viaLink));
    if (short.every((p, i) => p === s.lowerdirs[i])) throw err;
    await attemptWith(short);
  }
}

/** `<home>/<id>/diff` as `<home>/l/<link>` when that link leads to the same directory; else the path unchanged. */
async function viaLink(lower: string): Promise<string> {
  if (basename(lower) !== 'diff') return lower;
  try {
    const link = (await readFile(join(dirname(lower), 'link'), 'utf8')).trim();
    if (!/^[A-Z2-7]{26}$/.test(link)) return lower;
    const candidate = join(dirname(dirname(lower)), 'l', link);
    return (await realpath(candidate)) === (await realpath(lower)) ? candidate : lower;
  } catch {
    return lower;
  }
}

/** The deepest directory containing every one of `paths` (all absolute and normalized). */
function commonDir(paths: string[]): string {
  let common = dirname(paths[0]!).split(sep);
  for (const p of paths.slice(1)) {
    const parts = dirname(p).split(sep);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join(sep) || sep;
}

async function mountFuse(s: NormalSpec, program: string | undefined): Promise<void> {
  const prog = program ?? (await findProgram('fuse-overlayfs'));
  if (!prog) {
    throw new CarrierError('CARRIER_UNSUPPORTED', `cannot mount '${s.target}' with fuse-overlayfs: it is not installed (Debian package fuse-overlayfs)`, {
      path: s.target,
    });
  }
  for (const d of [...s.lowerdirs, s.upperdir, s.workdir]) {
    if (d !== undefined && /[,:]/.test(d)) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', `fuse-overlayfs cannot take the directory '${d}': it contains ',' or ':'`, { path: d });
    }
  }
  for (const d of s.lowerdirs) {
    // fuse-overlayfs reports a missing layer without naming it; check first so the error does.
    try {
      await access(d, constants.F_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new CarrierError(e.code ?? 'ENOENT', `mounting overlay on '${s.target}': the lower directory '${d}' is missing`, {
        path: d,
        syscall: 'access',
        ...(e.errno !== undefined ? { errno: e.errno } : {}),
      });
    }
  }
  const opts = [`lowerdir=${s.lowerdirs.join(':')}`];
  if (s.upperdir) opts.push(`upperdir=${s.upperdir}`, `workdir=${s.workdir!}`);
  opts.push(...s.extraOptions);
  if (s.readOnly && !s.extraOptions.includes('ro')) opts.push('ro');
  const r = await runProgram(prog, ['-o', opts.join(','), s.target]);
  if (r.code !== 0) {
    throw new CarrierError(
      'CARRIER_MOUNT_FAILED',
      `mounting overlay on '${s.target}' with ${prog} failed (${r.signal ? `signal ${r.signal}` : `exit status ${r.code}`}): ${r.stderr.trim() || 'no message'}`,
      { path: s.target },
    );
  }
}

interface ProgramResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs a mount helper and waits for it to exit. fuse-overlayfs leaves a daemon behind that may keep our stderr pipe
 * open, so completion is its exit (plus a moment for the last of stderr), not the pipe's end.
 */
function runProgram(cmd: string, args: string[]): Promise<ProgramResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let settled = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      if (stderr.length < 65536) stderr += c;
    });
    const done = (r: ProgramResult): void => {
      if (settled) return;
      settled = true;
      child.stderr!.destroy();
      resolvePromise(r);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      reject(new CarrierError(err.code ?? 'CARRIER_MOUNT_FAILED', `cannot run '${cmd}': ${err.message}`, { path: cmd, syscall: 'spawn' }));
    });
    child.on('exit', (code, signal) => {
      const timer = setTimeout(() => done({ code, signal, stderr }), 200);
      child.stderr!.once('end', () => {
        clearTimeout(timer);
        done({ code, signal, stderr });
      });
      if (child.stderr!.readableEnded) {
        clearTimeout(timer);
        done({ code, signal, stderr });
      }
    });
  });
}

/**
 * Whether something is mounted on the directory `target`: a mount point's device differs from its parent
 * directory's (an overlay's and a FUSE file system's each have their own). Both looked at together: one thread-pool
 * round trip, where {@link findMount} resolves the path and reads the whole mount table (six or more, one after
 * another, for every mount, umount and rm). A `target` that cannot be looked at for any reason but its absence (a
 * FUSE mount whose daemon is gone answers ENOTCONN) is decided by the mount table.
 */
export async function isMounted(target: string): Promise<boolean> {
  const abs = resolve(target);
  const look = (p: string): Promise<Awaited<ReturnType<typeof lstat>> | 'missing' | 'unknown'> =>
    lstat(p).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 'missing' : 'unknown'));
  const [t, parent] = await Promise.all([look(abs), look(dirname(abs))]);
  if (t === 'missing') return false;
  if (t === 'unknown' || parent === 'unknown' || parent === 'missing') return (await findMount(abs)) !== undefined;
  return t.isDirectory() && t.dev !== parent.dev;
}

/** FUSE's file-system magic number (statfs f_type). */
const FUSE_SUPER_MAGIC = 0x65735546;

/** The mount on `target` in this process's mount namespace (the topmost when several are stacked). */
export async function findMount(target: string): Promise<{ fstype: string; source: string; options: string } | undefined> {
  // together: neither needs the other, and a short command (mount, umount, rm) waits for both
  const [abs, info] = await Promise.all([realpath(resolve(target)).catch(() => resolve(target)), readFile('/proc/self/mountinfo', 'utf8')]);
  let found: { fstype: string; source: string; options: string } | undefined;
  for (const line of info.split('\n')) {
    const sepAt = line.indexOf(' - ');
    if (sepAt < 0) continue;
    const head = line.slice(0, sepAt).split(' ');
    const tail = line.slice(sepAt + 3).split(' ');
    if (unescapeMountinfo(head[4] ?? '') !== abs) continue;
    found = { fstype: tail[0] ?? '', source: unescapeMountinfo(tail[1] ?? ''), options: tail[2] ?? '' };
  }
  return found;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Unmounts `target`: fusermount3 -u for a FUSE mount (what an unprivileged owner can use), else umount2. */
export async function unmountOverlay(
  target: string,
  opts: { lazy?: boolean; /** findMount(target), when the caller has just read it */ mounted?: Awaited<ReturnType<typeof findMount>> } = {},
): Promise<void> {
  const abs = resolve(target);
  const lazy = opts.lazy ?? false;
  // FUSE or not: from the file system's magic number when the caller did not read the mount table (one call), and
  // from the table when that fails (a FUSE mount whose daemon is gone)
  const fuse =
    'mounted' in opts
      ? opts.mounted?.fstype.startsWith('fuse') === true
      : await statfs(abs).then(
          (s) => s.type === FUSE_SUPER_MAGIC,
          async () => (await findMount(abs))?.fstype.startsWith('fuse') === true,
        );
  if (fuse) {
    const fusermount = (await findProgram('fusermount3')) ?? (await findProgram('fusermount'));
    if (fusermount) {
      const r = await runProgram(fusermount, ['-u', ...(lazy ? ['-z'] : []), abs]);
      if (r.code === 0) return;
      throw new CarrierError('CARRIER_MOUNT_FAILED', `unmounting '${abs}' with ${fusermount} failed: ${r.stderr.trim() || `exit status ${r.code}`}`, {
        path: abs,
      });
    }
  }
  try {
    await native.overlayUnmount(abs, lazy);
  } catch (err) {
    throw fromNative(err as NativeFailure);
  }
}

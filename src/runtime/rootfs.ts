// Reading a container's root file system safely: paths are resolved inside the root the way the kernel would
// resolve them after a chroot, so an image's absolute symlink (`/etc/passwd -> /host/file`) never reaches the host.
import { lstat, readlink, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { CarrierError } from '../errors.js';
import { makeDirs } from '../fs/batch.js';

/**
 * Resolves `path` (absolute, as seen inside the container) to a host path under `root`, following symlinks as if
 * `root` were `/`. Components that do not exist are kept as they are. Gives up after 255 links (ELOOP).
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = posix.normalize('/' + path).split('/').filter((c) => c !== '');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch {
      done.push(part, ...pending.filter((p) => p !== '.'));
      return join(root, ...posix.normalize('/' + done.join('/')).split('/'));
    }
    if (st.isSymbolicLink()) {
      if (++links > 255) throw new CarrierError('ELOOP', `too many symbolic links resolving ${path} in the container`, { path });
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((c) => c !== ''));
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

/** The content of a file of the container (resolved in the root), or undefined when it is missing. */
export async function readRootFile(root: string, path: string): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  try {
    const st = await lstat(host);
    if (!st.isFile() || st.size > 16 << 20) return undefined;
    return await readFile(host, 'utf8');
  } catch {
    return undefined;
  }
}

/** Creates a directory (and its parents) inside the container's root, as root would inside the container. */
export async function mkdirInRoot(root: string, path: string, mode = 0o755): Promise<void> {
  const host = await resolveInRoot(root, path);
  await makeDirs(host, mode);
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  /** The user's name when /etc/passwd knows it. */
  name?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]! });
  }
  return out;
}

function parseGroup(text: string | undefined): { name: string; gid: number; members: string[] }[] {
  const out: { name: string; gid: number; members: string[] }[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(',').filter((m) => m !== '') });
  }
  return out;
}

const NUMERIC = /^\d+$/;

/**
 * Resolves a user spec as podman does: `name`, `uid`, `name:group`, `uid:gid` (either side a name or a number),
 * looked up in the image's own /etc/passwd and /etc/group. A numeric uid /etc/passwd does not know runs with gid 0
 * (or the given group) and HOME=/; an unknown name is an error.
 */
export async function resolveUser(root: string, spec: string | undefined): Promise<ResolvedUser> {
  const value = spec === undefined || spec === '' ? '0' : spec;
  const colon = value.indexOf(':');
  const userPart = colon === -1 ? value : value.slice(0, colon);
  const groupPart = colon === -1 ? undefined : value.slice(colon + 1);
  const passwd = parsePasswd(await readRootFile(root, '/etc/passwd'));
  const groups = parseGroup(await readRootFile(root, '/etc/group'));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new CarrierError('CARRIER_NOT_FOUND', `unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new CarrierError('CARRIER_NOT_FOUND', `unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `user ${value} is out of range`);
  // Supplementary groups: every group of /etc/group listing the user by name (only when no group was forced).
  const additionalGids =
    entry && groupPart === undefined ? [...new Set(groups.filter((g) => g.members.includes(entry!.name) && g.gid !== gid).map((g) => g.gid))] : [];
  const out: ResolvedUser = { uid, gid, additionalGids, home: entry?.home || '/' };
  if (entry) out.name = entry.name;
  return out;
}

// Rootless: the user + mount namespace `podman unshare` makes. Root in the namespace is the user; with ranges in
// /etc/subuid and /etc/subgid, ids 1..n map to them (set up by the setuid newuidmap/newgidmap helpers), else only the
// user's own uid/gid is mapped. The mechanism is util-linux's unshare(1) (`--map-root-user`, plus `--map-users` /
// `--map-groups`, which call newuidmap/newgidmap), exec'd in place so the pid, stdio and exit status stay ours.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { CarrierError } from '../errors.js';
import { currentIdMap, inUserNamespace } from '../host.js';

/** Set in the environment of a process Carrier started inside its namespace (podman uses _CONTAINERS_USERNS_CONFIGURED). */
export const USERNS_ENV = '_CARRIER_USERNS_CONFIGURED';

/** Only one id is mapped in this namespace (no subordinate ranges): a single-mapping namespace. */
export function singleIdMapping(): boolean {
  if (!inUserNamespace()) return false;
  const total = currentIdMap('uid').reduce((n, m) => n + m.size, 0);
  return total <= 1;
}

export interface SubIdRange {
  start: number;
  count: number;
}

/** The user's ranges in /etc/subuid or /etc/subgid (by name or by numeric id, as shadow-utils accepts both). */
export function subIdRanges(kind: 'uid' | 'gid', user: { name: string; id: number }, file = `/etc/sub${kind}`): SubIdRange[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner === undefined || start === undefined || count === undefined) continue;
    if (owner !== user.name && owner !== String(user.id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

export interface UnshareCommand {
  /** unshare(1) and its arguments, ending with `--`; append the program and its arguments. */
  argv: string[];
  /** How ids are mapped, for messages and `carrier info`. */
  mapping: 'subid' | 'single';
  uidRanges: SubIdRange[];
  gidRanges: SubIdRange[];
}

/**
 * The unshare(1) command line that puts a program into a new user + mount namespace with the user as root. Only
 * the first subordinate range is used (unshare's --map-users takes one range, as podman's default mapping does).
 */
export function unshareCommand(): UnshareCommand {
  const info = userInfo();
  const uid = process.getuid?.() ?? info.uid;
  const gid = process.getgid?.() ?? info.gid;
  const uidRanges = subIdRanges('uid', { name: info.username, id: uid });
  const gidRanges = subIdRanges('gid', { name: groupName(gid) ?? info.username, id: gid }).concat(
    subIdRanges('gid', { name: info.username, id: uid }),
  );
  const argv = ['unshare', '--user', '--mount', '--propagation', 'private'];
  if (uidRanges.length > 0 && gidRanges.length > 0) {
    argv.push(
      `--map-users=${uidRanges[0]!.start},1,${uidRanges[0]!.count}`,
      `--map-groups=${gidRanges[0]!.start},1,${gidRanges[0]!.count}`,
      '--map-user=0',
      '--map-group=0',
    );
    return { argv: [...argv, '--'], mapping: 'subid', uidRanges, gidRanges };
  }
  argv.push('--map-root-user');
  return { argv: [...argv, '--'], mapping: 'single', uidRanges: [], gidRanges: [] };
}

function groupName(gid: number): string | undefined {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && Number(f[2]) === gid) return f[0];
    }
  } catch {
    /* no /etc/group */
  }
  return undefined;
}

/** Throws when unshare(1) is missing. */
export function requireUnshare(found: boolean): void {
  if (!found) throw new CarrierError('CARRIER_NOT_FOUND', "unshare(1) not found: install Debian's 'util-linux' to run rootless containers");
}

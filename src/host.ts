// Facts about the host process that several layers need, answered once here: which user namespace we are in,
// whether we run without privilege, and whether another process is still alive. Reads of /proc only (no disk I/O).
import { readFileSync } from 'node:fs';

/** One line of /proc/self/uid_map or gid_map: ids from `containerID` on map to `hostID` on, `size` of them. */
export interface IdMapLine {
  containerID: number;
  hostID: number;
  size: number;
}

const FULL_RANGE = 4294967295;
const idMaps = new Map<'uid' | 'gid', IdMapLine[]>();

/** The id mappings of this process's user namespace (/proc/self/uid_map or gid_map). Read once per process. */
export function currentIdMap(kind: 'uid' | 'gid'): IdMapLine[] {
  let map = idMaps.get(kind);
  if (map === undefined) {
    try {
      map = readFileSync(`/proc/self/${kind}_map`, 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number))
        .filter((f) => f.length === 3 && f.every(Number.isFinite))
        .map(([c, h, s]) => ({ containerID: c!, hostID: h!, size: s! }));
    } catch {
      map = [{ containerID: 0, hostID: 0, size: FULL_RANGE }];
    }
    idMaps.set(kind, map);
  }
  return map;
}

/** True inside a user namespace other than the initial one (the initial one maps all 2^32-1 ids onto themselves). */
export function inUserNamespace(): boolean {
  const map = currentIdMap('uid');
  return !(map.length === 1 && map[0]!.containerID === 0 && map[0]!.hostID === 0 && map[0]!.size === FULL_RANGE);
}

/**
 * True when Carrier runs without the host's root privilege: as an unprivileged user, or as root of a user namespace
 * (where uid 0 is not the host's root). Layers are then extracted by the rootless rules and mounts need userxattr.
 */
export function isRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0 || inUserNamespace();
}

/** True when the process exists and is not a zombie (exited, not yet reaped by its parent). */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const end = stat.lastIndexOf(')');
    return stat.slice(end + 2, end + 3) !== 'Z';
  } catch {
    return true;
  }
}

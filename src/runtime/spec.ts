// The OCI runtime configuration (config.json) for a container: the image's config (Entrypoint, Cmd, Env,
// WorkingDir, User) with the user's flags on top, the file systems every Linux container expects, namespaces, and
// podman's defaults for capabilities, masked paths and limits. Field names and meanings follow the OCI runtime
// spec (config.md, config-linux.md).
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { CarrierError } from '../errors.js';
import { resolveUser, type ResolvedUser } from './rootfs.js';

/** The part of an OCI image config that decides how a container runs. */
export interface ImageRunConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
}

/** A mount as the OCI runtime spec describes it. */
export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal?: boolean;
    user: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities?: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>;
    rlimits?: { type: string; soft: number; hard: number }[];
    noNewPrivileges?: boolean;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: OciMount[];
  annotations?: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: OciIdMapping[];
    gidMappings?: OciIdMapping[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    sysctl?: Record<string, string>;
  };
}

/** podman 4's default capability set (containers.conf `default_capabilities`). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETFCAP',
  'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

const MASKED_PATHS = [
  '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/fs/selinux', '/sys/dev/block',
];
const READONLY_PATHS = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A user-requested mount, already resolved to a host path (bind, named volume) or a tmpfs. */
export type ContainerMount =
  | { type: 'bind'; source: string; destination: string; readOnly?: boolean; volume?: string }
  | { type: 'tmpfs'; destination: string; options?: string[] };

export interface SpecInput {
  /** The merged root file system (host path). */
  rootfs: string;
  /** The container id (the hostname is its first 12 characters). */
  id: string;
  image: ImageRunConfig;
  /** Replaces the image's Cmd. */
  cmd?: string[];
  /** Replaces the image's Entrypoint (an empty array clears it). */
  entrypoint?: string[];
  /** `K=V` entries added to (or replacing) the image's; a bare `K` takes the value from `hostEnv`. */
  env?: string[];
  workdir?: string;
  user?: string;
  mounts?: ContainerMount[];
  terminal?: boolean;
  /**
   * The container's user namespace. `undefined`: none of its own (rootful, or rootless already inside Carrier's
   * namespace, which the container then shares as podman's rootless containers do). With mappings: a new user
   * namespace with them (runc's rootless mode when it runs unprivileged).
   */
  userNamespace?: { uidMappings: OciIdMapping[]; gidMappings: OciIdMapping[] };
  /**
   * Only one uid and gid (0) are mapped in the namespace the runtime runs in: devpts then cannot use gid 5 and
   * supplementary groups cannot be set.
   */
  singleIdMapping?: boolean;
  hostEnv?: NodeJS.ProcessEnv;
  /** Hard limits the runtime may not exceed (default: this process's, from /proc/self/limits). */
  hardLimits?: { nofile?: number; nproc?: number };
  annotations?: Record<string, string>;
}

export interface GeneratedSpec {
  spec: OciSpec;
  user: ResolvedUser;
}

/** Entrypoint + Cmd as the container will run them (flags replacing the image's), or an error when empty. */
export function processArgs(image: ImageRunConfig, cmd?: string[], entrypoint?: string[]): string[] {
  const ep = entrypoint ?? image.Entrypoint ?? [];
  // As in docker and podman, a new entrypoint drops the image's Cmd unless a command is given too.
  const c = cmd !== undefined && cmd.length > 0 ? cmd : entrypoint !== undefined ? [] : image.Cmd ?? [];
  const args = [...ep, ...c];
  if (args.length === 0) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'no command or entrypoint provided, and no CMD or ENTRYPOINT from image');
  return args;
}

/** Merges environment lists the way podman does: later entries replace earlier ones with the same key. */
export function mergeEnv(base: readonly string[], extra: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  const map = new Map<string, string>();
  const put = (entry: string, fromFlag: boolean): void => {
    const eq = entry.indexOf('=');
    if (eq === -1) {
      if (!fromFlag) return;
      // `-e NAME` passes the host's value, and nothing when the host has none.
      const v = hostEnv[entry];
      if (v !== undefined) map.set(entry, v);
      return;
    }
    const key = entry.slice(0, eq);
    if (key === '') throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid environment variable "${entry}"`);
    map.set(key, entry.slice(eq + 1));
  };
  for (const e of base) put(e, false);
  for (const e of extra) put(e, true);
  return [...map].map(([k, v]) => `${k}=${v}`);
}

/** This process's hard limits for open files and processes, from /proc/self/limits. */
export async function currentHardLimits(): Promise<{ nofile?: number; nproc?: number }> {
  const out: { nofile?: number; nproc?: number } = {};
  try {
    const text = await readFile('/proc/self/limits', 'utf8');
    for (const line of text.split('\n')) {
      const m = /^Max (open files|processes)\s+(\S+)\s+(\S+)/.exec(line);
      if (!m) continue;
      const hard = m[3] === 'unlimited' ? Infinity : Number(m[3]);
      if (m[1] === 'open files') out.nofile = hard;
      else out.nproc = hard;
    }
  } catch {
    /* not Linux /proc: leave the runtime's defaults */
  }
  return out;
}

function checkDestination(d: string, what: string): string {
  if (!d.startsWith('/')) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `${what} destination "${d}" must be an absolute path`);
  return posix.normalize(d);
}

/** Generates config.json for a container whose root file system is mounted at `input.rootfs`. */
export async function generateSpec(input: SpecInput): Promise<GeneratedSpec> {
  const user = await resolveUser(input.rootfs, input.user ?? input.image.User);
  const args = processArgs(input.image, input.cmd, input.entrypoint);
  const hostname = input.id.slice(0, 12);
  const env = mergeEnv(input.image.Env ?? [], input.env ?? [], input.hostEnv);
  const has = (k: string): boolean => env.some((e) => e.startsWith(`${k}=`));
  if (!has('PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!has('TERM')) env.push('TERM=xterm');
  if (!has('container')) env.push('container=carrier');
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${hostname}`);
  if (!has('HOME')) env.push(`HOME=${user.home}`);

  const cwd = checkDestination(input.workdir ?? (input.image.WorkingDir || '/'), 'working directory');

  // Limits: podman's defaults (nofile 1048576, nproc 32768), never above what this process may set.
  const hard = input.hardLimits ?? (await currentHardLimits());
  const rlimits: { type: string; soft: number; hard: number }[] = [];
  const limit = (type: string, want: number, max: number | undefined): void => {
    const v = Math.min(want, max ?? want);
    if (Number.isFinite(v) && v > 0) rlimits.push({ type, soft: v, hard: v });
  };
  limit('RLIMIT_NOFILE', 1048576, hard.nofile);
  limit('RLIMIT_NPROC', 32768, hard.nproc);

  // Capabilities: podman's default set; a non-root user keeps only the bounding set (podman 4 does the same).
  const caps = DEFAULT_CAPABILITIES;
  const capabilities = {
    bounding: [...caps],
    effective: user.uid === 0 ? [...caps] : [],
    permitted: user.uid === 0 ? [...caps] : [],
    inheritable: [] as string[],
    ambient: [] as string[],
  };

  const devpts = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
  if (!input.singleIdMapping) devpts.push('gid=5');
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: devpts },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  const taken = new Set(mounts.map((m) => m.destination));
  for (const m of input.mounts ?? []) {
    const destination = checkDestination(m.destination, m.type === 'tmpfs' ? 'tmpfs' : 'volume');
    if (m.type === 'tmpfs') {
      mounts.push({ destination, type: 'tmpfs', source: 'tmpfs', options: m.options ?? ['rw', 'noexec', 'nosuid', 'nodev'] });
    } else {
      mounts.push({ destination, type: 'bind', source: m.source, options: ['rbind', 'rprivate', m.readOnly ? 'ro' : 'rw'] });
    }
    // A later mount on the same destination replaces a default one (e.g. --tmpfs /dev/shm).
    if (taken.has(destination)) {
      const i = mounts.findIndex((x) => x.destination === destination);
      mounts.splice(i, 1);
    }
    taken.add(destination);
  }

  const namespaces: { type: string }[] = [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: input.terminal === true,
      user: { uid: user.uid, gid: user.gid, umask: 0o022, ...(user.additionalGids.length > 0 && !input.singleIdMapping ? { additionalGids: user.additionalGids } : {}) },
      args,
      env,
      cwd,
      capabilities,
      rlimits,
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: false },
    hostname,
    mounts,
    annotations: { 'io.container.manager': 'carrier', ...(input.annotations ?? {}) },
    linux: {
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
  if (input.userNamespace) {
    namespaces.push({ type: 'user' });
    spec.linux.uidMappings = input.userNamespace.uidMappings;
    spec.linux.gidMappings = input.userNamespace.gidMappings;
  }
  return { spec, user };
}

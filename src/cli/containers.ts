// Container commands: run, create, start, mount, umount, rm, ps, container inspect, volume …, unshare.
//
// Exit codes (podman's): `run` returns the container's own exit code; 125 when Carrier itself fails (unknown image,
// bad flags, no runtime), 126 when the command cannot be invoked (not executable, or the OCI runtime failed to start
// it), 127 when the command is not found.
//
// Rootless: overlay mounts need a user + mount namespace, so `run`, `start`, `mount`, `umount` and `rm` re-run
// Carrier inside one (as podman does) unless they already run in it (`carrier unshare`). A mount made by
// `carrier mount` exists only inside the namespace that made it: use it from within `carrier unshare`.
import { spawn } from 'node:child_process';
import { CarrierError } from '../errors.js';
import { resolveStoreConfig } from '../store/config.js';
import {
  createContainer,
  inspectContainer,
  listContainers,
  mountContainer,
  pruneVolumes,
  removeContainer,
  removeVolume,
  unmountContainer,
  volumeUsers,
  type ContainerDetails,
  type CreateContainerOptions,
  pruneContainers,
} from '../containers/containers.js';
import { runContainer, startContainer } from '../containers/run.js';
import { createVolume, inspectVolume, listVolumes, type VolumeInfo } from '../containers/volumes.js';
import { USERNS_ENV, unshareCommand } from '../runtime/userns.js';
import { inUserNamespace, isRootless } from '../host.js';
import { SignalRelay, findOnPath } from '../runtime/runtime.js';
import { UsageError, parseArgs, stringFlag } from './args.js';
import { goJson, renderTable, renderTemplate, timeAgo, humanDuration } from './format.js';
import { ExitError, type GlobalOptions } from './errors.js';
import { withStore } from './open-store.js';

function help(argv: string[], text: string): boolean {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(text);
    return true;
  }
  return false;
}

// ---- rootless re-exec --------------------------------------------------------------------------------------------

/** True when this command must run inside Carrier's user namespace and does not yet. */
function needsNamespace(): boolean {
  return (process.geteuid?.() ?? 0) !== 0 && !inUserNamespace() && process.env[USERNS_ENV] !== '1';
}

/**
 * Runs this same Carrier command inside a new user + mount namespace (root there = this user), with the store's
 * locations resolved here first so the namespace (where the uid is 0) opens the same store. Returns its exit code.
 */
async function reexecInNamespace(g: GlobalOptions, argv: string[]): Promise<number> {
  if (!(await findOnPath('unshare'))) throw new CarrierError('CARRIER_NOT_FOUND', "unshare(1) not found: install Debian's 'util-linux' for rootless containers");
  const config = await resolveStoreConfig({
    ...(g.root !== undefined ? { root: g.root } : {}),
    ...(g.runroot !== undefined ? { runroot: g.runroot } : {}),
    ...(g.driver !== undefined ? { driver: g.driver } : {}),
  });
  const un = unshareCommand();
  const script = process.argv[1]!;
  const args = [...un.argv.slice(1), process.execPath, script, '--root', config.graphroot, '--runroot', config.runroot, ...(g.driver ? ['--storage-driver', g.driver] : []), ...argv];
  return runForwarding(un.argv[0]!, args, { ...process.env, [USERNS_ENV]: '1', CARRIER_ROOTLESS_UID: String(process.getuid?.() ?? '') });
}

/** Spawns a child with our stdio and passes on the signals a terminal would not already deliver to it. */
function runForwarding(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    const sigs: NodeJS.Signals[] = process.stdin.isTTY ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    // With a terminal, Ctrl-C reaches the child (same process group) directly: only keep Carrier alive meanwhile.
    const ignore = (): void => {};
    if (process.stdin.isTTY) process.on('SIGINT', ignore);
    const handlers = sigs.map((s) => {
      const h = (): void => {
        child.kill(s);
      };
      process.on(s, h);
      return [s, h] as const;
    });
    const done = (): void => {
      for (const [s, h] of handlers) process.off(s, h);
      process.off('SIGINT', ignore);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('close', (code, signal) => {
      done();
      resolve(code ?? (signal ? 128 + (signalNumbers[signal] ?? 15) : 125));
    });
  });
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

// ---- run / create ------------------------------------------------------------------------------------------------

const RUN_FLAGS_HELP = `Options:
  -e, --env K=V          set an environment variable (K alone: take the value from Carrier's environment)
      --entrypoint CMD   replace the image's ENTRYPOINT (a JSON array or a single command)
  -i, --interactive      keep stdin attached
      --name NAME        the container's name (default: a random one)
      --rm               remove the container when it exits (run only)
      --runtime NAME     OCI runtime: runc or crun (default: runc, else crun, found on PATH)
  -t, --tty              allocate a pseudo-terminal (the runtime proxies it; works when stdin is a terminal)
      --tmpfs DST[:OPTS] mount a tmpfs at DST
  -u, --user USER        user[:group], names looked up in the image's /etc/passwd and /etc/group
  -v, --volume SRC:DST[:ro]  bind mount SRC (an absolute path) or the named volume SRC (made if missing) at DST
  -w, --workdir DIR      working directory inside the container
`;

const RUN_HELP = `Usage: carrier run [options] IMAGE [COMMAND [ARG...]]

Run a command in a new container, in the foreground, with stdin/stdout/stderr attached. The exit code is the
container's; 125 a Carrier error, 126 the command cannot be invoked, 127 the command was not found.
The container has its own pid, mount, ipc, uts and network namespaces (only loopback: no network). Rootless, it
runs in Carrier's user namespace (see 'carrier unshare').

${RUN_FLAGS_HELP}`;

const CREATE_HELP = `Usage: carrier create [options] IMAGE [COMMAND [ARG...]]

Create a container (record and read-write layer, as podman lays them out) without starting it; prints its id.

${RUN_FLAGS_HELP}`;

const VALUED = new Set(['-e', '--env', '-w', '--workdir', '-u', '--user', '-v', '--volume', '--tmpfs', '--name', '--runtime', '--entrypoint']);
const SHORT_BOOL = new Set(['i', 't']);

interface RunArgs {
  options: CreateContainerOptions;
  image: string;
}

/** Parses `[flags] IMAGE [CMD...]`: flags stop at the image; everything after it is the command. */
export function parseRunArgs(argv: string[], allowRm: boolean): RunArgs {
  const o: CreateContainerOptions = {};
  const env: string[] = [];
  const volumes: string[] = [];
  const tmpfs: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq === -1 ? arg : arg.slice(0, eq);
    // -e K=V, -eK=V, --env=K=V
    let shortValued: string | undefined;
    if (!arg.startsWith('--') && arg.length > 2 && VALUED.has(arg.slice(0, 2))) shortValued = arg.slice(0, 2);
    if (VALUED.has(name) || shortValued) {
      const flag = shortValued ?? name;
      const value = shortValued ? arg.slice(2) : eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      switch (flag) {
        case '-e':
        case '--env':
          env.push(value);
          break;
        case '-w':
        case '--workdir':
          o.workdir = value;
          break;
        case '-u':
        case '--user':
          o.user = value;
          break;
        case '-v':
        case '--volume':
          volumes.push(value);
          break;
        case '--tmpfs':
          tmpfs.push(value);
          break;
        case '--name':
          o.name = value;
          break;
        case '--runtime':
          o.runtime = value;
          break;
        case '--entrypoint':
          o.entrypoint = value.startsWith('[') ? parseJsonArray(value) : value === '' ? [] : [value];
          break;
      }
      continue;
    }
    if (eq !== -1) throw new UsageError(`${name} takes no value`);
    switch (arg) {
      case '--rm':
        if (!allowRm) throw new UsageError('--rm is only valid with run');
        o.autoRemove = true;
        continue;
      case '--interactive':
        o.interactive = true;
        continue;
      case '--tty':
        o.tty = true;
        continue;
      case '-d':
      case '--detach':
        throw new UsageError('detached containers are not supported yet: Carrier runs containers in the foreground');
    }
    // Combined short booleans: -it, -ti
    if (/^-[a-z]+$/.test(arg) && [...arg.slice(1)].every((c) => SHORT_BOOL.has(c))) {
      for (const c of arg.slice(1)) {
        if (c === 'i') o.interactive = true;
        if (c === 't') o.tty = true;
      }
      continue;
    }
    throw new UsageError(`unknown flag: ${arg}`);
  }
  const image = argv[i];
  if (image === undefined) throw new UsageError('an image is required');
  const cmd = argv.slice(i + 1);
  if (cmd.length > 0) o.cmd = cmd;
  if (env.length > 0) o.env = env;
  if (volumes.length > 0) o.volumes = volumes;
  if (tmpfs.length > 0) o.tmpfs = tmpfs;
  return { options: o, image };
}

function parseJsonArray(s: string): string[] {
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* below */
  }
  throw new UsageError(`--entrypoint: "${s}" is not a JSON array of strings`);
}

function warn(message: string): void {
  process.stderr.write(`WARN[0000] ${message}\n`);
}

/** Turns a Carrier error into podman's exit code 125 with its message; a missing image reads like podman's. */
function failRun(err: unknown): never {
  if (err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && /^image not known: /.test(err.message)) {
    throw new ExitError(`${err.message.replace(/^image not known: /, '')}: image not known`, 125);
  }
  if (err instanceof CarrierError) throw new ExitError(err.message, 125);
  throw err;
}

export async function runCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv.slice(0, argv.findIndex((a) => !a.startsWith('-')) + 1 || argv.length), RUN_HELP)) return 0;
  const { options, image } = parseRunArgs(argv, true);
  if (needsNamespace()) return reexecInNamespace(g, ['run', ...argv]);
  if (options.tty && !process.stdin.isTTY) {
    warn('the input device is not a TTY: running without a terminal (-t ignored)');
    delete options.tty;
  }
  const signals = new SignalRelay();
  if (process.stdin.isTTY) process.on('SIGINT', () => {}); // the runtime gets a terminal's Ctrl-C itself
  return withStore(g, async (store) => {
    let result;
    try {
      result = await runContainer(store, image, options, { onWarning: warn, signals });
    } catch (err) {
      failRun(err);
    } finally {
      signals.dispose();
    }
    if (result.runtimeError !== undefined) {
      const why =
        result.failure === 'not-found'
          ? 'OCI runtime attempted to invoke a command that was not found'
          : result.failure === 'cannot-invoke'
            ? 'OCI permission denied'
            : 'OCI runtime error';
      process.stderr.write(`Error: ${result.runtime}: ${result.runtimeError.replace(/^\S+ (run|create) failed: /, '')}: ${why}\n`);
    }
    return result.exitCode;
  });
}

export async function createCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv.slice(0, argv.findIndex((a) => !a.startsWith('-')) + 1 || argv.length), CREATE_HELP)) return 0;
  const { options, image } = parseRunArgs(argv, false);
  return withStore(g, async (store) => {
    try {
      const c = await createContainer(store, image, options);
      process.stdout.write(`${c.id}\n`);
      return 0;
    } catch (err) {
      failRun(err);
    }
  });
}

const START_HELP = `Usage: carrier start CONTAINER

Run a created (or exited) container again in the foreground, attached; the exit code is the container's.
`;

export async function startCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv, START_HELP)) return 0;
  const args = parseArgs(argv, []);
  args.flags.delete('-a');
  args.flags.delete('--attach');
  if (args.flags.size > 0) throw new UsageError(`unknown flag: ${[...args.flags.keys()][0]}`);
  if (args.positionals.length !== 1) throw new UsageError('start takes exactly one container');
  if (needsNamespace()) return reexecInNamespace(g, ['start', ...argv]);
  const signals = new SignalRelay();
  return withStore(g, async (store) => {
    try {
      const r = await startContainer(store, args.positionals[0]!, { onWarning: warn, signals });
      if (r.runtimeError !== undefined) process.stderr.write(`Error: ${r.runtime}: ${r.runtimeError}\n`);
      return r.exitCode;
    } catch (err) {
      if (err instanceof CarrierError) throw new ExitError(err.message, 125);
      throw err;
    }
  });
}

// ---- mount / umount / rm -------------------------------------------------------------------------------------------

const MOUNT_HELP = `Usage: carrier mount CONTAINER...

Mount each container's root file system (overlay of its image's layers and its own read-write layer) and print
the merged path. Mounts are reference counted (<runroot>/overlay-layers/mountpoints.json, as podman counts them).
Rootless, the mount lives in Carrier's user + mount namespace: run this inside 'carrier unshare' to use the path.
`;

export async function mountCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv, MOUNT_HELP)) return 0;
  const args = parseArgs(argv, []);
  if (args.flags.size > 0) throw new UsageError(`unknown flag: ${[...args.flags.keys()][0]}`);
  if (args.positionals.length === 0) throw new UsageError('mount needs at least one container');
  if (needsNamespace()) {
    warn('rootless: the mount exists only inside Carrier\'s user namespace; use it from \'carrier unshare\'');
    return reexecInNamespace(g, ['mount', ...argv]);
  }
  return withStore(g, async (store) => {
    for (const q of args.positionals) {
      try {
        process.stdout.write(`${await mountContainer(store, q)}\n`);
      } catch (err) {
        if (err instanceof CarrierError) throw new ExitError(err.message, 125);
        throw err;
      }
    }
    return 0;
  });
}

const UMOUNT_HELP = `Usage: carrier umount [-f] CONTAINER...

Release one mount reference of each container (-f: all of them); the overlay is unmounted with the last. Prints
each container as given.
`;

export async function umountCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv, UMOUNT_HELP)) return 0;
  const args = parseArgs(argv, []);
  const force = args.flags.delete('-f') || args.flags.delete('--force');
  if (args.flags.size > 0) throw new UsageError(`unknown flag: ${[...args.flags.keys()][0]}`);
  if (args.positionals.length === 0) throw new UsageError('umount needs at least one container');
  if (needsNamespace()) return reexecInNamespace(g, ['umount', ...argv]);
  return withStore(g, async (store) => {
    for (const q of args.positionals) {
      try {
        await unmountContainer(store, q, { force });
        process.stdout.write(`${q}\n`);
      } catch (err) {
        if (err instanceof CarrierError) throw new ExitError(err.message, 125);
        throw err;
      }
    }
    return 0;
  });
}

const RM_HELP = `Usage: carrier rm [-f] [-v] CONTAINER...

Remove containers: their records, read-write layers and run state. A running container needs -f (it is killed).
-v also removes the anonymous volumes the container made; named volumes always stay.
Exit codes: 0 all removed; 1 a container was not known; 2 a container is running (no -f); 125 other errors.
`;

export async function rmCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv, RM_HELP)) return 0;
  const args = parseArgs(argv, []);
  const force = args.flags.delete('-f') || args.flags.delete('--force');
  const volumes = args.flags.delete('-v') || args.flags.delete('--volumes');
  const fv = args.flags.delete('-fv') || args.flags.delete('-vf');
  if (args.flags.size > 0) throw new UsageError(`unknown flag: ${[...args.flags.keys()][0]}`);
  if (args.positionals.length === 0) throw new UsageError('rm needs at least one container');
  if (needsNamespace()) return reexecInNamespace(g, ['rm', ...argv]);
  return withStore(g, async (store) => {
    let code = 0;
    for (const q of args.positionals) {
      try {
        await removeContainer(store, q, { force: force || fv, volumes: volumes || fv });
        process.stdout.write(`${q}\n`);
      } catch (err) {
        if (!(err instanceof CarrierError)) throw err;
        if (err.code === 'CARRIER_NOT_FOUND') {
          process.stderr.write(`Error: no container with name or ID "${q}" found: no such container\n`);
          code = code || 1;
        } else if (err.code === 'CARRIER_IN_USE') {
          process.stderr.write(`Error: ${err.message}\n`);
          code = code || 2;
        } else {
          process.stderr.write(`Error: ${err.message}\n`);
          code = 125;
        }
      }
    }
    return code;
  });
}

// ---- ps / inspect ------------------------------------------------------------------------------------------------

const PS_HELP = `Usage: carrier ps [-a] [-q] [--no-trunc] [--format json|TEMPLATE]

List containers (running ones; -a: all). Containers made by other tools on the same store (podman's) are listed
with -a too, with status "Storage".
`;

function statusText(c: ContainerDetails, now = Date.now()): string {
  const s = c.state;
  if (c.origin === 'external') return 'Storage';
  switch (s.status) {
    case 'running':
      return `Up ${humanDuration(Math.max(0, now - Date.parse(s.startedAt ?? c.created)))}`;
    case 'exited':
      return s.finishedAt === undefined ? 'Exited' : `Exited (${s.exitCode ?? 0}) ${timeAgo(s.finishedAt, now)}`;
    case 'created':
      return 'Created';
    default:
      return 'Unknown';
  }
}

function unix(t: string | undefined): number {
  const v = t ? Date.parse(t) : NaN;
  return Number.isNaN(v) ? 0 : Math.floor(v / 1000);
}

function psJson(c: ContainerDetails): Record<string, unknown> {
  return {
    AutoRemove: c.config?.autoRemove ?? false,
    Command: c.command.length > 0 ? c.command : null,
    CreatedAt: timeAgo(c.created),
    Exited: c.state.status === 'exited',
    ExitedAt: unix(c.state.finishedAt),
    ExitCode: c.state.exitCode ?? 0,
    Id: c.id,
    Image: c.imageName,
    ImageID: c.image,
    Labels: null,
    Mounts: (c.config?.volumes ?? []).map((v) => v.destination),
    Names: c.names,
    Pid: c.state.status === 'running' ? c.state.pid ?? 0 : 0,
    StartedAt: unix(c.state.startedAt),
    State: c.origin === 'external' ? 'storage' : c.state.status,
    Status: statusText(c),
    Created: unix(c.created),
    External: c.origin === 'external',
  };
}

export async function psCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv, PS_HELP)) return 0;
  const args = parseArgs(argv, ['--format']);
  const all = args.flags.delete('-a') || args.flags.delete('--all');
  const quiet = args.flags.delete('-q') || args.flags.delete('--quiet');
  const noTrunc = args.flags.delete('--no-trunc');
  const aq = args.flags.delete('-aq') || args.flags.delete('-qa');
  const format = stringFlag(args, '--format');
  args.flags.delete('--format');
  if (args.flags.size > 0) throw new UsageError(`unknown flag: ${[...args.flags.keys()][0]}`);
  if (args.positionals.length > 0) throw new UsageError('ps takes no arguments');
  return withStore(g, async (store) => {
    const list = (await listContainers(store))
      .filter((c) => all || aq || c.state.status === 'running')
      .sort((a, b) => unix(b.created) - unix(a.created) || b.created.localeCompare(a.created));
    if (quiet || aq) {
      for (const c of list) process.stdout.write(`${noTrunc ? c.id : c.id.slice(0, 12)}\n`);
      return 0;
    }
    if (format === 'json') {
      process.stdout.write(goJson(list.map(psJson), 4) + '\n');
      return 0;
    }
    if (format !== undefined) {
      for (const c of list) process.stdout.write(renderTemplate(format, { ...psJson(c), ID: c.id.slice(0, 12), Names: c.names.join(',') }) + '\n');
      return 0;
    }
    const cmdText = (c: ContainerDetails): string => {
      const s = c.command.join(' ');
      return noTrunc || s.length <= 20 ? s : `${s.slice(0, 17)}...`;
    };
    const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
    for (const c of list) {
      rows.push([noTrunc ? c.id : c.id.slice(0, 12), c.imageName, cmdText(c), timeAgo(c.created), statusText(c), '', c.names.join(',')]);
    }
    process.stdout.write(renderTable(rows));
    return 0;
  });
}

function inspectJson(c: ContainerDetails, driver: string): Record<string, unknown> {
  const cfg = c.config;
  return {
    Id: c.id,
    Created: c.created,
    Path: c.command[0] ?? '',
    Args: c.command.slice(1),
    State: {
      Status: c.origin === 'external' ? 'storage' : c.state.status,
      Running: c.state.status === 'running',
      ExitCode: c.state.exitCode ?? 0,
      Pid: c.state.status === 'running' ? c.state.pid ?? 0 : 0,
      StartedAt: c.state.startedAt ?? '',
      FinishedAt: c.state.finishedAt ?? '',
      Error: c.state.error ?? '',
      Runtime: c.state.runtime ?? cfg?.runtime ?? '',
    },
    Image: c.image,
    ImageName: c.imageName,
    Name: c.name,
    Names: c.names,
    External: c.origin === 'external',
    Mounts: (cfg?.volumes ?? []).map((v) => ({
      Type: v.source?.startsWith('/') ? 'bind' : 'volume',
      ...(v.source !== undefined && !v.source.startsWith('/') ? { Name: v.source } : {}),
      Source: v.source ?? '',
      Destination: v.destination,
      RW: !v.readOnly,
    })),
    Config: cfg
      ? {
          Cmd: cfg.cmd ?? null,
          Entrypoint: cfg.entrypoint ?? null,
          Env: cfg.env,
          WorkingDir: cfg.workdir ?? '',
          User: cfg.user ?? '',
          Tty: cfg.tty,
          OpenStdin: cfg.interactive,
          Tmpfs: cfg.tmpfs,
          AutoRemove: cfg.autoRemove,
        }
      : null,
    GraphDriver: driver === 'vfs' ? { Name: 'vfs', Data: { Dir: c.upperDir } } : { Name: 'overlay', Data: { UpperDir: c.upperDir, WorkDir: c.upperDir.replace(/\/diff$/, '/work'), MergedDir: c.upperDir.replace(/\/diff$/, '/merged') } },
    StorageLayer: c.layer,
  };
}

const INSPECT_HELP = `Usage: carrier container inspect CONTAINER...

Container details as JSON: state, configuration, mounts and the overlay directories.
`;

export async function containerInspectCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  if (help(argv, INSPECT_HELP)) return 0;
  const args = parseArgs(argv, ['--format']);
  if (args.positionals.length === 0) throw new UsageError('inspect needs at least one container');
  const format = stringFlag(args, '--format');
  return withStore(g, async (store) => {
    const out: Record<string, unknown>[] = [];
    let missing: string | undefined;
    for (const q of args.positionals) {
      try {
        out.push(inspectJson(await inspectContainer(store, q), store.driverName));
      } catch (err) {
        if (err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND') missing ??= q;
        else throw err;
      }
    }
    if (format !== undefined && format !== 'json') for (const o of out) process.stdout.write(renderTemplate(format, o) + '\n');
    else process.stdout.write(goJson(out, 4) + '\n');
    if (missing !== undefined) throw new ExitError(`no such container ${missing}`, 125);
    return 0;
  });
}

// ---- volumes -----------------------------------------------------------------------------------------------------

const VOLUME_HELP = `Usage: carrier volume COMMAND

  create [--label K=V] [NAME]     create a named volume (a random name when none is given); prints its name
  ls [-q] [--format json]         list volumes
  inspect NAME...                 volume details as JSON
  rm [-f] NAME...                 remove volumes (-f: also the containers using them)
  prune [-f]                      remove every volume no container uses

Volumes live in <graphroot>/volumes/<name>/_data, where podman keeps its own.
`;

function volumeJson(v: VolumeInfo, users: string[] = []): Record<string, unknown> {
  return {
    Name: v.name,
    Driver: v.driver,
    Mountpoint: v.mountpoint,
    CreatedAt: v.createdAt,
    Labels: v.labels,
    Scope: 'local',
    Options: {},
    Anonymous: v.anonymous,
    Origin: v.origin,
    Containers: users,
  };
}

export async function volumeCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(VOLUME_HELP);
    return 0;
  }
  switch (sub) {
    case 'create': {
      const args = parseArgs(rest, ['--label', '-l']);
      const labels: Record<string, string> = {};
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '--label' || rest[i] === '-l') {
          const kv = rest[i + 1] ?? '';
          const eq = kv.indexOf('=');
          labels[eq === -1 ? kv : kv.slice(0, eq)] = eq === -1 ? '' : kv.slice(eq + 1);
        }
      }
      if (args.positionals.length > 1) throw new UsageError('volume create takes at most one name');
      return withStore(g, async (store) => {
        try {
          const v = await createVolume(store, args.positionals[0], { labels });
          process.stdout.write(`${v.name}\n`);
          return 0;
        } catch (err) {
          if (err instanceof CarrierError) throw new ExitError(err.message, 125);
          throw err;
        }
      });
    }
    case 'ls':
    case 'list': {
      const args = parseArgs(rest, ['--format']);
      const quiet = args.flags.has('-q') || args.flags.has('--quiet');
      const format = stringFlag(args, '--format');
      return withStore(g, async (store) => {
        const vols = await listVolumes(store);
        const users = await volumeUsers(store);
        if (quiet) for (const v of vols) process.stdout.write(`${v.name}\n`);
        else if (format === 'json') process.stdout.write(goJson(vols.map((v) => volumeJson(v, users.get(v.name))), 4) + '\n');
        else if (format !== undefined) for (const v of vols) process.stdout.write(renderTemplate(format, volumeJson(v, users.get(v.name))) + '\n');
        else if (vols.length > 0) process.stdout.write(renderTable([['DRIVER', 'VOLUME NAME'], ...vols.map((v) => [v.driver, v.name])]));
        return 0;
      });
    }
    case 'inspect': {
      const args = parseArgs(rest, ['--format']);
      if (args.positionals.length === 0) throw new UsageError('volume inspect needs a volume name');
      return withStore(g, async (store) => {
        const users = await volumeUsers(store);
        const out: Record<string, unknown>[] = [];
        for (const n of args.positionals) {
          try {
            out.push(volumeJson(await inspectVolume(store, n), users.get(n)));
          } catch (err) {
            if (err instanceof CarrierError) throw new ExitError(`${err.message}: no such volume`, 125);
            throw err;
          }
        }
        process.stdout.write(goJson(out, 5) + '\n');
        return 0;
      });
    }
    case 'rm':
    case 'remove': {
      // Rootless, a volume's files may belong to the user's subordinate ids: remove them from inside the namespace.
      if (needsNamespace()) return reexecInNamespace(g, ['volume', ...argv]);
      const args = parseArgs(rest, []);
      const force = args.flags.has('-f') || args.flags.has('--force');
      if (args.positionals.length === 0) throw new UsageError('volume rm needs a volume name');
      return withStore(g, async (store) => {
        let code = 0;
        for (const n of args.positionals) {
          try {
            await removeVolume(store, n, { force });
            process.stdout.write(`${n}\n`);
          } catch (err) {
            if (!(err instanceof CarrierError)) throw err;
            process.stderr.write(`Error: ${err.message}\n`);
            code = err.code === 'CARRIER_NOT_FOUND' ? code || 1 : err.code === 'CARRIER_IN_USE' ? code || 2 : 125;
          }
        }
        return code;
      });
    }
    case 'prune': {
      if (needsNamespace()) return reexecInNamespace(g, ['volume', ...argv]);
      return withStore(g, async (store) => {
        for (const n of await pruneVolumes(store)) process.stdout.write(`${n}\n`);
        return 0;
      });
    }
    default:
      throw new UsageError(`unknown command 'volume ${sub}'`);
  }
}

// ---- container prune ---------------------------------------------------------------------------------------------

/** `carrier container prune [-f]`: removes the stopped containers Carrier made (podman's are left to podman). */
export async function containerPruneCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write('Usage: carrier container prune [-f]\n\nRemove all stopped containers Carrier made.\n');
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('container prune takes no arguments');
  if (needsNamespace()) return reexecInNamespace(g, ['container', 'prune', ...argv]);
  if (!args.flags.has('-f') && !args.flags.has('--force')) {
    const { confirm } = await import('./system.js');
    if (!(await confirm('WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] '))) return 0;
  }
  return withStore(g, async (store) => {
    for (const id of await pruneContainers(store)) process.stdout.write(`${id}\n`);
    return 0;
  });
}

// ---- unshare -----------------------------------------------------------------------------------------------------

const UNSHARE_HELP = `Usage: carrier unshare [COMMAND [ARG...]]

Run COMMAND (default: $SHELL, else /bin/sh) in a new user + mount namespace where root is you, as 'podman unshare'
does: with ranges for you in /etc/subuid and /etc/subgid, ids 1..N map to them (util-linux unshare with
newuidmap/newgidmap); else only your own uid and gid are mapped. Inside, CARRIER_GRAPHROOT / CARRIER_RUNROOT (and
CONTAINERS_GRAPHROOT / CONTAINERS_RUNROOT) name the store, and Carrier commands work without re-entering.
As root, the command runs as it is (no namespace is needed).
`;

export async function unshareCommandCli(g: GlobalOptions, argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(UNSHARE_HELP);
    return 0;
  }
  const cmd = argv.length > 0 ? argv : [process.env.SHELL || '/bin/sh'];
  const config = await resolveStoreConfig({
    ...(g.root !== undefined ? { root: g.root } : {}),
    ...(g.runroot !== undefined ? { runroot: g.runroot } : {}),
    ...(g.driver !== undefined ? { driver: g.driver } : {}),
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CARRIER_GRAPHROOT: config.graphroot,
    CARRIER_RUNROOT: config.runroot,
    CONTAINERS_GRAPHROOT: config.graphroot,
    CONTAINERS_RUNROOT: config.runroot,
  };
  if (!needsNamespace()) return runForwarding(cmd[0]!, cmd.slice(1), env);
  if (!(await findOnPath('unshare'))) throw new CarrierError('CARRIER_NOT_FOUND', "unshare(1) not found: install Debian's 'util-linux'");
  const un = unshareCommand();
  return runForwarding(un.argv[0]!, [...un.argv.slice(1), ...cmd], { ...env, [USERNS_ENV]: '1', CARRIER_ROOTLESS_UID: String(process.getuid?.() ?? '') });
}

export { isRootless };

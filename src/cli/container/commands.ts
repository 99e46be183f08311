// The container commands' definitions: `carrier container …`, the top-level names podman also gives them (run, ps,
// rm, …) and `carrier unshare`.
import { shortcut, type CommandDef, type FlagDef } from '../command.js';
import { pullFlags } from '../image/registry-flags.js';

const force = (help: string): FlagDef => ({ name: 'force', short: 'f', type: 'bool', help });

const runFlags: FlagDef[] = [
  { name: 'env', short: 'e', type: 'list', value: 'K=V', help: "set an environment variable (K alone: take the value from Carrier's environment)" },
  { name: 'env-file', type: 'list', value: 'FILE', help: 'read environment variables from FILE (K=V or K a line; # comments)' },
  { name: 'entrypoint', type: 'string', value: 'CMD', help: "replace the image's ENTRYPOINT (a JSON array or a single command)" },
  { name: 'interactive', short: 'i', type: 'bool', help: 'keep stdin attached' },
  { name: 'name', type: 'string', value: 'NAME', help: "the container's name (default: a random one)" },
  { name: 'runtime', type: 'string', value: 'NAME', help: 'OCI runtime: runc or crun (default: runc, else crun, found on PATH)' },
  { name: 'tty', short: 't', type: 'bool', help: 'allocate a pseudo-terminal (the runtime proxies it; works when stdin is a terminal)' },
  { name: 'tmpfs', type: 'list', value: 'DST[:OPTS]', help: 'mount a tmpfs at DST' },
  { name: 'user', short: 'u', type: 'string', value: 'USER', help: "user[:group], names looked up in the image's /etc/passwd and /etc/group" },
  { name: 'volume', short: 'v', type: 'list', value: 'SRC:DST[:ro]', help: 'bind mount SRC (an absolute path) or the named volume SRC (made if missing) at DST' },
  { name: 'workdir', short: 'w', type: 'string', value: 'DIR', help: 'working directory inside the container' },
  { name: 'detach', short: 'd', type: 'bool', help: 'not supported: Carrier runs containers in the foreground' },
  // Pulling the image first, as podman run and create do.
  { name: 'pull', type: 'string', value: 'POLICY', default: 'missing', help: 'pull the image: missing (when not in the store), always, never, or newer (when the registry has another; else the stored one)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'do not print pull progress' },
  ...pullFlags,
];

const run: CommandDef = {
  name: 'run',
  usage: '[options] IMAGE [COMMAND [ARG...]]',
  summary: 'Run a command in a new container, in the foreground, with stdin/stdout/stderr attached',
  description:
    "The exit code is the container's; 125 a Carrier error, 126 the command cannot be invoked, 127 the command was\n" +
    'not found. The container has its own pid, mount, ipc, uts and network namespaces (only loopback: no network).\n' +
    "Rootless, it runs in Carrier's user namespace (see 'carrier unshare').",
  flags: [...runFlags, { name: 'rm', type: 'bool', help: 'remove the container when it exits' }],
  args: { min: 1 },
  flagsBeforeArgs: true,
  run: async (ctx) => (await import('./run.js')).run(ctx),
};

const create: CommandDef = {
  name: 'create',
  usage: '[options] IMAGE [COMMAND [ARG...]]',
  summary: 'Create a container without starting it; prints its id',
  description: 'The record and the read-write layer, as podman lays them out.',
  flags: runFlags,
  args: { min: 1 },
  flagsBeforeArgs: true,
  run: async (ctx) => (await import('./run.js')).create(ctx),
};

const start: CommandDef = {
  name: 'start',
  usage: '[options] CONTAINER',
  summary: "Run a created (or exited) container again in the foreground, attached; the exit code is the container's",
  flags: [{ name: 'attach', short: 'a', type: 'bool', help: 'attach stdout and stderr (always done)' }],
  args: { min: 1, max: 1 },
  run: async (ctx) => (await import('./run.js')).start(ctx),
};

const list: CommandDef = {
  name: 'ls',
  aliases: ['list', 'ps'],
  usage: '[options]',
  summary: 'List containers (running ones; -a: all)',
  description: 'Containers made by other tools on the same store (podman\'s) are listed with -a, with status "Storage".',
  flags: [
    { name: 'all', short: 'a', type: 'bool', help: 'all containers, not only running ones' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'print only container ids' },
    { name: 'no-trunc', type: 'bool', help: 'do not truncate output' },
    { name: 'format', type: 'string', value: 'FORMAT', help: "'json' or a Go-template subset" },
  ],
  run: async (ctx) => (await import('./ps.js')).listContainersCli(ctx),
};

const inspect: CommandDef = {
  name: 'inspect',
  usage: '[options] CONTAINER [CONTAINER...]',
  summary: 'Container details as JSON: state, configuration, mounts and the overlay directories',
  flags: [{ name: 'format', short: 'f', type: 'string', value: 'FORMAT', help: "'json' (default) or a Go-template subset" }],
  args: { min: 1 },
  run: async (ctx) => (await import('./inspect.js')).inspectContainers(ctx),
};

const prune: CommandDef = {
  name: 'prune',
  usage: '[options]',
  summary: 'Remove all stopped containers Carrier made',
  flags: [force('do not ask for confirmation')],
  run: async (ctx) => (await import('./prune.js')).prune(ctx),
};

const mount: CommandDef = {
  name: 'mount',
  usage: 'CONTAINER [CONTAINER...]',
  summary: "Mount containers' root file systems and print the merged paths",
  description:
    "Each mount is the overlay of the image's layers and the container's read-write layer, reference counted\n" +
    "(<runroot>/overlay-layers/mountpoints.json, as podman counts them). Rootless, the mount lives in Carrier's\n" +
    "user + mount namespace: run this inside 'carrier unshare' to use the path.",
  args: { min: 1 },
  run: async (ctx) => (await import('./mount.js')).mount(ctx),
};

const umount: CommandDef = {
  name: 'umount',
  aliases: ['unmount'],
  usage: '[options] CONTAINER [CONTAINER...]',
  summary: 'Release container mounts; the overlay is unmounted with the last reference',
  description: 'Prints each container as given.',
  flags: [force('release all of the references, not one')],
  args: { min: 1 },
  run: async (ctx) => (await import('./mount.js')).umount(ctx),
};

const remove: CommandDef = {
  name: 'rm',
  aliases: ['remove'],
  usage: '[options] CONTAINER [CONTAINER...]',
  summary: 'Remove containers: their records, read-write layers and run state',
  description:
    'A running container needs -f (it is killed). -v also removes the anonymous volumes the container made;\n' +
    'named volumes always stay. Exit codes: 0 all removed; 1 a container was not known; 2 a container is running\n' +
    '(no -f); 125 other errors.',
  flags: [force('kill running containers first'), { name: 'volumes', short: 'v', type: 'bool', help: "also remove the container's anonymous volumes" }],
  args: { min: 1 },
  run: async (ctx) => (await import('./rm.js')).removeContainers(ctx),
};

const exportFs: CommandDef = {
  name: 'export',
  usage: '[options] CONTAINER',
  summary: "Write a container's file system (its image's layers and its own changes, merged) as a tar archive",
  flags: [{ name: 'output', short: 'o', type: 'string', value: 'FILE', help: 'write to FILE (default: standard output, which must not be a terminal)' }],
  args: { min: 1, max: 1 },
  run: async (ctx) => (await import('./export.js')).exportFs(ctx),
};

const diffFlags: FlagDef[] = [{ name: 'format', type: 'string', value: 'FORMAT', help: "'json': the paths grouped as changed, added and deleted" }];
const diffDescription =
  "One line per path: A added, C changed, D deleted, in podman's order (paths podman manages in every container,\n" +
  'such as /etc/hosts and /run, are left out).';

const diffAny: CommandDef = {
  name: 'diff',
  usage: '[options] CONTAINER|IMAGE',
  summary: "Show a container's changes against its image, or an image's top layer against its parent",
  description: diffDescription,
  flags: diffFlags,
  args: { min: 1, max: 1 },
  run: async (ctx) => (await import('./diff.js')).diffCli(ctx, 'all'),
};

const diffContainer: CommandDef = {
  ...diffAny,
  usage: '[options] CONTAINER',
  summary: "Show a container's changes against its image",
  run: async (ctx) => (await import('./diff.js')).diffCli(ctx, 'container'),
};

const commit: CommandDef = {
  name: 'commit',
  usage: '[options] CONTAINER [IMAGE]',
  summary: "Create a new image from a container's changes; prints its id",
  description:
    "The container's changes become one new layer (gzip, or zstd) on top of its image's; the config gets the layer's diff_id\n" +
    "and a history entry. IMAGE is named as 'carrier tag' names it; without it the image has no name. The layer's\n" +
    'blob stays in the blob cache, so a push uploads it unchanged.',
  flags: [
    { name: 'author', short: 'a', type: 'string', value: 'AUTHOR', help: 'the image\'s author' },
    { name: 'change', short: 'c', type: 'list', value: 'INSTRUCTION', help: 'apply CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR (Dockerfile syntax)' },
    { name: 'compression-format', type: 'string', value: 'FORMAT', help: "compress the new layer: 'gzip', 'zstd' or 'zstd:chunked' (zstd ones oci format only); default none, as podman (a push compresses it)" },
    { name: 'format', short: 'f', type: 'string', value: 'FORMAT', help: "'oci' (default) or 'docker' (Docker schema 2 manifest and config)" },
    { name: 'iidfile', type: 'string', value: 'FILE', help: "write the new image's id to FILE" },
    { name: 'message', short: 'm', type: 'string', value: 'MESSAGE', help: "the config's comment (docker format only)" },
    { name: 'pause', short: 'p', type: 'bool', help: 'pause a running container while its changes are read' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'print only the image id' },
  ],
  args: { min: 1, max: 2 },
  run: async (ctx) => (await import('./commit.js')).commitCli(ctx),
};

export const unshare: CommandDef = {
  name: 'unshare',
  usage: '[COMMAND [ARG...]]',
  summary: "Run a command in Carrier's rootless user + mount namespace",
  description:
    "COMMAND (default: $SHELL, else /bin/sh) runs in a new user + mount namespace where root is you, as 'podman\n" +
    'unshare\' does: with ranges for you in /etc/subuid and /etc/subgid, ids 1..N map to them (util-linux unshare\n' +
    'with newuidmap/newgidmap); else only your own uid and gid are mapped. Inside, CARRIER_GRAPHROOT /\n' +
    'CARRIER_RUNROOT (and CONTAINERS_GRAPHROOT / CONTAINERS_RUNROOT) name the store, and Carrier commands work\n' +
    'without re-entering. As root, the command runs as it is (no namespace is needed).',
  args: { min: 0 },
  flagsBeforeArgs: true,
  run: async (ctx) => (await import('./unshare.js')).unshare(ctx),
};

export const container: CommandDef = {
  name: 'container',
  usage: 'COMMAND',
  summary: 'Manage containers',
  subcommands: [commit, create, diffContainer, exportFs, inspect, list, mount, prune, remove, run, start, umount],
};

/** The container commands at the top level, under podman's names. */
export const containerShortcuts: CommandDef[] = [
  run,
  create,
  start,
  shortcut(list, 'ps'),
  mount,
  umount,
  shortcut(remove, 'rm'),
  diffAny,
  commit,
  exportFs,
  unshare,
];

#!/usr/bin/env node
// The thin `carrier` CLI: parses arguments, calls the public API, renders results. All terminal output lives here.
import { CarrierError } from '../errors.js';
import { version } from '../version.js';
import { UsageError } from './args.js';
import { ExitError, type GlobalOptions } from './errors.js';

// Command modules load on demand: `carrier images` never pays for the registry client, `carrier pull` never for
// the container runtime (startup time is most of what a short command costs).
const layer = () => import('./layer.js');
const save = () => import('./save.js');
const system = () => import('./system.js');
const pullCli = () => import('./pull.js');
const info = () => import('./info.js');
const containers = () => import('./containers.js');
const images = () => import('./images.js');

const HELP = `Usage: carrier [global options] <command> [options]

Global options (before the command, as podman takes them):
  --root DIR               the store's graph root
  --runroot DIR            the store's run root
  --storage-driver NAME    storage driver (overlay)
  CONTAINERS_STORAGE_CONF  (environment) a storage.conf to read

Commands:
  pull [--platform P] [--creds U:P] [--authfile F] [--tls-verify=false] [-q] IMAGE   pull from a registry
  images [-a] [-q] [--digests] [--no-trunc] [--format json]   list images (also: image ls)
  inspect IMAGE...                   image details as JSON (also: image inspect)
  load -i FILE [-q]                  load a docker-archive / oci-archive (also: image load)
  tag IMAGE NAME...                  add names to an image (also: image tag)
  untag IMAGE [NAME...]              remove names from an image (also: image untag)
  rmi [-f] [-a] IMAGE...             remove images (also: image rm)
  image exists IMAGE                 exit 0 if the image exists, 1 if not
  image prune [-a] [-f]              remove dangling images (-a: all images no container uses)
  system df [-v] [--format json]     disk usage: images, containers, unused layers, blob cache
  system prune [-a] [-f] [--volumes] [--max-size SIZE]   prune stopped containers, images, orphans, the blob cache
  system reset [-f]                  remove all images, containers, layers and the blob cache
  save [--format F] [-o FILE] [-m] IMAGE...   write images as docker-archive / oci-archive / oci-dir
  checkout [--mode M] IMAGE DIR      flatten an image into the new directory DIR (reflinks where possible)
  export [-o FILE] CONTAINER         a container's merged file system as a tar (also: container export)
  run [--rm] [-it] [-e K=V] [-w DIR] [-u USER] [-v SRC:DST[:ro]] [--tmpfs DST] [--name N] [--runtime R] IMAGE [CMD...]
                                     run a command in a new container (exit code: the container's)
  create [options] IMAGE [CMD...]    create a container without running it (also: container create)
  start CONTAINER                    run a created container in the foreground (also: container start)
  ps [-a] [-q] [--format json]       list containers (also: container ls)
  container inspect CONTAINER...     container details as JSON
  container prune [-f]               remove stopped containers Carrier made
  mount CONTAINER...                 mount containers' root file systems, print the paths (also: container mount)
  umount [-f] CONTAINER...           release container mounts (also: container umount)
  rm [-f] [-v] CONTAINER...          remove containers (also: container rm)
  volume create|ls|inspect|rm|prune  named volumes (<graphroot>/volumes/<name>/_data)
  unshare [CMD...]                   run CMD in Carrier's rootless user + mount namespace
  layer apply [options] BLOB DIR     extract a compressed layer blob into the empty directory DIR
  layer assemble TARSPLIT DIR        rebuild a layer's original tar from its tar-split and extracted DIR
  info [--format json]               the store, the overlay mount method and the runtime detected here
  version                            print versions

Run 'carrier <command> --help' for a command's options.
Exit codes (podman's): 0 success; 1 image not known (image exists, rmi); 2 image in use (rmi); 125 other errors.
`;

const GLOBAL_FLAGS: Record<string, keyof GlobalOptions> = { '--root': 'root', '--runroot': 'runroot', '--storage-driver': 'driver' };

/** Takes podman's global flags off the front of argv: `--root DIR`, `--root=DIR`, ... */
function globalOptions(argv: string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: GlobalOptions = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const key = GLOBAL_FLAGS[name];
    if (key === undefined) break;
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    globals[key] = value;
  }
  return { globals, rest: argv.slice(i) };
}

async function main(argv: string[]): Promise<number> {
  const { globals, rest: args } = globalOptions(argv);
  const [command, ...rest] = args;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`carrier ${packageVersion()}\n${version}\n`);
      return 0;
    case 'layer':
      return (await layer()).layerCommand(rest);
    case 'images':
      return (await images()).imagesCommand(globals, rest);
    case 'image':
      return (await images()).imageCommand(globals, rest);
    case 'inspect':
      return (await images()).inspectCommand(globals, rest, true);
    case 'load':
      return (await images()).loadCommand(globals, rest);
    case 'tag':
      return (await images()).tagCommand(globals, rest);
    case 'untag':
      return (await images()).untagCommand(globals, rest);
    case 'rmi':
      return (await images()).rmiCommand(globals, rest);
    case 'info':
      return (await info()).infoCommand(globals, rest);
    case 'pull':
      return (await pullCli()).pullCommand(globals, rest);
    case 'save':
      return (await save()).saveCommand(globals, rest);
    case 'checkout':
      return (await save()).checkoutCommand(globals, rest);
    case 'export':
      return (await save()).exportCommand(globals, rest);
    case 'system':
      return (await system()).systemCommand(globals, rest);
    case 'run':
      return (await containers()).runCommand(globals, rest);
    case 'create':
      return (await containers()).createCommand(globals, rest);
    case 'start':
      return (await containers()).startCommand(globals, rest);
    case 'ps':
      return (await containers()).psCommand(globals, rest);
    case 'mount':
      return (await containers()).mountCommand(globals, rest);
    case 'umount':
    case 'unmount':
      return (await containers()).umountCommand(globals, rest);
    case 'rm':
      return (await containers()).rmCommand(globals, rest);
    case 'volume':
      return (await containers()).volumeCommand(globals, rest);
    case 'unshare':
      return (await containers()).unshareCommandCli(globals, rest);
    case 'container': {
      const sub = rest.slice(1);
      switch (rest[0]) {
        case 'export':
          return (await save()).exportCommand(globals, sub);
        case 'inspect':
          return (await containers()).containerInspectCommand(globals, sub);
        case 'run':
          return (await containers()).runCommand(globals, sub);
        case 'create':
          return (await containers()).createCommand(globals, sub);
        case 'start':
          return (await containers()).startCommand(globals, sub);
        case 'ls':
        case 'list':
        case 'ps':
          return (await containers()).psCommand(globals, sub);
        case 'mount':
          return (await containers()).mountCommand(globals, sub);
        case 'umount':
        case 'unmount':
          return (await containers()).umountCommand(globals, sub);
        case 'rm':
        case 'remove':
          return (await containers()).rmCommand(globals, sub);
        case 'prune':
          return (await containers()).containerPruneCommand(globals, sub);
      }
      throw new UsageError(`unknown command 'container ${rest[0] ?? ''}'`);
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function packageVersion(): string {
  return process.env.npm_package_version ?? '0.1.0';
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ExitError) {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message}\nSee 'carrier --help'.\n`);
    } else if (err instanceof CarrierError) {
      process.stderr.write(`Error: ${err.message}${err.path ? ` (at ${err.path})` : ''} [${err.code}]\n`);
    } else {
      process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 125;
  },
);

// The system commands' definitions: disk usage, prune, reset and info. Without -f, prune and reset ask on the
// terminal as podman does and read one line of standard input: only "y" or "Y" goes ahead.
import type { CommandDef, FlagDef } from '../command.js';

const force: FlagDef = { name: 'force', short: 'f', type: 'bool', help: 'do not ask for confirmation' };

const df: CommandDef = {
  name: 'df',
  usage: '[options]',
  summary: 'Show disk usage: images, containers, unused layers and the blob cache',
  description: 'Sizes are bytes on disk as du counts them (shared layers once).',
  flags: [
    { name: 'verbose', short: 'v', type: 'bool', help: 'per image and per container usage' },
    { name: 'format', type: 'string', value: 'FORMAT', help: "'json' (the full report) or 'table'" },
  ],
  run: async (ctx) => (await import('./df.js')).diskUsage(ctx),
};

const prune: CommandDef = {
  name: 'prune',
  usage: '[options]',
  summary: 'Remove stopped containers, unused images, orphans and unreferenced blobs',
  description:
    'Removes the stopped containers Carrier made, dangling images (-a: all images no container uses), what no\n' +
    "record references (layer directories, l/ links, tar-splits, image and container directories, dead writers'\n" +
    'temp files), and blob cache entries no image refers to; then evicts least recently used blobs while the cache\n' +
    'is larger than its cap.',
  flags: [
    { name: 'all', short: 'a', type: 'bool', help: 'remove all images no container uses, not only dangling ones' },
    { name: 'volumes', type: 'bool', help: 'also remove volumes no container uses' },
    force,
    { name: 'max-size', type: 'string', value: 'SIZE', help: 'blob cache cap (e.g. 10G); default CARRIER_CACHE_MAX_SIZE, else no cap' },
  ],
  run: async (ctx) => (await import('./prune.js')).pruneSystem(ctx),
};

const reset: CommandDef = {
  name: 'reset',
  usage: '[options]',
  summary: 'Remove all images, containers, layers and the blob cache',
  description: "Empties the graph root, the run root and the blob cache. Refused while a container is mounted.",
  flags: [force],
  run: async (ctx) => (await import('./reset.js')).resetSystem(ctx),
};

export const info: CommandDef = {
  name: 'info',
  usage: '[options]',
  summary: 'Show the store, the overlay mount method and the OCI runtime Carrier uses here',
  flags: [{ name: 'format', short: 'f', type: 'string', value: 'FORMAT', help: "'json' (default: YAML-like text)" }],
  run: async (ctx) => (await import('./info.js')).info(ctx),
};

export const system: CommandDef = {
  name: 'system',
  usage: 'COMMAND',
  summary: 'Manage the store',
  subcommands: [df, prune, reset, info],
};

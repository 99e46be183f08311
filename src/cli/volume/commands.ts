// The volume commands' definitions: named volumes in <graphroot>/volumes/<name>/_data, where podman keeps its own.
import type { CommandDef } from '../command.js';

const create: CommandDef = {
  name: 'create',
  usage: '[options] [NAME]',
  summary: 'Create a named volume (a random name when none is given); prints its name',
  flags: [{ name: 'label', short: 'l', type: 'list', value: 'K=V', help: 'set a label on the volume' }],
  args: { min: 0, max: 1 },
  run: async (ctx) => (await import('./volume.js')).create(ctx),
};

const list: CommandDef = {
  name: 'ls',
  aliases: ['list'],
  usage: '[options]',
  summary: 'List volumes',
  flags: [
    { name: 'quiet', short: 'q', type: 'bool', help: 'print only volume names' },
    { name: 'format', type: 'string', value: 'FORMAT', help: "'json' or a Go-template subset" },
  ],
  run: async (ctx) => (await import('./volume.js')).list(ctx),
};

const inspect: CommandDef = {
  name: 'inspect',
  usage: '[options] NAME [NAME...]',
  summary: 'Volume details as JSON',
  flags: [{ name: 'format', short: 'f', type: 'string', value: 'FORMAT', help: "'json' (default) or a Go-template subset" }],
  args: { min: 1 },
  run: async (ctx) => (await import('./volume.js')).inspect(ctx),
};

const remove: CommandDef = {
  name: 'rm',
  aliases: ['remove'],
  usage: '[options] NAME [NAME...]',
  summary: 'Remove volumes',
  description: 'Exit codes: 1 a volume was not known; 2 a volume is in use (no -f); 125 other errors.',
  flags: [{ name: 'force', short: 'f', type: 'bool', help: 'also remove the containers using them' }],
  args: { min: 1 },
  run: async (ctx) => (await import('./volume.js')).remove(ctx),
};

const prune: CommandDef = {
  name: 'prune',
  usage: '[options]',
  summary: 'Remove every volume no container uses',
  flags: [{ name: 'force', short: 'f', type: 'bool', help: "accepted for podman's command lines: Carrier does not ask" }],
  run: async (ctx) => (await import('./volume.js')).prune(ctx),
};

export const volume: CommandDef = {
  name: 'volume',
  usage: 'COMMAND',
  summary: 'Manage named volumes',
  subcommands: [create, inspect, list, prune, remove],
};

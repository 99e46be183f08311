// The layer commands' definitions: a layer blob extracted and rebuilt on its own, without a store.
import type { CommandDef } from '../command.js';

const apply: CommandDef = {
  name: 'apply',
  usage: '[options] BLOB DIR',
  summary: 'Extract a compressed layer blob into the empty directory DIR',
  description:
    "BLOB is gzip, zstd or plain tar ('-' reads standard input). Prints the result (digests, sizes, owners, skipped\n" +
    'entries) as JSON.',
  flags: [
    { name: 'compression', type: 'string', value: 'C', default: 'auto', help: 'how BLOB is compressed: auto, gzip, zstd or none' },
    { name: 'expected-digest', type: 'string', value: 'sha256:...', help: 'refuse the blob unless its bytes hash to this' },
    { name: 'expected-diff-id', type: 'string', value: 'sha256:...', help: 'refuse the layer unless its tar hashes to this' },
    { name: 'whiteouts', type: 'string', value: 'KIND', help: 'how .wh. entries are stored: overlay (default) or aufs' },
    { name: 'tar-split', type: 'string', value: 'FILE', help: 'also write the tar-split file podman keeps per layer' },
    { name: 'rootless', type: 'bool', help: 'unprivileged rules (default: rootless unless run as root)' },
    { name: 'no-rootless', type: 'bool', help: 'privileged rules' },
    { name: 'max-bytes', type: 'string', value: 'N', help: 'refuse layers larger than N uncompressed bytes' },
  ],
  args: { min: 2, max: 2 },
  run: async (ctx) => (await import('./layer.js')).apply(ctx),
};

const assemble: CommandDef = {
  name: 'assemble',
  usage: '[options] TARSPLIT DIR',
  summary: "Rebuild a layer's original uncompressed tar, byte for byte, from its tar-split and the extracted DIR",
  flags: [{ name: 'output', short: 'o', type: 'string', value: 'FILE', help: 'write to FILE (default: standard output)' }],
  args: { min: 2, max: 2 },
  run: async (ctx) => (await import('./layer.js')).assemble(ctx),
};

export const layer: CommandDef = {
  name: 'layer',
  usage: 'COMMAND',
  summary: 'Extract and rebuild single layers',
  subcommands: [apply, assemble],
};

// The table of every command: the root (podman's global options) and, under it, each command and group. dispatch.ts
// dispatches from it, --help is rendered from it, and every flag not in it is refused.
import { readFile } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandDef } from './command.js';
import { container, containerShortcuts } from './container/commands.js';
import { renderHelp } from './help.js';
import { image, imageShortcuts } from './image/commands.js';
import { layer } from './layer/commands.js';
import { resolve } from './parse.js';
import { info, system } from './system/commands.js';
import { volume } from './volume/commands.js';
import { writeOut } from './output.js';

/** package.json's version, written into the CLI's bundle when scripts/bundle-cli.mjs makes it; not defined elsewhere. */
declare const CARRIER_PACKAGE_VERSION: string | undefined;

/**
 * The version in Carrier's own package.json (two levels up from dist/cli/), not npm_package_version: under npx or an
 * npm script that names the package being run, which is the calling app, not Carrier. The bundle the bin runs has it
 * from its build, made from the same package.json; unbundled, it is read with node:fs's callback API, which Node has
 * loaded before any command (fs/promises would be loaded for this one file). Either way `version` loads nothing for
 * it; in the bundle it starts no thread-pool work either (issue 21).
 */
async function ownVersion(): Promise<string> {
  if (typeof CARRIER_PACKAGE_VERSION === 'string') return CARRIER_PACKAGE_VERSION;
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  const text = await new Promise<string>((done, fail) => readFile(file, 'utf8', (err, data) => (err ? fail(err) : done(data))));
  const pkg = JSON.parse(text) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

const version: CommandDef = {
  name: 'version',
  usage: '',
  summary: "Print Carrier's version and its native core's",
  run: async () => {
    const { version: native } = await import('../index.js');
    writeOut(`carrier ${await ownVersion()}\n${native}\n`);
    return 0;
  },
};

const help: CommandDef = {
  name: 'help',
  usage: '[COMMAND...]',
  summary: 'Show the help of Carrier or of a command',
  args: { min: 0 },
  run: async (ctx) => {
    const target = resolve(ctx.root, [...ctx.args, '--help']);
    writeOut(renderHelp(target.def, target.path));
    return 0;
  },
};

export const root: CommandDef = {
  name: 'carrier',
  usage: '[global options] COMMAND [options]',
  summary: "Carrier: rootless OCI container image storage, in podman's layout",
  description:
    'Global options go before the command, as podman takes them. CONTAINERS_STORAGE_CONF (in the environment)\n' +
    "names a storage.conf to read; CARRIER_BLOB_CACHE a blob cache (as --blob-cache).\n\nExit codes (podman's): 0 success; 1 image not known (image exists, rmi); 2 image in use (rmi);\n" +
    '125 other errors; run: the container\'s own.',
  flags: [
    { name: 'root', type: 'string', value: 'DIR', help: "the store's graph root" },
    { name: 'runroot', type: 'string', value: 'DIR', help: "the store's run root" },
    { name: 'storage-driver', type: 'string', value: 'NAME', help: 'storage driver: overlay or vfs' },
    {
      name: 'blob-cache',
      type: 'string',
      value: 'DIR',
      help: "the blob cache (default: $CARRIER_BLOB_CACHE, else the store's own); a cache several stores name is shared, and prune then keeps blobs the others may need",
    },
    { name: 'version', short: 'v', type: 'bool', help: 'print versions' },
  ],
  subcommands: [...imageShortcuts, ...containerShortcuts, info, version, help, image, container, volume, system, layer],
};

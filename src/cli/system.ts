// Lifecycle commands: system df / prune / reset and image prune, with podman 4.3.1's prompts and output.
//
// Without -f, prune and reset ask on the terminal as podman does ("Are you sure you want to continue? [y/N] ") and
// read one line from standard input: only "y" or "Y" goes ahead; anything else, or end of input, exits 0 having
// done nothing. Scripts pass -f.
import { createInterface } from 'node:readline';
import { pruneContainers, pruneVolumes } from '../containers/containers.js';
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { systemDf, type SystemDf } from '../store/df.js';
import { cacheMaxSizeFromEnv, pruneBlobCache } from '../store/gc.js';
import { parseByteSize } from '../quota.js';
import { removeTree } from '../fs/remove.js';
import { UsageError, parseArgs, stringFlag } from './args.js';
import { decimalUnits, goJson, humanDuration, renderTable } from './format.js';
import { ExitError, has, type GlobalOptions } from './images.js';
import { openStore, withStore } from './open-store.js';



/**
 * go-units' HumanSize, which podman's `system df` prints: decimal units, 4 significant digits (Go's `%.4g`), no
 * space before the unit: 3012096 → "3.012MB", 0 → "0B".
 */
export function dfSize(bytes: number): string {
  const [size, unit] = decimalUnits(bytes);
  let s = size.toPrecision(4);
  if (s.includes('.') && !s.includes('e')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return `${s}${unit}`;
}

function reclaimable(bytes: number, of: number): string {
  const pct = of > 0 ? Math.round((bytes / of) * 100) : 0;
  return `${dfSize(bytes)} (${pct}%)`;
}

/** Prints `prompt` and reads one line of standard input; true only for "y" or "Y". */
export async function confirm(prompt: string): Promise<boolean> {
  process.stdout.write(prompt);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    const line = await new Promise<string | undefined>((resolveLine) => {
      rl.once('line', (l) => resolveLine(l));
      rl.once('close', () => resolveLine(undefined));
    });
    return line !== undefined && /^[yY]$/.test(line.trim());
  } finally {
    rl.close();
    process.stdin.pause();
  }
}

// ---- system df --------------------------------------------------------------------------------------------------

const DF_HELP = `Usage: carrier system df [options]

Show disk usage: images, containers, layers that belong to neither, and the blob cache. Sizes are bytes on disk
as du counts them (shared layers once).

Options:
  -v, --verbose     per image and per container usage
      --format json the full report as JSON
`;

function splitName(name: string | undefined): { repo: string; tag: string } {
  if (name === undefined) return { repo: '<none>', tag: '<none>' };
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { repo: name, tag: '<none>' };
}

function since(created: string | undefined): string {
  const t = created ? Date.parse(created) : NaN;
  return Number.isNaN(t) ? 'Less than a second' : humanDuration(Math.max(0, Date.now() - t));
}

export function renderDf(df: SystemDf, verbose: boolean): string {
  if (!verbose) {
    const looseLayers = df.layers.total - df.layers.active;
    return renderTable([
      ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
      ['Images', String(df.images.total), String(df.images.active), dfSize(df.images.size), reclaimable(df.images.reclaimable, df.images.size)],
      ['Containers', String(df.containers.total), String(df.containers.active), dfSize(df.containers.size), reclaimable(df.containers.reclaimable, df.containers.size)],
      ['Unused Layers', String(looseLayers), '0', dfSize(df.layers.reclaimable), reclaimable(df.layers.reclaimable, df.layers.reclaimable)],
      ['Blob Cache', String(df.blobCache.count), String(df.blobCache.active), dfSize(df.blobCache.size), reclaimable(df.blobCache.reclaimable, df.blobCache.size)],
    ]);
  }
  let out = 'Images space usage:\n\n';
  const imageRows = df.imageDetails.flatMap((i) =>
    (i.names.length > 0 ? i.names : [undefined]).map((n) => {
      const { repo, tag } = splitName(n);
      return [repo, tag, i.id.slice(0, 12), since(i.created), dfSize(i.size), dfSize(i.sharedSize), dfSize(i.uniqueSize), String(i.containers)];
    }),
  );
  out += renderTable([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], ...imageRows]);
  out += '\nContainers space usage:\n\n';
  const containerRows = df.containerDetails.map((c) => [
    c.id.slice(0, 12), c.image.slice(0, 12), dfSize(c.size), since(c.created), c.active ? 'Mounted' : 'Unmounted', c.names.join(','),
  ]);
  out += renderTable([['CONTAINER ID', 'IMAGE', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], ...containerRows]);
  out += '\nBlob cache space usage:\n\n';
  out += renderTable([
    ['BLOBS', 'REFERENCED', 'SIZE', 'RECLAIMABLE'],
    [String(df.blobCache.count), String(df.blobCache.active), dfSize(df.blobCache.size), reclaimable(df.blobCache.reclaimable, df.blobCache.size)],
  ]);
  return out;
}

export async function dfCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--format']);
  if (has(args, '--help', '-h')) {
    process.stdout.write(DF_HELP);
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('system df takes no arguments');
  const format = stringFlag(args, '--format');
  if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`unknown --format '${format}' (json or table)`);
  return withStore(g, async (store) => {
    const df = await systemDf(store);
    if (format === 'json') process.stdout.write(`${goJson(df, 4)}\n`);
    else process.stdout.write(renderDf(df, has(args, '-v', '--verbose')));
    return 0;
  });
}

// ---- image prune ------------------------------------------------------------------------------------------------

const IMAGE_PRUNE_HELP = `Usage: carrier image prune [options]

Remove dangling images (no name, no container, not the base of another image); with -a every image no container
uses. Layers go with them unless another image or a container still uses them. Prints the removed image ids.

Options:
  -a, --all     remove all images no container uses
  -f, --force   do not ask for confirmation
`;

export async function imagePruneCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (has(args, '--help', '-h')) {
    process.stdout.write(IMAGE_PRUNE_HELP);
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('image prune takes no arguments');
  const all = has(args, '-a', '--all');
  if (!has(args, '-f', '--force')) {
    const what = all ? 'all images without at least one container associated with them' : 'all dangling images';
    if (!(await confirm(`WARNING! This command removes ${what}.\nAre you sure you want to continue? [y/N] `))) return 0;
  }
  return withStore(g, async (store) => {
    for (const r of await store.pruneImages({ all })) process.stdout.write(`${r.id}\n`);
    return 0;
  });
}

// ---- system prune -----------------------------------------------------------------------------------------------

const SYSTEM_PRUNE_HELP = `Usage: carrier system prune [options]

Remove stopped containers Carrier made, dangling images (-a: all images no container uses), what no record
references (layer directories, l/ links, tar-splits, image and container directories, dead writers' temp files), and
blob cache entries no image refers to; then evict least recently used blobs while the cache is larger than its cap.

Options:
  -a, --all            remove all images no container uses, not only dangling ones
      --volumes        also remove volumes no container uses
  -f, --force          do not ask for confirmation
      --max-size SIZE  blob cache cap (e.g. 10G); default CARRIER_CACHE_MAX_SIZE, else no cap
`;

export async function systemPruneCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--max-size']);
  if (has(args, '--help', '-h')) {
    process.stdout.write(SYSTEM_PRUNE_HELP);
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('system prune takes no arguments');
  const all = has(args, '-a', '--all');
  const volumes = has(args, '--volumes');
  const sizeFlag = stringFlag(args, '--max-size');
  const maxSize = sizeFlag !== undefined ? parseByteSize(sizeFlag) : cacheMaxSizeFromEnv(process.env);
  if (!has(args, '-f', '--force')) {
    const images = all ? 'all images without at least one container associated with them' : 'all dangling images';
    const prompt =
      'WARNING! This command removes:\n' +
      '\t- all stopped containers (made by Carrier)\n' +
      (volumes ? '\t- all volumes not used by at least one container\n' : '') +
      `\t- ${images}\n` +
      '\t- all layers, links, tar-splits and temp files no image or container references\n' +
      '\t- all blob cache entries no image refers to' + (maxSize !== undefined ? `, and the least recently used beyond ${dfSize(maxSize)}` : '') + '\n\n' +
      'Are you sure you want to continue? [y/N] ';
    if (!(await confirm(prompt))) return 0;
  }
  return withStore(g, async (store) => {
    const before = await systemDf(store);
    const containers = await pruneContainers(store);
    const prunedVolumes = volumes ? await pruneVolumes(store) : [];
    const images = await store.pruneImages({ all });
    const swept = await store.sweepOrphans();
    const blobs = await pruneBlobCache(store, maxSize !== undefined ? { maxSize } : {});
    const after = await systemDf(store);
    if (containers.length > 0) process.stdout.write(`Deleted Containers\n${containers.map((id) => `${id}\n`).join('')}`);
    if (prunedVolumes.length > 0) process.stdout.write(`Deleted Volumes\n${prunedVolumes.map((v) => `${v}\n`).join('')}`);
    if (images.length > 0) process.stdout.write(`Deleted Images\n${images.map((r) => `${r.id}\n`).join('')}`);
    if (swept.length > 0) process.stdout.write(`Deleted Orphans\n${swept.map((p) => `${p}\n`).join('')}`);
    if (blobs.removed.length > 0) {
      process.stdout.write(`Deleted Blobs\n${blobs.removed.map((b) => `${b.digest ?? b.path} (${b.reason})\n`).join('')}`);
    }
    process.stdout.write(`Total reclaimed space: ${dfSize(Math.max(0, before.totalSize - after.totalSize))}\n`);
    return 0;
  });
}

// ---- system reset -----------------------------------------------------------------------------------------------

const RESET_HELP = `Usage: carrier system reset [-f]

Remove everything: all images, containers and layers (the graph root's and run root's contents) and the blob cache.
Refused while a layer is mounted.

Options:
  -f, --force   do not ask for confirmation
`;

/** Refuses directories whose contents must never be emptied wholesale, whatever the configuration says. */
function checkResettable(dir: string): void {
  const abs = resolve(dir);
  const forbidden = new Set(['/', resolve(homedir()), '/home', '/root', '/tmp', '/var', '/var/lib', '/usr', '/etc', '/run']);
  if (forbidden.has(abs)) throw new ExitError(`refusing to empty ${abs}: it is not a store directory`, 125);
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) await removeTree(join(dir, name));
}

export async function systemResetCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (has(args, '--help', '-h')) {
    process.stdout.write(RESET_HELP);
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('system reset takes no arguments');
  const store = await openStore(g);
  let dirs: { graphroot: string; runroot: string; blobCache: string };
  try {
    dirs = { graphroot: store.graphroot, runroot: store.runroot, blobCache: store.config.blobCache };
    const mounted = (await systemDf(store)).containerDetails.filter((c) => c.active);
    if (mounted.length > 0) {
      throw new ExitError(`${mounted.length} container(s) are mounted (${mounted.map((c) => c.id.slice(0, 12)).join(', ')}): stop them first`, 125);
    }
  } finally {
    await store.close();
  }
  for (const d of Object.values(dirs)) checkResettable(d);
  if (!has(args, '-f', '--force')) {
    const prompt =
      'WARNING! This will remove:\n' +
      '        - all containers\n' +
      '        - all images\n' +
      '        - all layers\n' +
      `        - the blob cache directory: "${dirs.blobCache}"\n` +
      `        - the graphRoot directory: "${dirs.graphroot}"\n` +
      `        - the runRoot directory: "${dirs.runroot}"\n` +
      'Are you sure you want to continue? [y/N] ';
    if (!(await confirm(prompt))) return 0;
  }
  await emptyDir(dirs.graphroot);
  await emptyDir(dirs.runroot);
  await emptyDir(dirs.blobCache);
  return 0;
}

// ---- `carrier system <sub>` ---------------------------------------------------------------------------------------

export async function systemCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'df':
      return dfCommand(g, rest);
    case 'prune':
      return systemPruneCommand(g, rest);
    case 'reset':
      return systemResetCommand(g, rest);
    default:
      throw new UsageError(`unknown system command '${sub ?? ''}' (df, prune, reset)`);
  }
}

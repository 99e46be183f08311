// `carrier system df`: disk usage as podman's system df prints it, plus Carrier's blob cache.
import { systemDf, type SystemDf } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { decimalUnits, goJson, humanDuration, renderTable } from '../format.js';
import { splitName } from '../names.js';
import { withStore } from '../open-store.js';

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

function since(created: string | undefined): string {
  const t = created ? Date.parse(created) : NaN;
  return Number.isNaN(t) ? 'Less than a second' : humanDuration(Math.max(0, Date.now() - t));
}

function renderDf(df: SystemDf, verbose: boolean): string {
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

export async function diskUsage(ctx: Context): Promise<number> {
  const format = ctx.flags.string('format');
  if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`unknown --format '${format}' (json or table)`);
  return withStore(ctx.globals, async (store) => {
    const df = await systemDf(store);
    if (format === 'json') process.stdout.write(`${goJson(df, 4)}\n`);
    else process.stdout.write(renderDf(df, ctx.flags.bool('verbose')));
    return 0;
  });
}

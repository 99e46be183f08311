// `carrier system prune`: stopped containers, unused images, orphans and the blob cache, with podman's prompt.
import { cacheMaxSizeFromEnv, parseByteSize, pruneBlobCache, pruneContainers, pruneVolumes, systemDf } from '../../index.js';
import type { Context } from '../command.js';
import { confirm } from '../confirm.js';
import { withStore } from '../open-store.js';
import { dfSize } from './df.js';

export async function pruneSystem(ctx: Context): Promise<number> {
  const all = ctx.flags.bool('all');
  const volumes = ctx.flags.bool('volumes');
  const sizeFlag = ctx.flags.string('max-size');
  const maxSize = sizeFlag !== undefined ? parseByteSize(sizeFlag) : cacheMaxSizeFromEnv(process.env);
  if (!ctx.flags.bool('force')) {
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
  return withStore(ctx.globals, async (store) => {
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
    if (blobs.sharedWith.length > 0) {
      process.stderr.write(`WARN[0000] the blob cache ${store.config.blobCache} is shared with ${blobs.sharedWith.join(', ')}: only the size cap removed blobs from it\n`);
    }
    process.stdout.write(`Total reclaimed space: ${dfSize(Math.max(0, before.totalSize - after.totalSize))}\n`);
    return 0;
  });
}

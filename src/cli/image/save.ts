// `carrier save` (images as docker-archive / oci-archive / oci-dir, as podman save writes them) and `carrier
// checkout` (an image flattened into a directory).
import { resolve } from 'node:path';
import { CarrierError, checkoutImage, saveImages, type SaveFormat } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { ExitError } from '../errors.js';
import { humanSize, plural } from '../format.js';
import { knownImage, notKnown } from '../not-known.js';
import { withStore } from '../open-store.js';
import { interruptSignal } from '../signals.js';

export async function checkout(ctx: Context): Promise<number> {
  const [image, dir] = ctx.args as [string, string];
  const mode = ctx.flags.string('mode')!;
  if (mode !== 'auto' && mode !== 'reflink' && mode !== 'copy') throw new UsageError(`--mode must be auto, reflink or copy`);
  const quiet = ctx.flags.bool('quiet');
  return withStore(ctx.globals, async (store) => {
    const int = interruptSignal();
    try {
      const r = await checkoutImage(store, image, dir, { mode, signal: int.signal }).catch((err: unknown) => {
        if (err instanceof CarrierError && err.code === 'ENOTEMPTY' && err.path !== undefined && resolve(err.path) === resolve(dir)) {
          throw new ExitError(`${dir} exists and is not empty: check out into a new or empty directory`, 125);
        }
        return notKnown(err, 'image', image);
      });
      if (!quiet) {
        const how = r.bytesCopied === 0 && r.bytesCloned > 0 ? 'reflinked' : r.bytesCloned === 0 ? 'copied' : 'reflinked and copied';
        process.stdout.write(
          `Checked out ${r.image.slice(0, 12)} (${plural(r.layers, 'layer')}) into ${dir}: ${plural(r.files, 'file')}, ${plural(r.dirs, 'directory', 'directories')}, ${plural(r.symlinks, 'symlink')}; ` +
            `${how} (${humanSize(r.bytesCloned)} cloned, ${humanSize(r.bytesCopied)} copied, method ${r.method})\n`,
        );
      }
      return 0;
    } finally {
      int.dispose();
    }
  });
}

export async function save(ctx: Context): Promise<number> {
  const { flags, args } = ctx;
  const format = flags.string('format') as SaveFormat;
  if (!['docker-archive', 'oci-archive', 'oci-dir'].includes(format)) {
    throw new UsageError(`unknown format ${JSON.stringify(format)}: use docker-archive, oci-archive or oci-dir`);
  }
  const multi = flags.bool('multi-image-archive');
  if (multi && format !== 'docker-archive') throw new UsageError('--multi-image-archive can only be used with the docker-archive format');
  const compression = flags.string('compression')!;
  if (compression !== 'gzip' && compression !== 'none') throw new UsageError('--compression must be gzip or none');
  const output = flags.string('output');
  if (format === 'oci-dir' && output === undefined) throw new UsageError('oci-dir needs -o DIR');
  if (output === undefined && process.stdout.isTTY) {
    throw new ExitError('failed to save image(s): refusing to save to terminal. Use -o flag or redirect', 125);
  }
  const quiet = flags.bool('quiet');
  return withStore(ctx.globals, async (store) => {
    // Without -m, podman's docker-archive keeps one image; names of the same image may still be given together.
    if (!multi && format === 'docker-archive' && args.length > 1) {
      const ids = new Set<string>();
      for (const q of args) ids.add((await knownImage(store, q)).id);
      if (ids.size > 1) throw new UsageError('several images need --multi-image-archive (-m)');
    }
    const int = interruptSignal();
    try {
      const r = await saveImages(store, [...args], {
        format,
        output: output ?? process.stdout,
        compression,
        signal: int.signal,
      }).catch((err: unknown) => {
        const q = args.find((p) => err instanceof Error && err.message.includes(p));
        return notKnown(err, 'image', q ?? '');
      });
      if (!quiet && output !== undefined) {
        const reused = r.layers.filter((l) => l.source === 'blob-cache').length;
        process.stderr.write(`Saved ${r.images.length} image(s), ${r.layers.length} layer(s)${format === 'docker-archive' ? '' : ` (${reused} from the blob cache)`}, ${humanSize(r.bytes)} to ${output}\n`);
      }
      return 0;
    } finally {
      int.dispose();
    }
  });
}

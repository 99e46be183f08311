// Copy commands: checkout (an image flattened into a directory), export (a container's tree as a tar), save (images
// as docker-archive / oci-archive / oci-dir, as `podman save` writes them).
import { CarrierError } from '../errors.js';
import { checkoutImage } from '../checkout/checkout.js';
import { exportContainer } from '../checkout/export.js';
import { saveImages, type SaveFormat } from '../save/save.js';
import { UsageError, parseArgs, stringFlag } from './args.js';
import { humanSize } from './format.js';
import { ExitError, type GlobalOptions } from './errors.js';
import { withStore } from './open-store.js';


function notKnown(err: unknown, what: string, query: string): never {
  if (query !== '' && err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && err.message.includes(query)) {
    throw new ExitError(`${query}: ${what} not known`, 125);
  }
  throw err;
}

function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onInt = (): void => ac.abort();
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onInt);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onInt);
    },
  };
}

const CHECKOUT_HELP = `Usage: carrier checkout [options] IMAGE DIR

Flatten an image's layers into the directory DIR (created; an existing DIR must be empty), as the merged overlay
view shows them. File contents are reflinked from the store where the filesystem can (XFS, btrfs), else copied.

Options:
      --mode MODE   auto (default), reflink (fail unless every file can be cloned) or copy
  -q, --quiet       print nothing
`;

export async function checkoutCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--mode']);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(CHECKOUT_HELP);
    return 0;
  }
  if (args.positionals.length !== 2) throw new UsageError('checkout needs an IMAGE and a DIR');
  const [image, dir] = args.positionals as [string, string];
  const mode = stringFlag(args, '--mode') ?? 'auto';
  if (mode !== 'auto' && mode !== 'reflink' && mode !== 'copy') throw new UsageError(`--mode must be auto, reflink or copy`);
  const quiet = args.flags.has('-q') || args.flags.has('--quiet');
  return withStore(g, async (store) => {
    const int = interruptSignal();
    try {
      const r = await checkoutImage(store, image, dir, { mode, signal: int.signal }).catch((err: unknown) => notKnown(err, 'image', image));
      if (!quiet) {
        const how = r.bytesCopied === 0 && r.bytesCloned > 0 ? 'reflinked' : r.bytesCloned === 0 ? 'copied' : 'reflinked and copied';
        process.stdout.write(
          `Checked out ${r.image.slice(0, 12)} (${r.layers} layers) into ${dir}: ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks; ` +
            `${how} (${humanSize(r.bytesCloned)} cloned, ${humanSize(r.bytesCopied)} copied, method ${r.method})\n`,
        );
      }
      return 0;
    } finally {
      int.dispose();
    }
  });
}

const EXPORT_HELP = `Usage: carrier export [options] CONTAINER

Write a container's file system (its image's layers and its own changes, merged) as a tar archive.

Options:
  -o, --output FILE   write to FILE (default: standard output, which must not be a terminal)
`;

export async function exportCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['-o', '--output']);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(EXPORT_HELP);
    return 0;
  }
  if (args.positionals.length !== 1) throw new UsageError('export needs exactly one CONTAINER');
  const query = args.positionals[0]!;
  const output = stringFlag(args, '-o') ?? stringFlag(args, '--output');
  if (output === undefined && process.stdout.isTTY) {
    throw new ExitError('refusing to export to terminal. Use -o flag or redirect', 125);
  }
  return withStore(g, async (store) => {
    const int = interruptSignal();
    try {
      await exportContainer(store, query, output ?? process.stdout, { signal: int.signal }).catch((err: unknown) => notKnown(err, 'container', query));
      return 0;
    } finally {
      int.dispose();
    }
  });
}

const SAVE_HELP = `Usage: carrier save [options] IMAGE...

Save images to an archive, as podman save writes them.

Options:
      --format FORMAT       docker-archive (default), oci-archive or oci-dir
  -o, --output PATH         the archive file (default: standard output), or the directory for oci-dir
  -m, --multi-image-archive several images in one docker-archive
      --compression C       OCI formats, layers not in the blob cache: gzip (default, as podman) or none
  -q, --quiet               print nothing
`;

export async function saveCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--format', '-o', '--output', '--compression']);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(SAVE_HELP);
    return 0;
  }
  if (args.positionals.length === 0) throw new UsageError('save needs at least one IMAGE');
  const format = (stringFlag(args, '--format') ?? 'docker-archive') as SaveFormat;
  if (!['docker-archive', 'oci-archive', 'oci-dir'].includes(format)) {
    throw new UsageError(`unknown format ${JSON.stringify(format)}: use docker-archive, oci-archive or oci-dir`);
  }
  const multi = args.flags.has('-m') || args.flags.has('--multi-image-archive');
  if (multi && format !== 'docker-archive') throw new UsageError('--multi-image-archive can only be used with the docker-archive format');
  const compression = stringFlag(args, '--compression') ?? 'gzip';
  if (compression !== 'gzip' && compression !== 'none') throw new UsageError('--compression must be gzip or none');
  const output = stringFlag(args, '-o') ?? stringFlag(args, '--output');
  if (format === 'oci-dir' && output === undefined) throw new UsageError('oci-dir needs -o DIR');
  if (output === undefined && process.stdout.isTTY) {
    throw new ExitError('failed to save image(s): refusing to save to terminal. Use -o flag or redirect', 125);
  }
  // Without -m, podman's docker-archive keeps one image; names of the same image may still be given together.
  const quiet = args.flags.has('-q') || args.flags.has('--quiet');
  return withStore(g, async (store) => {
    if (!multi && format === 'docker-archive' && args.positionals.length > 1) {
      const ids = new Set<string>();
      for (const q of args.positionals) {
        const img = await store.image(q);
        if (!img) throw new ExitError(`${q}: image not known`, 125);
        ids.add(img.id);
      }
      if (ids.size > 1) throw new UsageError('several images need --multi-image-archive (-m)');
    }
    const int = interruptSignal();
    try {
      const r = await saveImages(store, args.positionals, {
        format,
        output: output ?? process.stdout,
        compression,
        signal: int.signal,
      }).catch((err: unknown) => {
        const q = args.positionals.find((p) => err instanceof Error && err.message.includes(p));
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

// `carrier commit` / `carrier container commit`: a container's changes as a new image, as podman commit makes it.
// Progress lines go to stderr (none with -q), the new image's id to stdout.
import { writeFile } from 'node:fs/promises';
import { CarrierError, commit, needsUserNamespace, type CommitFormat } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { reexecInNamespace } from '../namespace.js';
import { withStore } from '../open-store.js';
import { interruptSignal } from '../signals.js';

export async function commitCli(ctx: Context): Promise<number> {
  // Rootless, the container's files belong to ids only Carrier's user namespace can read.
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  const [container, name] = ctx.args as [string, string | undefined];
  const format = (ctx.flags.string('format') ?? 'oci') as CommitFormat;
  if (format !== 'oci' && format !== 'docker') throw new ExitError(`unrecognized image format "${format}"`, 125);
  const quiet = ctx.flags.bool('quiet');
  const iidfile = ctx.flags.string('iidfile');
  const message = ctx.flags.string('message');
  const author = ctx.flags.string('author');
  const compression = ctx.flags.string('compression-format');
  if (compression !== undefined && !['none', 'gzip', 'zstd', 'zstd:chunked'].includes(compression)) {
    throw new ExitError('--compression-format must be none, gzip, zstd or zstd:chunked', 125);
  }
  if (format === 'oci' && message !== undefined && message !== '') throw new ExitError('messages are only compatible with the docker image format (-f docker)', 125);
  return withStore(ctx.globals, async (store) => {
    const int = interruptSignal();
    try {
      const say = (line: string): void => {
        if (!quiet) process.stderr.write(`${line}\n`);
      };
      const result = await commit(store, container, name, {
        changes: ctx.flags.list('change'),
        format,
        pause: ctx.flags.bool('pause'),
        ...(message !== undefined ? { message } : {}),
        ...(author !== undefined ? { author } : {}),
        ...(compression !== undefined ? { compression: compression as 'none' | 'gzip' | 'zstd' | 'zstd:chunked' } : {}),
        signal: int.signal,
        onLayer: (layer) => say(`Copying blob ${layer.digest} done`),
      }).catch((err: unknown) => {
        if (err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && err.message === `no such container ${container}`) {
          throw new ExitError(`no container with name or ID "${container}" found: no such container`, 125);
        }
        if (err instanceof CarrierError && err.code === 'CARRIER_INVALID_ARGUMENT') throw new ExitError(err.message, 125);
        throw err;
      });
      say(`Copying config ${result.configDigest} done`);
      say('Writing manifest to image destination');
      if (iidfile !== undefined) await writeFile(iidfile, result.id);
      process.stdout.write(`${result.id}\n`);
      return 0;
    } finally {
      int.dispose();
    }
  });
}

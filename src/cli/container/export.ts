// `carrier export` (container export): a container's merged file system as a tar archive.
import { exportContainer } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { notKnown } from '../not-known.js';
import { withStore } from '../open-store.js';
import { interruptSignal } from '../signals.js';

export async function exportFs(ctx: Context): Promise<number> {
  const query = ctx.args[0]!;
  const output = ctx.flags.string('output');
  if (output === undefined && process.stdout.isTTY) {
    throw new ExitError('refusing to export to terminal. Use -o flag or redirect', 125);
  }
  return withStore(ctx.globals, async (store) => {
    const int = interruptSignal();
    try {
      await exportContainer(store, query, output ?? process.stdout, { signal: int.signal }).catch((err: unknown) => notKnown(err, 'container', query));
      return 0;
    } finally {
      int.dispose();
    }
  });
}

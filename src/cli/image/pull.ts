// `carrier pull`: the CLI face of pull(). Progress goes to stderr (bars on a terminal, lines otherwise), the image
// id to stdout; Ctrl-C cancels and leaves no half layer. `carrier run` and `create` pull through the same function.
import { CarrierError, pull, type PullResult, type Store } from '../../index.js';
import type { Context, Flags } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';
import { interruptSignal } from '../signals.js';
import { pullOptionsOf } from './registry-flags.js';
import { PullProgress } from './progress.js';

export async function pullImage(ctx: Context): Promise<number> {
  return withStore(ctx.globals, async (store) => {
    const result = await pullWithFlags(store, ctx.args[0]!, ctx.flags, { quiet: ctx.flags.bool('quiet') });
    process.stdout.write(`${result.id}\n`);
    return 0;
  });
}

/**
 * Pulls `reference` as the pull flags (registry-flags.ts) say, which pull, run and create all define; progress on stderr
 * unless `quiet`. Ctrl-C: exit 130.
 */
export async function pullWithFlags(store: Store, reference: string, flags: Flags, { quiet }: { quiet: boolean }): Promise<PullResult> {
  const options = pullOptionsOf(flags);
  const int = interruptSignal();
  const progress = quiet ? undefined : new PullProgress(process.stderr);
  try {
    const result = await pull(store, reference, {
      ...options,
      signal: int.signal,
      onWarning: (w) => process.stderr.write(`WARN[0000] ${w}\n`),
      ...(progress ? { onProgress: progress.handle } : {}),
    });
    progress?.flush();
    return result;
  } catch (err) {
    progress?.flush();
    if (err instanceof CarrierError && err.code === 'ABORT_ERR' && int.signal.aborted) {
      throw new ExitError('pull cancelled; nothing was stored', 130);
    }
    throw err;
  } finally {
    int.dispose();
  }
}

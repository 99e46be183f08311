// `carrier pull`: the CLI face of pull(). Progress goes to stderr (bars on a terminal, lines otherwise), the image
// id to stdout; Ctrl-C cancels and leaves no half layer. `carrier run` and `create` pull through the same function.
import { CarrierError, pull, type PullOptions, type PullResult, type Store } from '../../index.js';
import { UsageError, type Context, type Flags } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';
import { interruptSignal } from '../signals.js';
import { PullProgress } from './progress.js';

export async function pullImage(ctx: Context): Promise<number> {
  return withStore(ctx.globals, async (store) => {
    const result = await pullWithFlags(store, ctx.args[0]!, ctx.flags, { quiet: ctx.flags.bool('quiet') });
    process.stdout.write(`${result.id}\n`);
    return 0;
  });
}

/**
 * Pulls `reference` with the registry flags pull, run and create share (--platform/--os/--arch/--variant, --creds,
 * --authfile, --tls-verify, and --no-sync where defined), progress on stderr unless `quiet`. Ctrl-C: exit 130.
 */
export async function pullWithFlags(store: Store, reference: string, flags: Flags, { quiet }: { quiet: boolean }): Promise<PullResult> {
  const platform = platformFlag(flags);
  const int = interruptSignal();
  const progress = quiet ? undefined : new PullProgress(process.stderr);
  try {
    const creds = flags.string('creds');
    const authfile = flags.string('authfile');
    const options: PullOptions = {
      signal: int.signal,
      onWarning: (w) => process.stderr.write(`WARN[0000] ${w}\n`),
      ...(platform ? { platform } : {}),
      // podman spells it --tls-verify=false; left out, the registry's configuration decides.
      ...(flags.given('tls-verify') ? { tlsVerify: flags.bool('tls-verify') } : {}),
      ...(creds !== undefined ? { creds } : {}),
      ...(authfile !== undefined ? { authfile } : {}),
      ...(flags.defines('no-sync') && flags.bool('no-sync') ? { sync: false } : {}),
      ...(progress ? { onProgress: progress.handle } : {}),
    };
    const result = await pull(store, reference, options);
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

function platformFlag(flags: Flags): string | undefined {
  const whole = flags.string('platform');
  const os = flags.string('os');
  const arch = flags.string('arch');
  const variant = flags.string('variant');
  if (whole !== undefined) {
    if (os || arch || variant) throw new UsageError('--platform cannot be combined with --os, --arch or --variant');
    return whole;
  }
  if (!os && !arch && !variant) return undefined;
  const host = process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'amd64' : process.arch;
  return [os ?? 'linux', arch ?? host, ...(variant ? [variant] : [])].join('/');
}

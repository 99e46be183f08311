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
 * --authfile, --tls-verify; --no-sync, --timeout and --signature-policy where the command defines them), progress on
 * stderr unless `quiet`. Ctrl-C: exit 130.
 */
export async function pullWithFlags(store: Store, reference: string, flags: Flags, { quiet }: { quiet: boolean }): Promise<PullResult> {
  const platform = platformFlag(flags);
  const int = interruptSignal();
  const progress = quiet ? undefined : new PullProgress(process.stderr);
  try {
    const creds = flags.string('creds');
    const authfile = flags.string('authfile');
    const certDir = flags.defines('cert-dir') ? flags.string('cert-dir') : undefined;
    const timeout = flags.defines('timeout') ? flags.string('timeout') : undefined;
    const signaturePolicy = flags.defines('signature-policy') ? flags.string('signature-policy') : undefined;
    const partial = flags.defines('partial') ? flags.string('partial') : undefined;
    if (partial !== undefined && partial !== 'auto' && partial !== 'never') throw new UsageError('--partial must be auto or never');
    const options: PullOptions = {
      ...(partial !== undefined ? { partial } : {}),
      signal: int.signal,
      onWarning: (w) => process.stderr.write(`WARN[0000] ${w}\n`),
      ...(platform ? { platform } : {}),
      // podman spells it --tls-verify=false; left out, the registry's configuration decides.
      ...(flags.given('tls-verify') ? { tlsVerify: flags.bool('tls-verify') } : {}),
      ...(creds !== undefined ? { creds } : {}),
      ...(authfile !== undefined ? { authfile } : {}),
      ...(certDir !== undefined ? { certDir } : {}),
      ...(flags.defines('no-sync') && flags.bool('no-sync') ? { sync: false } : {}),
      ...(timeout !== undefined ? { timeout: parseDuration(timeout, '--timeout') } : {}),
      ...(progress ? { onProgress: progress.handle } : {}),
      ...(signaturePolicy !== undefined ? { signaturePolicy } : {}),
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

/** A Go-style duration (`90s`, `5m`, `1h30m`, `500ms`) or plain seconds, in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new UsageError(`invalid argument "${text}" for "${flag}" flag: time: invalid duration "${text}"`);
  }
  const ms = parts.reduce((n, p) => n + Number(p[1]) * units[p[2]!]!, 0);
  if (!(ms > 0)) throw new UsageError(`invalid argument "${text}" for "${flag}" flag: must be more than zero`);
  return ms;
}


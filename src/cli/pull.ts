// `carrier pull`: the CLI face of pull(). Progress goes to stderr (bars on a terminal, lines otherwise), the image
// id to stdout; Ctrl-C cancels and leaves no half layer.
import { parseArgs, stringFlag, UsageError } from './args.js';
import { openStore } from './open-store.js';
import type { GlobalOptions } from './errors.js';
import { PullProgress } from './progress.js';
import { pull, type PullOptions } from '../pull.js';
import { CarrierError } from '../errors.js';

const HELP = `Usage: carrier pull [options] IMAGE

Pull an image from a registry into the store.

Options:
  --platform OS/ARCH[/VARIANT]  the platform to choose from a multi-platform image (default: this machine)
  --arch ARCH, --os OS, --variant VARIANT   the same, one part at a time
  --creds USER:PASS             credentials for the registry
  --authfile FILE               auth.json to read (default: $REGISTRY_AUTH_FILE, containers and docker auth files)
  --tls-verify=false            allow plain http and untrusted certificates
  --no-sync                     do not flush layers to disk before recording them (podman's durability:
                                faster, but a power loss soon after can leave a layer with files missing)
  -q, --quiet                   print only the image id
`;

const VALUED = ['--platform', '--arch', '--os', '--variant', '--creds', '--authfile', '--tls-verify'];
const BOOLEAN = ['-q', '--quiet', '--no-sync', '--help', '-h'];

export async function pullCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  // podman spells booleans --tls-verify=false; a bare --tls-verify means true.
  // unknown flags are refused: a pull meant to be --no-sync must not quietly sync, or the other way round
  const args = parseArgs(
    argv.map((a) => (a === '--tls-verify' ? '--tls-verify=true' : a)),
    VALUED,
    BOOLEAN,
  );
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.positionals.length !== 1) throw new UsageError('pull takes exactly one image reference');
  const reference = args.positionals[0]!;
  const quiet = args.flags.has('-q') || args.flags.has('--quiet');
  const tls = stringFlag(args, '--tls-verify');
  if (tls !== undefined && tls !== 'true' && tls !== 'false') throw new UsageError('--tls-verify takes true or false');
  const platform = platformFlag(args);

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = quiet ? undefined : new PullProgress(process.stderr);
  const store = await openStore(g);
  try {
    const creds = stringFlag(args, '--creds');
    const authfile = stringFlag(args, '--authfile');
    const options: PullOptions = {
      signal: controller.signal,
      onWarning: (w) => process.stderr.write(`WARN[0000] ${w}\n`),
      ...(platform ? { platform } : {}),
      ...(tls !== undefined ? { tlsVerify: tls === 'true' } : {}),
      ...(creds !== undefined ? { creds } : {}),
      ...(authfile !== undefined ? { authfile } : {}),
      ...(args.flags.has('--no-sync') ? { sync: false } : {}),
      ...(progress ? { onProgress: progress.handle } : {}),
    };
    const result = await pull(store, reference, options);
    progress?.flush();
    process.stdout.write(`${result.id}\n`);
    return 0;
  } catch (err) {
    progress?.flush();
    if (err instanceof CarrierError && err.code === 'ABORT_ERR' && controller.signal.aborted) {
      process.stderr.write('Error: pull cancelled; nothing was stored\n');
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await store.close();
  }
}

function platformFlag(args: ReturnType<typeof parseArgs>): string | undefined {
  const whole = stringFlag(args, '--platform');
  const os = stringFlag(args, '--os');
  const arch = stringFlag(args, '--arch');
  const variant = stringFlag(args, '--variant');
  if (whole !== undefined) {
    if (os || arch || variant) throw new UsageError('--platform cannot be combined with --os, --arch or --variant');
    return whole;
  }
  if (!os && !arch && !variant) return undefined;
  const host = process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'amd64' : process.arch;
  return [os ?? 'linux', arch ?? host, ...(variant ? [variant] : [])].join('/');
}

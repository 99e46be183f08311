import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { applyLayer, type Compression } from '../layer/apply.js';
import { assembleLayer } from '../layer/assemble.js';
import { UsageError, parseArgs, stringFlag } from './args.js';

const APPLY_HELP = `Usage: carrier layer apply [options] BLOB DIR

Extracts the compressed layer BLOB (gzip, zstd or plain tar; '-' reads standard input) into DIR, which must be
an empty directory, and prints the result (digests, sizes, owners, skipped entries) as JSON.

Options:
  --compression auto|gzip|zstd|none   how BLOB is compressed (default: auto)
  --expected-digest sha256:...        refuse the blob unless its bytes hash to this
  --expected-diff-id sha256:...       refuse the layer unless its tar hashes to this
  --whiteouts overlay|aufs            how .wh. entries are stored (default: overlay)
  --tar-split FILE                    also write the tar-split file podman keeps per layer
  --rootless / --no-rootless          unprivileged rules (default: rootless unless run as root)
  --max-bytes N                       refuse layers larger than N uncompressed bytes
`;

const ASSEMBLE_HELP = `Usage: carrier layer assemble [-o FILE] TARSPLIT DIR

Rebuilds the layer's original uncompressed tar, byte for byte, from TARSPLIT and the extracted DIR.
Writes to FILE, or standard output.
`;

export async function layerCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'apply') return apply(rest);
  if (sub === 'assemble') return assemble(rest);
  throw new UsageError(`unknown layer command '${sub ?? ''}' (apply, assemble)`);
}

async function apply(argv: string[]): Promise<number> {
  const args = parseArgs(argv, [
    '--compression',
    '--expected-digest',
    '--expected-diff-id',
    '--whiteouts',
    '--tar-split',
    '--max-bytes',
  ]);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(APPLY_HELP);
    return 0;
  }
  const [blob, dir] = args.positionals;
  if (!blob || !dir || args.positionals.length !== 2) throw new UsageError('layer apply needs BLOB and DIR');
  const whiteouts = stringFlag(args, '--whiteouts');
  if (whiteouts !== undefined && whiteouts !== 'overlay' && whiteouts !== 'aufs') {
    throw new UsageError('--whiteouts must be overlay or aufs');
  }
  const maxBytes = stringFlag(args, '--max-bytes');
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await applyLayer(blob === '-' ? process.stdin : blob, dir, {
      compression: (stringFlag(args, '--compression') ?? 'auto') as Compression,
      ...optional('expectedDigest', stringFlag(args, '--expected-digest')),
      ...optional('expectedDiffID', stringFlag(args, '--expected-diff-id')),
      ...optional('whiteouts', whiteouts as 'overlay' | 'aufs' | undefined),
      ...optional('tarSplit', stringFlag(args, '--tar-split')),
      ...(args.flags.has('--rootless') ? { rootless: true } : {}),
      ...(args.flags.has('--no-rootless') ? { rootless: false } : {}),
      ...(maxBytes !== undefined ? { limits: { maxUncompressedBytes: Number(maxBytes) } } : {}),
      signal: controller.signal,
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function assemble(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['-o', '--output']);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(ASSEMBLE_HELP);
    return 0;
  }
  const [tarSplit, dir] = args.positionals;
  if (!tarSplit || !dir || args.positionals.length !== 2) throw new UsageError('layer assemble needs TARSPLIT and DIR');
  const output = stringFlag(args, '-o') ?? stringFlag(args, '--output');
  await pipeline(assembleLayer(tarSplit, dir), output ? createWriteStream(output) : process.stdout);
  return 0;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

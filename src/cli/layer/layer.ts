// `carrier layer apply` and `layer assemble`: one layer blob in, the original tar back out, without a store.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { applyLayer, assembleLayer, type Compression } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { interruptSignal } from '../signals.js';

export async function apply(ctx: Context): Promise<number> {
  const { flags } = ctx;
  const [blob, dir] = ctx.args as [string, string];
  const whiteouts = flags.string('whiteouts');
  if (whiteouts !== undefined && whiteouts !== 'overlay' && whiteouts !== 'aufs') throw new UsageError('--whiteouts must be overlay or aufs');
  const maxBytes = flags.string('max-bytes');
  const int = interruptSignal();
  try {
    const result = await applyLayer(blob === '-' ? process.stdin : blob, dir, {
      compression: flags.string('compression') as Compression,
      ...optional('expectedDigest', flags.string('expected-digest')),
      ...optional('expectedDiffID', flags.string('expected-diff-id')),
      ...optional('whiteouts', whiteouts as 'overlay' | 'aufs' | undefined),
      ...optional('tarSplit', flags.string('tar-split')),
      ...(flags.bool('rootless') ? { rootless: true } : {}),
      ...(flags.bool('no-rootless') ? { rootless: false } : {}),
      ...(maxBytes !== undefined ? { limits: { maxUncompressedBytes: Number(maxBytes) } } : {}),
      signal: int.signal,
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } finally {
    int.dispose();
  }
}

export async function assemble(ctx: Context): Promise<number> {
  const [tarSplit, dir] = ctx.args as [string, string];
  const output = ctx.flags.string('output');
  await pipeline(assembleLayer(tarSplit, dir), output ? createWriteStream(output) : process.stdout);
  return 0;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

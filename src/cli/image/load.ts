// `carrier load` (image load): a docker-archive, oci-archive or OCI layout into the store, as podman load reports it.
import { mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadImage } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { withStore } from '../open-store.js';
import { interruptSignal } from '../signals.js';

export async function load(ctx: Context): Promise<number> {
  const quiet = ctx.flags.bool('quiet');
  let input = ctx.flags.string('input');
  const signaturePolicy = ctx.flags.string('signature-policy');
  let tmp: string | undefined;
  const int = interruptSignal();
  try {
    if (input === undefined) {
      if (process.stdin.isTTY) throw new UsageError('cannot read from terminal; use -i FILE or redirect standard input');
      tmp = await mkdtemp(join(tmpdir(), 'carrier-stdin-'));
      input = join(tmp, 'archive');
      await pipeline(process.stdin, createWriteStream(input, { mode: 0o600 }));
    }
    const file = input;
    const result = await withStore(ctx.globals, (store) =>
      loadImage(store, file, {
        signal: int.signal,
        ...(signaturePolicy !== undefined ? { signaturePolicy } : {}),
        onLayer: quiet
          ? undefined
          : (e) => {
              if (e.state === 'applying') process.stderr.write(`Copying blob ${e.diffID}\n`);
              else if (e.state === 'exists') process.stderr.write(`Copying blob ${e.diffID} skipped: already exists\n`);
            },
      }),
    );
    for (const img of result.images) {
      if (img.names.length === 0) process.stdout.write(`Loaded image: sha256:${img.id}\n`);
      for (const n of img.names) process.stdout.write(`Loaded image: ${n}\n`);
    }
    return 0;
  } finally {
    int.dispose();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  }
}

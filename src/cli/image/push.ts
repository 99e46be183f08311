// `carrier push IMAGE [DESTINATION]` (podman's options) and `carrier copy SRC DEST` (skopeo's syntax). Progress goes
// to stderr as pull renders it (bars on a terminal, lines otherwise); a layer already at the destination or mounted
// there reads "skipped: already exists", as podman prints it. Ctrl-C cancels: no tag names a partial image.
import { writeFile } from 'node:fs/promises';
import { CarrierError, copy, parseTransportReference, push, type CopyEvent, type PullEvent, type PushCompression, type PushResult, type Store } from '../../index.js';
import { UsageError, type Context, type Flags } from '../command.js';
import { openStore } from '../open-store.js';
import { askPassphrase } from '../passphrase.js';
import { interruptSignal } from '../signals.js';
import { PullProgress } from './progress.js';
import { registryAccessOf } from './registry-flags.js';

/** A copy event as the pull progress renders it. */
function asPullEvent(e: CopyEvent): PullEvent {
  switch (e.type) {
    case 'resolved': {
      const { source, ...rest } = e;
      return { ...rest, reference: source };
    }
    case 'layer':
      return { ...e, state: e.state === 'reused' ? 'exists' : e.state === 'copying' ? 'downloading' : e.state };
    case 'progress':
    case 'partial':
      return e;
    case 'committed':
      return { type: 'committed', id: e.id, names: e.names };
  }
}

function compressionFlag(flags: Flags, name: string): PushCompression | undefined {
  const v = flags.string(name);
  if (v === undefined) return undefined;
  if (v !== 'gzip' && v !== 'zstd' && v !== 'zstd:chunked') throw new UsageError(`--${name} must be gzip, zstd or zstd:chunked`);
  return v;
}

/** Runs a push or copy with progress, --digestfile and Ctrl-C handled alike. */
async function transfer(ctx: Context, what: string, run: (signal: AbortSignal, onProgress?: (e: CopyEvent) => void) => Promise<PushResult>): Promise<number> {
  const int = interruptSignal();
  const progress = ctx.flags.bool('quiet') ? undefined : new PullProgress(process.stderr);
  try {
    const result = await run(int.signal, progress ? (e) => progress.handle(asPullEvent(e)) : undefined);
    progress?.flush();
    const digestfile = ctx.flags.string('digestfile');
    if (digestfile !== undefined) await writeFile(digestfile, result.digest);
    return 0;
  } catch (err) {
    progress?.flush();
    if (err instanceof CarrierError && err.code === 'ABORT_ERR' && int.signal.aborted) {
      process.stderr.write(`Error: ${what} cancelled; no manifest was written\n`);
      return 130;
    }
    throw err;
  } finally {
    int.dispose();
  }
}

const warn = (w: string): void => void process.stderr.write(`WARN[0000] ${w}\n`);

/**
 * podman's --sign-by, --sign-by-sigstore-private-key, --sign-passphrase-file and --remove-signatures. As podman, a
 * sigstore key's passphrase not given in a file is asked for on the terminal ("Key Passphrase: "); with no terminal
 * it is empty.
 */
async function signingOptions(
  flags: Flags,
): Promise<{ signBy?: string; signBySigstorePrivateKey?: string; signPassphraseFile?: string; signPassphrase?: string; removeSignatures?: boolean }> {
  const signBy = flags.string('sign-by');
  const sigstore = flags.string('sign-by-sigstore-private-key');
  const passphrase = flags.string('sign-passphrase-file');
  if (passphrase !== undefined && signBy === undefined && sigstore === undefined) {
    throw new UsageError('--sign-passphrase-file needs --sign-by or --sign-by-sigstore-private-key');
  }
  if (passphrase !== undefined && signBy !== undefined && sigstore !== undefined) {
    throw new UsageError('only one of --sign-by and --sign-by-sigstore-private-key can be used with --sign-passphrase-file');
  }
  const asked = sigstore !== undefined && passphrase === undefined && process.stdin.isTTY ? await askPassphrase('Key Passphrase: ') : undefined;
  return {
    ...(signBy !== undefined ? { signBy } : {}),
    ...(sigstore !== undefined ? { signBySigstorePrivateKey: sigstore } : {}),
    ...(passphrase !== undefined ? { signPassphraseFile: passphrase } : {}),
    ...(asked !== undefined ? { signPassphrase: asked } : {}),
    ...(flags.bool('remove-signatures') ? { removeSignatures: true } : {}),
  };
}

export async function pushImage(ctx: Context): Promise<number> {
  const { flags } = ctx;
  const [image, destination] = ctx.args as [string, string | undefined];
  const compressionFormat = compressionFlag(flags, 'compression-format');
  const policy = flags.string('signature-policy');
  const signing = await signingOptions(flags);
  const store = await openStore(ctx.globals);
  try {
    return await transfer(ctx, 'push', (signal, onProgress) =>
      push(store, image, destination, {
        signal,
        onWarning: warn,
        ...(onProgress ? { onProgress } : {}),
        ...registryAccessOf(flags),
        ...(compressionFormat ? { compressionFormat } : {}),
        ...(flags.given('force-compression') ? { forceCompression: flags.bool('force-compression') } : {}),
        ...(policy !== undefined ? { signaturePolicy: policy } : {}),
        ...signing,
        all: flags.bool('all'),
      }),
    );
  } finally {
    await store.close();
  }
}

export async function copyImage(ctx: Context): Promise<number> {
  const { flags } = ctx;
  const [source, destination] = ctx.args as [string, string];
  const src = parseTransportReference(source);
  const dest = parseTransportReference(destination);
  // --authfile serves both sides; --src-authfile and --dest-authfile each override it for theirs.
  const authfile = flags.string('authfile');
  const side = (prefix: 'src' | 'dest') => ({ ...(authfile !== undefined ? { authfile } : {}), ...registryAccessOf(flags, `${prefix}-`) });
  const compressionFormat = compressionFlag(flags, 'dest-compress-format');
  const policy = flags.string('policy') ?? flags.string('signature-policy');
  if (flags.given('policy') && flags.given('signature-policy')) throw new UsageError('give --policy or --signature-policy, not both');
  const signing = await signingOptions(flags);
  const needsStore = src.transport === 'containers-storage' || dest.transport === 'containers-storage';
  const store: Store | undefined = needsStore ? await openStore(ctx.globals) : undefined;
  try {
    return await transfer(ctx, 'copy', (signal, onProgress) =>
      copy(source, destination, {
        signal,
        onWarning: warn,
        ...(store ? { store } : {}),
        ...(onProgress ? { onProgress } : {}),
        source: side('src'),
        destination: side('dest'),
        ...(compressionFormat ? { compressionFormat } : {}),
        ...(policy !== undefined ? { signaturePolicy: policy } : {}),
        ...signing,
        all: flags.bool('all'),
      }),
    );
  } finally {
    await store?.close();
  }
}

// Writing a pushed manifest's signatures where registries.d says, as containers/image writes them: simple-signing
// signatures into the lookaside store (`<base>/<repo>@sha256=<hex>/signature-1…N`, only `file://`: a web server
// lookaside is written through its `lookaside-staging` directory; stale `signature-N+1…` files are removed), and sigstore
// signatures as layers of the `sha256-<hex>.sig` attachment manifest in the registry, when use-sigstore-attachments
// is on (a signature already attached is not added again).
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CarrierError } from '../errors.js';
import type { ImageReference } from '../reference.js';
import { sha256Digest } from '../oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { RegistryClient } from '../registry/client.js';
import type { BlobPusher } from '../registry/upload.js';
import { loadRegistriesD, lookasideBase, lookasideUrl, signatureToBlob, usesSigstoreAttachments, type UntrustedSignature } from '../trust/index.js';
import { makeDirs } from '../fs/batch.js';

export interface SignatureTarget {
  client: RegistryClient;
  pusher: BlobPusher;
  ref: ImageReference;
}

export interface PutSignaturesOptions {
  /** registries.d directory (default: the user's, else /etc/containers/registries.d). */
  registriesDir?: string;
  home?: string;
  signal?: AbortSignal;
}

type Sigstore = Extract<UntrustedSignature, { format: 'sigstore' }>;

/**
 * Checks where `signatures` of the manifest `manifestDigest` would go in `target.ref`'s repository (before the
 * manifest is pushed, so a configuration that cannot take them fails the push before any tag is written), and
 * returns what writes them (after the manifest).
 */
export async function prepareRegistrySignatures(
  target: SignatureTarget,
  manifestDigest: string,
  signatures: readonly UntrustedSignature[],
  options: PutSignaturesOptions = {},
): Promise<() => Promise<void>> {
  if (signatures.length === 0) return async () => {};
  const conf = await loadRegistriesD({
    ...(options.registriesDir !== undefined ? { registriesDir: options.registriesDir } : {}),
    ...(options.home !== undefined ? { home: options.home } : {}),
  });
  const sigstore = signatures.filter((s): s is Sigstore => s.format === 'sigstore');
  const simple = signatures.filter((s) => s.format === 'simple-signing');
  if (sigstore.length > 0) {
    if (!usesSigstoreAttachments(conf, target.ref)) {
      throw new CarrierError(
        'CARRIER_INVALID_CONFIG',
        `writing sigstore signatures of ${target.ref.domain}/${target.ref.path} needs use-sigstore-attachments: true in registries.d (${conf.dir ?? 'none found'})`,
      );
    }
  }
  const base = lookasideBase(conf, target.ref, { write: true, ...(options.home !== undefined ? { home: options.home } : {}) });
  if (simple.length > 0 && base.protocol !== 'file:') {
    throw new CarrierError('CARRIER_UNSUPPORTED', `writing signatures to ${base.href} is not supported: configure a file:// lookaside-staging in registries.d`);
  }
  return async () => {
    if (sigstore.length > 0) await putAttachments(target, manifestDigest, sigstore, options.signal);
    if (simple.length > 0) await putLookaside(base, manifestDigest, simple);
  };
}

async function putLookaside(base: URL, manifestDigest: string, signatures: readonly UntrustedSignature[]): Promise<void> {
  for (const [i, sig] of signatures.entries()) {
    const file = fileURLToPath(lookasideUrl(base, manifestDigest, i + 1));
    await makeDirs(path.dirname(file), 0o755);
    await writeFile(file, signatureToBlob(sig), { mode: 0o644 });
  }
  // A reader stops at the first missing signature: removing the next one is enough, and the rest go too.
  for (let n = signatures.length + 1; ; n++) {
    const file = fileURLToPath(lookasideUrl(base, manifestDigest, n));
    try {
      await rm(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

function sameSignature(layer: Descriptor, sig: Sigstore): boolean {
  const want = sig.annotations;
  const have = layer.annotations ?? {};
  return (
    layer.mediaType === sig.mediaType &&
    layer.size === sig.payload.length &&
    layer.digest === sha256Digest(sig.payload) &&
    Object.keys(have).length === Object.keys(want).length &&
    Object.entries(have).every(([k, v]) => want[k] === v)
  );
}

async function readSmall(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function putAttachments(target: SignatureTarget, manifestDigest: string, signatures: readonly Sigstore[], signal?: AbortSignal): Promise<void> {
  const tag = `${manifestDigest.replace(':', '-')}.sig`;
  const sigRef: ImageReference = { domain: target.ref.domain, path: target.ref.path, tag };
  const o = signal ? { signal } : {};
  let layers: Descriptor[] = [];
  let config: { rootfs: { type: string; diff_ids: string[] } } & Record<string, unknown> = { rootfs: { type: 'layers', diff_ids: [] } };
  let existing: { bytes: Buffer } | undefined;
  try {
    existing = await target.client.getManifest(sigRef, { accept: [OCI_MANIFEST], ...o });
  } catch (err) {
    if ((err as CarrierError).code !== 'CARRIER_NOT_FOUND') throw err;
  }
  if (existing) {
    const doc = JSON.parse(existing.bytes.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
    layers = doc.layers ?? [];
    if (doc.config) {
      const parsed = JSON.parse((await readSmall(await target.client.getBlob(sigRef, doc.config.digest, { size: doc.config.size, ...o }))).toString('utf8')) as typeof config;
      config = { ...parsed, rootfs: { type: parsed.rootfs?.type ?? 'layers', diff_ids: parsed.rootfs?.diff_ids ?? [] } };
    }
  }
  let added = 0;
  for (const sig of signatures) {
    if (layers.some((l) => sameSignature(l, sig))) continue;
    await target.pusher.putBytes(sig.payload, `sigstore signature ${sha256Digest(sig.payload)}`, signal);
    const digest = sha256Digest(sig.payload);
    layers.push({ mediaType: sig.mediaType, digest, size: sig.payload.length, annotations: { ...sig.annotations } });
    config.rootfs.diff_ids.push(digest);
    added++;
  }
  if (added === 0 && existing) return;
  const configBytes = Buffer.from(JSON.stringify(config));
  await target.pusher.putBytes(configBytes, 'sigstore attachment config', signal);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256Digest(configBytes), size: configBytes.length }, layers }),
  );
  await target.pusher.putManifest(tag, manifest, OCI_MANIFEST, signal);
}

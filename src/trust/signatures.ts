/**
 * Untrusted signatures and where they come from for a registry image: the lookaside store of registries.d
 * (`signature-1`, `signature-2`, … until the first missing one; `file://` or `http(s)://`) and, when registries.d
 * enables them, sigstore attachments in the registry (the manifest tagged `sha256-<hex>.sig`, one layer per
 * signature). Nothing here is verified: that is the policy's job.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import type { ImageReference } from '../reference.js';
import { lookasideBase, lookasideUrl, usesSigstoreAttachments, type RegistriesD } from './registries-d.js';

export const SIGSTORE_SIGNATURE_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** containers/image's cap on one signature. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
/** A lookaside store that never ends is a hostile one. */
const MAX_LOOKASIDE_SIGNATURES = 256;
/** A lookaside web server that stops answering must not hold a pull forever. */
const LOOKASIDE_TIMEOUT_MS = 60_000;

export type UntrustedSignature =
  | { format: 'simple-signing'; blob: Buffer; from: string }
  | { format: 'sigstore'; mediaType: string; payload: Buffer; annotations: Record<string, string>; from: string };

/** What the registry client offers that signature fetching needs (RegistryClient has it). */
export interface SignatureRegistry {
  getManifest(ref: ImageReference, opts: { accept?: string[]; signal?: AbortSignal }): Promise<{ bytes: Buffer; mediaType: string; digest: string }>;
  getBlob(ref: ImageReference, digest: string, opts: { size?: number; signal?: AbortSignal }): Promise<Readable>;
}

export interface FetchedSignatures {
  signatures: UntrustedSignature[];
  /** Where signatures were looked for, for a message when none is accepted. */
  lookedAt: string[];
}

/**
 * Reads a stored signature blob: a bare OpenPGP message (simple signing) or containers/image's tagged form
 * (`\0simple-signing\n…`, `\0sigstore-json\n{mimeType,payload,annotations}`).
 */
export function signatureFromBlob(blob: Buffer, from: string): UntrustedSignature {
  if (blob.length === 0) throw new CarrierError('CARRIER_INVALID_SIGNATURE', `empty signature at ${from}`);
  if (blob[0] !== 0) {
    // OpenPGP packets: compressed data, one-pass signature or signature, old or new format.
    if ([0xa0, 0xa1, 0xa2, 0xa3, 0xc8, 0x90, 0x91, 0x92, 0x3d, 0xc4, 0x88, 0x89, 0x8a, 0x8b, 0xc2].includes(blob[0]!)) {
      return { format: 'simple-signing', blob, from };
    }
    throw new CarrierError('CARRIER_INVALID_SIGNATURE', `unrecognized signature format at ${from}`);
  }
  const nl = blob.indexOf(0x0a);
  if (nl === -1) throw new CarrierError('CARRIER_INVALID_SIGNATURE', `invalid signature format at ${from}: no newline`);
  const kind = blob.subarray(1, nl).toString('latin1');
  const body = blob.subarray(nl + 1);
  if (kind === 'simple-signing') return { format: 'simple-signing', blob: body, from };
  if (kind === 'sigstore-json') {
    let doc: { mimeType?: unknown; payload?: unknown; annotations?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch (err) {
      throw new CarrierError('CARRIER_INVALID_SIGNATURE', `invalid sigstore signature at ${from}`, { cause: err });
    }
    const annotations: Record<string, string> = {};
    if (typeof doc.annotations === 'object' && doc.annotations !== null) {
      for (const [k, v] of Object.entries(doc.annotations)) if (typeof v === 'string') annotations[k] = v;
    }
    return {
      format: 'sigstore',
      mediaType: typeof doc.mimeType === 'string' ? doc.mimeType : '',
      payload: typeof doc.payload === 'string' ? Buffer.from(doc.payload, 'base64') : Buffer.alloc(0),
      annotations,
      from,
    };
  }
  throw new CarrierError('CARRIER_INVALID_SIGNATURE', `unrecognized signature format "${kind}" at ${from}`);
}

async function readCapped(stream: Readable, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    total += b.length;
    if (total > MAX_SIGNATURE_BYTES) {
      stream.destroy();
      throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `signature ${what} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** One lookaside signature, or undefined when it does not exist (the end of the list). */
async function readLookaside(url: URL, signal?: AbortSignal): Promise<Buffer | undefined> {
  if (url.protocol === 'file:') {
    try {
      const b = await readFile(fileURLToPath(url), signal === undefined ? {} : { signal });
      if (b.length > MAX_SIGNATURE_BYTES) throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `signature ${url.href} is too large`);
      return b;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    const timeout = AbortSignal.timeout(LOOKASIDE_TIMEOUT_MS);
    const res = await fetch(url, { redirect: 'follow', signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200 || res.body === null) {
      await res.body?.cancel();
      throw new CarrierError('CARRIER_REGISTRY_ERROR', `reading signature from ${url.href}: HTTP ${res.status}`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += (chunk as Uint8Array).length;
      if (total > MAX_SIGNATURE_BYTES) {
        await res.body.cancel().catch(() => {});
        throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `signature ${url.href} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
      }
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
    return Buffer.concat(chunks);
  }
  throw new CarrierError('CARRIER_INVALID_CONFIG', `unsupported scheme in signature storage URL ${url.href}`);
}

export interface FetchDockerSignaturesOptions {
  registries: RegistriesD;
  /** Needed only when registries.d enables sigstore attachments for the image. */
  registry?: SignatureRegistry;
  home?: string;
  signal?: AbortSignal;
}

/** Every signature stored for `manifestDigest` of the registry image `ref`. */
export async function fetchDockerSignatures(
  ref: ImageReference,
  manifestDigest: string,
  opts: FetchDockerSignaturesOptions,
): Promise<FetchedSignatures> {
  const signatures: UntrustedSignature[] = [];
  const base = lookasideBase(opts.registries, ref, opts.home === undefined ? {} : { home: opts.home });
  const first = lookasideUrl(base, manifestDigest, 1);
  const lookedAt = [first.href];
  for (let n = 1; n <= MAX_LOOKASIDE_SIGNATURES; n++) {
    const url = n === 1 ? first : lookasideUrl(base, manifestDigest, n);
    const blob = await readLookaside(url, opts.signal);
    if (blob === undefined) break;
    signatures.push(signatureFromBlob(blob, url.href));
  }
  if (usesSigstoreAttachments(opts.registries, ref)) {
    const tag = `${manifestDigest.replace(':', '-')}.sig`;
    const sigRef: ImageReference = { domain: ref.domain, path: ref.path, tag };
    lookedAt.push(`${ref.domain}/${ref.path}:${tag}`);
    if (opts.registry === undefined) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'sigstore attachments are enabled in registries.d but no registry client was given');
    }
    signatures.push(...(await sigstoreAttachments(opts.registry, sigRef, opts.signal)));
  }
  return { signatures, lookedAt };
}

async function sigstoreAttachments(registry: SignatureRegistry, sigRef: ImageReference, signal?: AbortSignal): Promise<UntrustedSignature[]> {
  const sig = signal === undefined ? {} : { signal };
  let doc: { bytes: Buffer; mediaType: string };
  try {
    doc = await registry.getManifest(sigRef, { accept: [OCI_MANIFEST], ...sig });
  } catch (err) {
    if ((err as CarrierError).code === 'CARRIER_NOT_FOUND') return [];
    throw err;
  }
  const where = `${sigRef.domain}/${sigRef.path}:${sigRef.tag}`;
  if (doc.mediaType !== OCI_MANIFEST) {
    throw new CarrierError('CARRIER_INVALID_SIGNATURE', `sigstore attachment manifest ${where} has media type ${doc.mediaType}, not ${OCI_MANIFEST}`);
  }
  let manifest: { layers?: { mediaType?: string; digest?: string; size?: number; annotations?: Record<string, string> }[] };
  try {
    manifest = JSON.parse(doc.bytes.toString('utf8')) as typeof manifest;
  } catch (err) {
    throw new CarrierError('CARRIER_INVALID_SIGNATURE', `sigstore attachment manifest ${where} is not JSON`, { cause: err });
  }
  if (manifest.layers !== undefined && !Array.isArray(manifest.layers)) {
    throw new CarrierError('CARRIER_INVALID_SIGNATURE', `sigstore attachment manifest ${where} has no list of layers`);
  }
  const out: UntrustedSignature[] = [];
  for (const layer of manifest.layers ?? []) {
    if (typeof layer !== 'object' || layer === null || typeof layer.digest !== 'string' || typeof layer.size !== 'number' || layer.size > MAX_SIGNATURE_BYTES) {
      throw new CarrierError('CARRIER_INVALID_SIGNATURE', `sigstore attachment manifest ${where} has an invalid layer`);
    }
    const payload = await readCapped(await registry.getBlob(sigRef, layer.digest, { size: layer.size, ...sig }), `${where} layer ${layer.digest}`);
    const annotations: Record<string, string> = {};
    if (typeof layer.annotations === 'object' && layer.annotations !== null) {
      for (const [k, v] of Object.entries(layer.annotations)) if (typeof v === 'string') annotations[k] = v;
    }
    out.push({ format: 'sigstore', mediaType: layer.mediaType ?? '', payload, annotations, from: `${where} layer ${layer.digest}` });
  }
  return out;
}

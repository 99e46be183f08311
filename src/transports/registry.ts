// docker://: an image in a registry, read through src/registry's client. The manifest is fetched and parsed once
// (the client checks a by-digest manifest against its digest and resolves an index to this platform's entry). Opening
// stops there: the config is read and checked when the source is resolved, which copyImage does only once the
// signature policy allows the image (a refused pull fetches no blob at all). Layer blobs stream straight from the
// registry, resuming dropped connections.
import type { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import { formatReference, parseReference, type ImageReference } from '../reference.js';
import { parseImageConfig, type ImageManifest, type PlatformWant } from '../oci/manifest.js';
import { sha256Digest } from '../oci/digest.js';
import { isLayerMediaType, isNondistributable } from '../oci/mediatypes.js';
import { fetchBlobRanges, type RangeClient } from '../registry/ranges.js';
import type { Document, ImageManifestSource, ImageSource, LayerBlob, PendingImageSource } from './types.js';

/** What the registry transport needs from a client; src/registry's RegistryClient is the real one. */
export interface RegistrySource {
  getManifest(
    ref: ImageReference,
    options: { platform?: PlatformWant; signal?: AbortSignal },
  ): Promise<Document & { manifest: ImageManifest; list?: Document }>;
  getBlob(ref: ImageReference, digest: string, options: { size?: number; signal?: AbortSignal }): Promise<Readable>;
  /** Ranged GETs of a blob (src/registry/ranges.ts); without it, layers are only fetched whole. */
  requestBlob?: RangeClient['requestBlob'];
}

export interface RegistryImageSourceOptions {
  /** Platform picked from an index (default: this machine). */
  platform?: PlatformWant;
  signal?: AbortSignal;
  /** The largest config blob accepted (default 8 MiB). */
  maxConfigBytes?: number;
}

/** The full name a registry image is recorded under: `domain/path:tag`, or `domain/path@digest`. */
export function registryImageName(ref: ImageReference): string {
  return ref.digest ? `${ref.domain}/${ref.path}@${ref.digest}` : formatReference(ref);
}

/**
 * Opens `docker://name` (a full name: `host/repo:tag` or `…@sha256:…`) as far as its manifest: no blob is fetched
 * until `resolve()`. Layer descriptors are checked here (they are in the manifest); the config when resolved.
 */
export async function openRegistryManifest(client: RegistrySource, name: string | ImageReference, options: RegistryImageSourceOptions = {}): Promise<PendingImageSource> {
  const ref = typeof name === 'string' ? parseReference(name) : name;
  const full = registryImageName(ref);
  const got = await client.getManifest(ref, { ...(options.platform ? { platform: options.platform } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  const manifest = got.manifest;
  const descs = manifest.layers;
  const odd = descs.find((l) => !isLayerMediaType(l.mediaType));
  if (odd) throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${odd.digest} has media type ${odd.mediaType}, which is not a layer`);
  const foreign = descs.find((l) => isNondistributable(l.mediaType) && (l.urls?.length ?? 0) > 0);
  if (foreign) throw new CarrierError('CARRIER_UNSUPPORTED', `layer ${foreign.digest} is non-distributable (foreign URLs are not fetched)`);
  const seen = {
    transport: 'docker' as const,
    reference: `docker://${full}`,
    names: [full],
    manifest: got.bytes,
    manifestDigest: got.digest,
    manifestMediaType: got.mediaType,
    parsedManifest: manifest,
    ...(got.list ? { list: { bytes: got.list.bytes, digest: got.list.digest, mediaType: got.list.mediaType } } : {}),
  };
  return { ...seen, resolve: (o = {}) => resolveConfig(client, ref, seen, options.maxConfigBytes ?? 8 << 20, o.signal ?? options.signal) };
}

/** Opens `docker://name` and reads its config: the whole source at once, for callers that apply no policy. */
export async function openRegistrySource(client: RegistrySource, name: string | ImageReference, options: RegistryImageSourceOptions = {}): Promise<ImageSource> {
  return (await openRegistryManifest(client, name, options)).resolve(options.signal ? { signal: options.signal } : {});
}

async function resolveConfig(
  client: RegistrySource,
  ref: ImageReference,
  seen: ImageManifestSource,
  maxConfigBytes: number,
  signal?: AbortSignal,
): Promise<ImageSource> {
  const manifest = seen.parsedManifest;
  const config = await readConfig(client, ref, manifest, maxConfigBytes, signal);
  const parsedConfig = parseImageConfig(config);
  const descs = manifest.layers;
  const diffIDs = parsedConfig.rootfs.diff_ids;
  if (descs.length !== diffIDs.length) {
    throw new CarrierError('CARRIER_INVALID_MANIFEST', `the manifest lists ${descs.length} layers but the config has ${diffIDs.length} diff_ids`);
  }
  const layers: LayerBlob[] = descs.map((d, i) => ({
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    diffID: diffIDs[i]!,
    ...(d.annotations ? { annotations: d.annotations } : {}),
    ...(client.requestBlob
      ? { fetchRanges: (ranges, o = {}) => fetchBlobRanges(client as RangeClient, ref, d.digest, d.size, ranges, o.signal ?? signal) }
      : {}),
    open: (o = {}) => {
      const sig = o.signal ?? signal;
      return client.getBlob(ref, d.digest, { size: d.size, ...(sig ? { signal: sig } : {}) });
    },
  }));
  return {
    ...seen,
    config,
    configDigest: manifest.config.digest,
    ...(parsedConfig.created ? { created: parsedConfig.created } : {}),
    layers,
  };
}

async function readConfig(client: RegistrySource, ref: ImageReference, manifest: ImageManifest, max: number, signal?: AbortSignal): Promise<Buffer> {
  const desc = manifest.config;
  if (desc.size > max) throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `config blob ${desc.digest} is ${desc.size} bytes, more than ${max}`);
  const body = await client.getBlob(ref, desc.digest, { size: desc.size, ...(signal ? { signal } : {}) });
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > desc.size) {
      body.destroy();
      throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `config blob ${desc.digest} is longer than its descriptor says (${desc.size})`);
    }
    chunks.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  if (bytes.length !== desc.size || sha256Digest(bytes) !== desc.digest) {
    throw new CarrierError('CARRIER_DIGEST_MISMATCH', `config blob does not match ${desc.digest}`);
  }
  return bytes;
}

// oci: and oci-archive: as sources. Every image manifest index.json references is an image (a nested index
// resolves to one platform's manifest); names come from `io.containerd.image.name`, else
// `org.opencontainers.image.ref.name`, as written. Manifest and config blobs are checked against their descriptors
// here; layer blobs only for presence and size (the destination that consumes them checks their digest).
import { CarrierError, abortError } from '../errors.js';
import { digestMatches, parseDigest } from '../oci/digest.js';
import { OCI_INDEX, isLayerMediaType, manifestKind } from '../oci/mediatypes.js';
import { MAX_DOCUMENT_BYTES, choosePlatform, hostPlatform, parseImageConfig, parseManifest, type Descriptor, type PlatformWant } from '../oci/manifest.js';
import { invalidArchive, readAll, readRequired, type FileSource } from './archive-files.js';
import type { ImageSource, LayerBlob } from './types.js';

const SMALL_FILE_CAP = 64 * 1024;
const MAX_INDEX_DEPTH = 4;

export interface ReadLayoutOptions {
  signal?: AbortSignal;
  /** Platform picked from a multi-platform index (default: this host's). */
  platform?: PlatformWant;
}

/** `blobs/<algorithm>/<hex>`, once the digest's syntax is checked. */
export function blobPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest); // syntax checked before the digest becomes a path
  return `blobs/${algorithm}/${hex}`;
}

/** Reads a small blob named by a descriptor and checks its size and digest. */
async function readBlob(src: FileSource, d: Descriptor, what: string, cap: number): Promise<Buffer> {
  const p = blobPath(d.digest);
  if (d.size > cap) throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `${what} ${d.digest} is ${d.size} bytes, over the ${cap}-byte cap`);
  const info = await src.stat(p);
  if (!info) throw invalidArchive(`${what} ${d.digest} is not in the archive`, p);
  if (info.size !== d.size) {
    throw new CarrierError('CARRIER_DIGEST_MISMATCH', `${what} ${d.digest} is ${info.size} bytes, its descriptor says ${d.size}`, { path: p });
  }
  const bytes = await readAll(info, p, cap);
  if (!digestMatches(d.digest, bytes)) {
    throw new CarrierError('CARRIER_DIGEST_MISMATCH', `${what} does not match its digest ${d.digest}`, { path: p });
  }
  return bytes;
}

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** The images of an OCI layout; `base` is the transport reference of the layout (`oci:/dir`, `oci-archive:/f.tar`). */
export async function readOciLayout(src: FileSource, base: { transport: 'oci' | 'oci-archive'; path: string }, opts: ReadLayoutOptions): Promise<ImageSource[]> {
  const layoutBytes = await readRequired(src, 'oci-layout', SMALL_FILE_CAP, 'layout marker');
  let layout: unknown;
  try {
    layout = JSON.parse(layoutBytes.toString('utf8'));
  } catch {
    throw invalidArchive("'oci-layout' is not JSON");
  }
  const version = (layout as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (typeof version !== 'string' || !/^1\./.test(version)) {
    throw invalidArchive(`unsupported OCI layout version ${JSON.stringify(version)}`);
  }
  const indexBytes = await readRequired(src, 'index.json', MAX_DOCUMENT_BYTES, 'index');
  const index = parseManifest(indexBytes, OCI_INDEX);
  if (index.kind !== 'index') throw new CarrierError('CARRIER_INVALID_MANIFEST', 'index.json is not an image index');
  const platform = opts.platform ?? hostPlatform();
  const images: ImageSource[] = [];
  const byDigest = new Map<string, string[]>();

  const resolve = async (d: Descriptor, depth: number): Promise<{ desc: Descriptor; bytes: Buffer } | undefined> => {
    const kind = manifestKind(d.mediaType);
    if (kind === undefined) return undefined; // not an image (an artifact, a signature): skipped
    const bytes = await readBlob(src, d, 'manifest', MAX_DOCUMENT_BYTES);
    const doc = parseManifest(bytes, d.mediaType);
    if (doc.kind === 'manifest') return { desc: d, bytes };
    if (depth >= MAX_INDEX_DEPTH) throw new CarrierError('CARRIER_INVALID_MANIFEST', `indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    const chosen = choosePlatform(doc, platform);
    if (!chosen) {
      const want = `${platform.os}/${platform.architecture}${platform.variant ? '/' + platform.variant : ''}`;
      throw new CarrierError('CARRIER_INVALID_MANIFEST', `index ${d.digest} has no manifest for ${want}`);
    }
    return resolve(chosen, depth + 1);
  };

  for (const entry of index.manifests) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const found = await resolve(entry, 1);
    if (!found) continue;
    const name = entry.annotations?.[CONTAINERD_NAME] ?? entry.annotations?.[REF_NAME];
    const known = byDigest.get(found.desc.digest);
    if (known) {
      if (name !== undefined && !known.includes(name)) known.push(name);
      continue;
    }
    const manifest = parseManifest(found.bytes, found.desc.mediaType);
    if (manifest.kind !== 'manifest') throw new CarrierError('CARRIER_INVALID_MANIFEST', 'expected an image manifest');
    const config = await readBlob(src, manifest.config, 'config', MAX_DOCUMENT_BYTES);
    const parsedConfig = parseImageConfig(config);
    const diffIDs = parsedConfig.rootfs.diff_ids;
    if (diffIDs.length !== manifest.layers.length) {
      throw new CarrierError(
        'CARRIER_INVALID_MANIFEST',
        `manifest ${found.desc.digest} has ${manifest.layers.length} layers but its config lists ${diffIDs.length} diff_ids`,
      );
    }
    const layers: LayerBlob[] = [];
    for (const [i, l] of manifest.layers.entries()) {
      if (!isLayerMediaType(l.mediaType)) {
        throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${i} has unsupported media type '${l.mediaType}'`);
      }
      const p = blobPath(l.digest);
      const info = await src.stat(p);
      if (!info) throw invalidArchive(`layer ${l.digest} is not in the archive`, p);
      if (info.size !== l.size) {
        throw new CarrierError('CARRIER_DIGEST_MISMATCH', `layer ${l.digest} is ${info.size} bytes, its descriptor says ${l.size}`, { path: p });
      }
      layers.push({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffID: diffIDs[i]!, open: () => info.open() });
    }
    const names = name === undefined ? [] : [name];
    byDigest.set(found.desc.digest, names);
    const image: ImageSource = {
      transport: base.transport,
      reference: `${base.transport}:${base.path}${name !== undefined ? `:${name}` : ''}`,
      names,
      manifest: found.bytes,
      manifestDigest: found.desc.digest,
      manifestMediaType: manifest.mediaType,
      parsedManifest: manifest,
      config,
      configDigest: manifest.config.digest,
      ...(parsedConfig.created ? { created: parsedConfig.created } : {}),
      layers,
      };
    images.push(image);
  }
  if (images.length === 0) throw invalidArchive('the OCI layout has no image manifests');
  return images;
}

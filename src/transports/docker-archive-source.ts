// docker-archive: as a source, read the way containers/image reads it: each image's layers are served as
// uncompressed tars addressed by their DiffID (a gzip or zstd layer file is decompressed on the fly and sized with
// one pass), under the manifest containers/image generates for them, so the digests Carrier records are podman's.
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError, abortError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_MANIFEST } from '../oci/mediatypes.js';
import { MAX_DOCUMENT_BYTES, parseImageConfig, parseManifest, type ImageManifest } from '../oci/manifest.js';
import { looksLikeTarHeader, normaliseEntryName } from '../load/tarindex.js';
import { compressionError, decompressor, sniffCompression } from '../load/compression.js';
import { invalidArchive, readRequired, type FileInfo, type TarSource } from './archive-files.js';
import type { ImageSource, LayerBlob } from './types.js';

export interface ReadDockerArchiveOptions {
  signal?: AbortSignal;
}

interface DockerItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function parseDockerManifest(bytes: Buffer): DockerItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CarrierError('CARRIER_INVALID_MANIFEST', `manifest.json is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc) || doc.length === 0) throw new CarrierError('CARRIER_INVALID_MANIFEST', 'manifest.json must be a non-empty array');
  return doc.map((item: unknown, i: number): DockerItem => {
    const o = item as Record<string, unknown> | null;
    const bad = (what: string): CarrierError => new CarrierError('CARRIER_INVALID_MANIFEST', `manifest.json[${i}]: ${what}`);
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad('must be an object');
    if (typeof o.Config !== 'string' || o.Config === '') throw bad('Config must be a file name');
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw bad('RepoTags must be an array of strings');
    if (!Array.isArray(o.Layers) || !o.Layers.every((t) => typeof t === 'string' && t !== '')) throw bad('Layers must be an array of file names');
    return { Config: o.Config, RepoTags: tags as string[], Layers: o.Layers as string[] };
  });
}

/** `<hex>.json`, `<hex>` or `blobs/sha256/<hex>`: file names that promise the config's digest. */
function digestFromName(name: string): string | undefined {
  const m = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}

/**
 * The manifest containers/image generates for a docker-archive image (docker/internal/tarfile, GetManifest), byte
 * for byte, so the manifest digest Carrier records equals what `podman load` records:
 * `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":
 * "application/vnd.docker.container.image.v1+json","size":<config bytes>,"digest":"<config digest>"},"layers":[
 * {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":<uncompressed size>,"digest":"<diff_id>"},...]}`
 * Compact, this key order, no trailing newline. The layer type says gzip although the blob is the uncompressed tar:
 * that is what containers/image writes (its GetBlob serves the DiffID-addressed uncompressed stream).
 */
export function dockerArchiveManifest(configDigest: string, configSize: number, layers: { diffID: string; size: number }[]): Buffer {
  const doc = {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, size: configSize, digest: configDigest },
    layers: layers.map((l) => ({ mediaType: DOCKER_LAYER_GZIP, size: l.size, digest: l.diffID })),
  };
  return Buffer.from(JSON.stringify(doc));
}

async function countDecompressed(info: FileInfo, kind: 'gzip' | 'zstd', signal?: AbortSignal): Promise<number> {
  let n = 0;
  const counter = new PassThrough();
  counter.on('data', (c: Buffer) => void (n += c.length));
  try {
    await pipeline(await info.open(), decompressor(kind), counter, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw compressionError(kind, err);
  }
  return n;
}

/** The images of a docker-archive; `file` names it in each image's transport reference. */
export async function readDockerArchive(src: TarSource, file: string, opts: ReadDockerArchiveOptions): Promise<ImageSource[]> {
  const items = parseDockerManifest(await readRequired(src, 'manifest.json', MAX_DOCUMENT_BYTES, 'manifest'));
  const images: ImageSource[] = [];
  const byDigest = new Map<string, string[]>();
  for (const [index, item] of items.entries()) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const configName = normaliseEntryName(item.Config, 0);
    const config = await readRequired(src, configName, MAX_DOCUMENT_BYTES, 'config');
    const configDigest = sha256Digest(config);
    const promised = digestFromName(configName);
    if (promised !== undefined && promised !== configDigest) {
      throw new CarrierError('CARRIER_DIGEST_MISMATCH', `config '${configName}' hashes to ${configDigest}`, { path: configName });
    }
    const parsedConfig = parseImageConfig(config);
    const diffIDs = parsedConfig.rootfs.diff_ids;
    if (diffIDs.length !== item.Layers.length) {
      throw new CarrierError(
        'CARRIER_INVALID_MANIFEST',
        `image ${configDigest} lists ${item.Layers.length} layer files but its config has ${diffIDs.length} diff_ids`,
      );
    }
    const layers: LayerBlob[] = [];
    for (const [i, rawName] of item.Layers.entries()) {
      const name = normaliseEntryName(rawName, 0);
      const info = await src.stat(name);
      if (!info) throw invalidArchive(`layer file '${name}' is not in the archive`, name);
      const head = await info.head(512);
      const kind = sniffCompression(head);
      const diffID = diffIDs[i]!;
      if (kind === 'xz' || kind === 'bzip2') {
        throw new CarrierError('CARRIER_BAD_COMPRESSION', `layer file '${name}' is ${kind}-compressed, which Carrier does not read`, { path: name });
      }
      if (kind === 'none') {
        if (head.length === 512 && !looksLikeTarHeader(head) && !head.every((b) => b === 0)) {
          throw invalidArchive(`layer file '${name}' is neither a tar nor gzip/zstd data`, name);
        }
        // The file is the layer tar: its digest is the DiffID (not hashed here; applyLayer verifies both).
        layers.push({ digest: diffID, size: info.size, mediaType: DOCKER_LAYER_TAR, diffID, diffSize: info.size, rebuilt: true, open: () => info.open() });
      } else {
        // As containers/image does: serve the decompressed tar, addressed by its DiffID; its size takes one pass.
        const size = await countDecompressed(info, kind, opts.signal);
        const open = async (): Promise<Readable> => {
          const out = decompressor(kind);
          const input = await info.open();
          input.on('error', (err) => out.destroy(err));
          out.on('close', () => input.destroy());
          return input.pipe(out);
        };
        layers.push({ digest: diffID, size, mediaType: DOCKER_LAYER_TAR, diffID, diffSize: size, rebuilt: true, open });
      }
    }
    const manifest = dockerArchiveManifest(configDigest, config.length, layers);
    const manifestDigest = sha256Digest(manifest);
    const known = byDigest.get(manifestDigest);
    if (known) {
      for (const t of item.RepoTags) if (!known.includes(t)) known.push(t);
      continue;
    }
    const names = [...item.RepoTags];
    byDigest.set(manifestDigest, names);
    const image: ImageSource = {
      transport: 'docker-archive',
      reference: `docker-archive:${file}:${names[0] ?? `@${index}`}`,
      names,
      manifest,
      manifestDigest,
      manifestMediaType: DOCKER_MANIFEST,
      parsedManifest: parseManifest(manifest, DOCKER_MANIFEST) as ImageManifest,
      config,
      configDigest,
      ...(parsedConfig.created ? { created: parsedConfig.created } : {}),
      layers,
      };
    images.push(image);
  }
  return images;
}

// `commit`: a container's changes become a new image, one layer on top of its image's, as `podman commit` makes it.
//
//   1. Under the layers lock (shared), the container's read-write layer is archived (its diff against its parent:
//      whiteouts and opaque directories as `.wh.` entries) into a temporary blob file of the store's blob cache and
//      hashed (diff_id). On overlay the upper directory is walked, archived, hashed, compressed and written in one
//      native pass (diffLayerToFile; zstd:chunked reads the driver's diff stream); on vfs the driver's diff stream
//      goes through compressLayer, also one native pass from the tar on. A container that is not running is only
//      hashed here when its layer stays uncompressed: no blob is written (see step 2). By default the tar is
//      written as it is, uncompressed, as podman/buildah commit into containers-storage (the manifest names the tar,
//      digest = diff_id): compressing 200 MiB of changes cost more than all the rest of a commit, and a push
//      compresses the layer anyway (from the store's tar-split). With `compression: gzip|zstd` the blob is compressed
//      and kept in the cache, named by its digest, where a later push finds it and uploads it unchanged.
//   2. The config (the image's, with the container's settings, the `--change` ones, the new diff_id and a history
//      entry) and the manifest are written; the store commits the image: its layers are present but the new one,
//      which the store extracts from the blob like any pulled layer (or, for the hashed-only layer, from the same tar
//      streamed again out of the upper directory through a FIFO: streamLayerTar), recording its tar-split, so it
//      exports byte for byte. A failure leaves no image and no name. An uncompressed blob is not kept in the cache: the store rebuilds
//      the tar from its tar-split, and a push must compress it rather than upload the cached tar as it is.
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { CarrierError } from '../errors.js';
import { compressLayer, type CompressedLayer, type LayerCompression } from '../layer/compress.js';
import { diffLayerToFile, streamLayerTar, type StreamedLayerTar } from '../layer/diff-layer.js';
import { overlayUpperOf } from '../drivers/overlay-diff.js';
import { compressChunked } from '../chunked/compress.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { normalizeLocalName } from '../reference.js';
import { findRuntime } from '../runtime/runtime.js';
import { mergeEnv } from '../runtime/spec.js';
import { BlobCache, type BlobWriter } from '../store/blobs.js';
import { layerIdFor } from '../store/ids.js';
import type { CommitLayer, ImageInfo, Store } from '../store/store.js';
import { layerChain } from '../checkout/checkout.js';
import { parseChanges } from './commit-changes.js';
import { commitDocuments, type CommitFormat, type ContainerSettings } from './commit-config.js';
import { readCarrierFile, runtimeStateRoot } from './state.js';
import type { CarrierFile } from './types.js';

export type { CommitFormat } from './commit-config.js';
export { CHANGE_INSTRUCTIONS, parseChanges, type ImageChanges } from './commit-changes.js';

export interface CommitContainerOptions {
  /** Dockerfile instructions applied to the image's settings, as podman's `--change` (CMD, ENV, LABEL, …). */
  changes?: string[];
  /** The image's author (config `author` and the new history entry's). */
  author?: string;
  /** The config's `comment`: Docker format only, as in podman (an OCI commit with a message is refused). */
  message?: string;
  /** `oci` (default): OCI manifest and config; `docker`: Docker schema 2. */
  format?: CommitFormat;
  /**
   * The new layer's compression. Default none: the manifest names the uncompressed tar, as podman commit's does (a
   * push compresses it, gzip by default). gzip, zstd or zstd:chunked (the zstd ones only in the OCI format): the
   * compressed blob is named and kept in the blob cache, so a push uploads it as it is. zstd:chunked: each file's
   * content in a frame of its own, the TOC and tar-split located by the layer descriptor's annotations, so a puller
   * that has most files fetches only the rest.
   */
  compression?: 'none' | 'gzip' | 'zstd' | 'zstd:chunked';
  /** gzip 0–9 (default 4), zstd 1–19 (default 3), ignored for none: see CompressLayerOptions.level. */
  level?: number;
  /** Threads that compress (default: the cores available, at most 8). */
  threads?: number;
  /** Pause a running container while its changes are read (`runc pause`), resuming it after. Default false. */
  pause?: boolean;
  /**
   * false: a compressed layer is not kept in the blob cache once the image is committed (a later push then
   * compresses it again). Default true. An uncompressed layer is never kept.
   */
  blobCache?: boolean;
  /** Another blob cache directory than the store's (`store.config.blobCache`). */
  blobCacheDir?: string;
  /** false: the new layer is recorded without a syncfs first (see CommitOptions.sync). */
  sync?: boolean;
  signal?: AbortSignal;
  /** Called once the new layer has been written (before the image is recorded). */
  onLayer?: (layer: CommittedLayer) => void;
}

export interface CommittedLayer {
  /** The storage id of the new layer. */
  id: string;
  diffID: string;
  /** Digest and size of the blob the manifest names (the tar itself when uncompressed: digest = diffID). */
  digest: string;
  size: number;
  /** Length of the layer's tar. */
  diffSize: number;
  mediaType: string;
}

export interface CommitContainerResult {
  /** The new image's id (the hex of its config digest). */
  id: string;
  /** Its name (none: a dangling image, as podman's when no name is given). */
  names: string[];
  configDigest: string;
  manifestDigest: string;
  manifestMediaType: string;
  /** The parent image's id. */
  parent: string;
  layer: CommittedLayer;
  /** Every layer's blob digest in the manifest, base first (the new one last). */
  layers: string[];
}

/** The container's settings podman bakes into the image: Carrier's own for a container Carrier made. */
function containerSettings(file: CarrierFile | undefined, imageConfig: Record<string, unknown>): ContainerSettings {
  if (!file) return {};
  const c = file.config;
  const imageEnv = Array.isArray(imageConfig.Env) ? (imageConfig.Env as string[]) : [];
  const out: ContainerSettings = { env: mergeEnv(imageEnv, c.env) };
  if (c.entrypoint !== undefined) {
    out.entrypoint = c.entrypoint;
    out.cmd = c.cmd ?? [];
  } else if (c.cmd !== undefined) out.cmd = c.cmd;
  if (c.user !== undefined) out.user = c.user;
  if (c.workdir !== undefined) out.workingDir = c.workdir;
  return out;
}

async function runtimeCommand(file: CarrierFile, store: Store, id: string, verb: 'pause' | 'resume'): Promise<void> {
  const runtime = await findRuntime(file.state.runtime ?? file.config.runtime);
  const stderr: Buffer[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    const p = spawn(runtime.path, ['--root', runtimeStateRoot(store, runtime.name), verb, id], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr.on('data', (c: Buffer) => stderr.push(c));
    p.once('error', reject);
    p.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) {
    throw new CarrierError('CARRIER_RUNTIME_ERROR', `${verb} of container ${id.slice(0, 12)} failed: ${Buffer.concat(stderr).toString().trim() || `${runtime.name} exited ${code}`}`);
  }
}

/** The parent image's stored manifest when it describes its layers (a pulled or committed image's). */
async function storedManifest(store: Store, image: ImageInfo): Promise<{ mediaType: string; layers: Descriptor[]; annotations?: Record<string, string> } | undefined> {
  try {
    const m = parseManifest(await store.imageBigData(image.id, 'manifest'));
    if (m.kind !== 'manifest' || m.config.digest !== `sha256:${image.id}`) return undefined;
    return { mediaType: m.mediaType, layers: m.layers, ...(m.annotations ? { annotations: m.annotations } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Writes the container layer's blob (its tar, compressed as asked) into `writer`, hashing it on the way; settles with
 * what the pass found. `durable`: flushed to disk before it settles (a blob the cache keeps). `replay`: an overlay
 * layer's uncompressed tar is only hashed, not written: the store will read it again from the upper directory
 * (streamLayerTar), whose path the result then carries as `upper`.
 */
type WrittenLayer = CompressedLayer & { annotations?: Record<string, string>; upper?: string };

async function writeLayer(
  store: Store,
  layer: string,
  writer: BlobWriter,
  compression: LayerCompression | 'zstd:chunked',
  durable: boolean,
  options: CommitContainerOptions,
  replay: boolean,
): Promise<WrittenLayer> {
  return store.withLayerDiff(layer, async (tar) => {
    const o = { ...(options.level !== undefined ? { level: options.level } : {}), ...(options.signal ? { signal: options.signal } : {}) };
    const upper = overlayUpperOf(tar);
    const writeback = options.sync !== false; // the store syncs the file system after the layer is made
    if (upper !== undefined && compression !== 'zstd:chunked') {
      // An overlay layer: walked, archived, compressed and written in one native pass; its stream stays unread.
      if (replay && compression === 'none') return { ...(await diffLayerToFile(upper, { out: '/dev/null', writeback, ...o })), upper };
      return diffLayerToFile(upper, { out: writer.tmpPath, compression, sync: durable, writeback, ...o, ...(options.threads !== undefined ? { threads: options.threads } : {}) });
    }
    const job =
      compression === 'zstd:chunked'
        ? compressChunked(tar, o)
        : compressLayer(tar, { compression, ...o, ...(options.threads !== undefined ? { threads: options.threads } : {}) });
    const fh = await open(writer.tmpPath, 'r+');
    try {
      for await (const chunk of job.stream) await fh.write(chunk as Buffer);
      if (durable) await fh.sync();
    } finally {
      job.stream.destroy();
      await fh.close();
    }
    return job.result;
  });
}

/**
 * Commits a container's changes as a new image on top of the container's image, as `podman commit` does: one new layer
 * (the container's read-write layer, as the driver archives it: its uncompressed tar by default, as podman writes it;
 * gzip or zstd when asked), the image's settings with the container's own and then `changes` applied, the new diff_id
 * and a history entry (created, created_by as podman writes it, author, `FROM <image>`). `name` is normalised as podman
 * tag does (`foo` → `localhost/foo:latest`); without one the image has no name. A container podman made is committed
 * with its image's settings (podman keeps its own in its database). Fails with CARRIER_NOT_FOUND for an unknown
 * container and leaves no image, no name and no layer behind on any failure.
 */
export async function commit(store: Store, container: string, name?: string, options: CommitContainerOptions = {}): Promise<CommitContainerResult> {
  const format = options.format ?? 'oci';
  if (format !== 'oci' && format !== 'docker') throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unrecognized image format "${String(format)}": use oci or docker`);
  if (format === 'oci' && options.message !== undefined && options.message !== '') {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'messages are only compatible with the docker image format (format: docker)');
  }
  const compression = options.compression ?? 'none';
  if (compression !== 'none' && compression !== 'gzip' && compression !== 'zstd' && compression !== 'zstd:chunked') {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown compression '${String(compression)}': use none, gzip, zstd or zstd:chunked`);
  }
  if (format === 'docker' && (compression === 'zstd' || compression === 'zstd:chunked')) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'the docker image format has no zstd layers: use gzip, none, or the oci format');
  }
  // An uncompressed tar in the cache would be uploaded as it is by a push that should compress it.
  const keep = options.blobCache !== false && compression !== 'none';
  const changes = parseChanges(options.changes ?? []);
  const names = name === undefined || name === '' ? [] : [normalizeLocalName(name)];

  const info = await store.container(container);
  if (!info) throw new CarrierError('CARRIER_NOT_FOUND', `no such container ${container}`);
  const image = await store.requireImage(info.image);
  const parentConfig = JSON.parse((await store.imageBigData(image.id, `sha256:${image.id}`)).toString('utf8')) as Record<string, unknown>;
  const chain = await layerChain(store, image.topLayer);
  let chainId: string | undefined;
  for (const l of chain) {
    if (l.diffID === undefined) throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${l.id} of image ${image.id.slice(0, 12)} has no diff digest`);
    chainId = layerIdFor(chainId, l.diffID);
    if (chainId !== l.id) {
      throw new CarrierError('CARRIER_UNSUPPORTED', `image ${image.id.slice(0, 12)}: layer ${l.id} is not stored under the id its content gives (${chainId}), so no image can be committed on top of it`);
    }
  }
  const file = await readCarrierFile(store, info.id);
  const runConfig = typeof parentConfig.config === 'object' && parentConfig.config !== null ? (parentConfig.config as Record<string, unknown>) : {};

  const cache = new BlobCache(options.blobCacheDir ?? store.config.blobCache);
  const writer = await cache.beginUnnamed();
  let kept = false;
  let streamed: StreamedLayerTar | undefined;
  try {
    const paused = options.pause === true && file?.state.status === 'running';
    if (paused) await runtimeCommand(file, store, info.id, 'pause');
    let written: WrittenLayer;
    // A container that is not running cannot change before its layer is stored: its tar is streamed again from its
    // upper directory into the store (no 200 MiB temporary file written, flushed by the journal, read back, deleted).
    const replay = file !== undefined && file.state.status !== 'running';
    try {
      written = await writeLayer(store, info.layer, writer, compression, keep, options, replay);
    } finally {
      if (paused) await runtimeCommand(file, store, info.id, 'resume');
    }
    const created = new Date().toISOString();
    const docs = commitDocuments(
      {
        format,
        parent: parentConfig,
        parentId: image.id,
        parentName: image.names[0] ?? '',
        ...(await storedManifest(store, image).then((m) => (m ? { parentManifest: m } : {}))),
        containerId: info.id,
        container: containerSettings(file, runConfig),
        changes,
        ...(options.author !== undefined ? { author: options.author } : {}),
        ...(options.message !== undefined ? { message: options.message } : {}),
        created,
        layer: {
          diffID: written.diffID,
          digest: written.digest,
          size: written.size,
          compression: compression === 'zstd:chunked' ? 'zstd' : compression,
          ...(written.annotations ? { annotations: written.annotations } : {}),
        },
      },
      chain.map((l) => ({ diffID: l.diffID!, diffSize: l.diffSize ?? 0 })),
    );
    const manifest = parseManifest(docs.manifest, docs.manifestMediaType);
    if (manifest.kind !== 'manifest') throw new CarrierError('CARRIER_INVALID_MANIFEST', 'the committed manifest is not an image manifest');
    const newLayer: CommittedLayer = {
      id: layerIdFor(chainId, written.diffID),
      diffID: written.diffID,
      digest: written.digest,
      size: written.size,
      diffSize: written.uncompressedSize,
      mediaType: manifest.layers[manifest.layers.length - 1]!.mediaType,
    };
    // The blob is complete and verified by its own hashing: the cache may name it now (the store verifies it again).
    let blobPath = writer.tmpPath;
    if (keep) {
      await writer.commit(written.digest);
      kept = true;
      blobPath = cache.path(written.digest);
    }
    options.onLayer?.(newLayer);
    const layers: CommitLayer[] = chain.map((l) => ({
      diffID: l.diffID!,
      open: () => Promise.reject(new CarrierError('CARRIER_NOT_FOUND', `layer ${l.id} of image ${image.id.slice(0, 12)} is not in the store (a read-only image store's layers cannot be committed on)`)),
    }));
    const { upper } = written;
    layers.push({
      diffID: written.diffID,
      digest: written.digest,
      size: written.size,
      open: async () => {
        if (upper === undefined) return blobPath;
        try {
          streamed = await streamLayerTar(upper, options.signal);
          return streamed.path;
        } catch (err) {
          // No FIFO where temporary files go (a file system without them): the tar is stored after all.
          if (options.signal?.aborted) throw err;
          await diffLayerToFile(upper, { out: blobPath, ...(options.signal ? { signal: options.signal } : {}) });
          return blobPath;
        }
      },
      // A blob the cache does not keep goes as soon as the layer is made from it, before the store's syncfs, so its
      // dirty pages are dropped instead of written out with the layer's.
      ...(keep ? {} : { settle: async () => void (await Promise.all([streamed?.close(), writer.abort()])) }),
    });
    const result = await store
      .commitImage(
        { config: docs.config, configDigest: docs.configDigest, manifest: docs.manifest, manifestDigest: docs.manifestDigest, layers, names, created },
        { ...(options.signal ? { signal: options.signal } : {}), ...(options.sync === false ? { sync: false } : {}) },
      )
      .catch(async (err: unknown) => {
        // A streamed tar that failed on its own (a file that shrank) says more than the truncated tar the store saw.
        throw (await streamed?.close()) ?? err;
      });
    return {
      id: result.id,
      names: result.names,
      configDigest: docs.configDigest,
      manifestDigest: docs.manifestDigest,
      manifestMediaType: docs.manifestMediaType,
      parent: image.id,
      layer: newLayer,
      layers: manifest.layers.map((l) => l.digest),
    };
  } finally {
    await streamed?.close();
    if (!kept) await writer.abort();
  }
}

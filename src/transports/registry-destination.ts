// docker:// as a destination: push. Every blob goes first (HEAD skips what the registry has; a blob another
// repository of the same registry holds is mounted; the rest is uploaded), the manifest last, so a failed or
// cancelled push leaves no tag naming a partial image. A distributed blob is sent as it is (a pulled image pushed
// unchanged keeps every digest, its manifest's included); a tar the source rebuilt (the store's tar-split) is
// compressed on native threads (gzip, or zstd) while it streams to the registry, hashed on the way, and the manifest
// is rewritten with the new digests, sizes and media types; the config is never changed, so the image id stays.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Readable, Transform } from 'node:stream';
import { CarrierError, abortError } from '../errors.js';
import { parseReference, type ImageReference } from '../reference.js';
import { sha256Digest } from '../oci/digest.js';
import {
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER_TAR,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_MANIFEST,
  layerCompression,
} from '../oci/mediatypes.js';
import { decompressor, compressionError } from '../load/compression.js';
import type { RegistryClient } from '../registry/client.js';
import { BlobPusher, type BlobBytes } from '../registry/upload.js';
import type { BlobInfoCache } from '../registry/blob-info-cache.js';
import { compressLayer, type CompressLayerOptions } from '../layer/compress.js';
import { compressChunked } from '../chunked/compress.js';
import { isChunked } from '../chunked/annotations.js';
import { ociLayerType } from './store-source.js';
import { prepareRegistrySignatures } from './registry-signatures.js';
import { chain, tap } from './stream-taps.js';
import type { Document, ImageDestination, ImageSource, LayerBlob, PutImageOptions, PutImageResult, PutLayerResult } from './types.js';

export type PushCompression = 'gzip' | 'zstd' | 'zstd:chunked';

/**
 * gzip without a level asked for goes through ISA-L's deflate at its best level where the machine has libisal: on the
 * bench's distro layer (50 MiB of tar) it took 0.39 CPU-seconds from tar-split to hashed blob where zlib's level 4 took
 * 0.80, for a blob 5% larger (18.2 MiB, podman's 17.6 MiB). A level given (--compression-level) is zlib's, as podman's.
 */
const PUSH_ISAL_LEVEL = 3;

export interface RegistryDestinationOptions {
  /** How a layer that must be compressed (a rebuilt tar) is compressed. Default gzip. */
  compression?: PushCompression;
  /**
   * Recompress every layer not already in `compression` (podman's --force-compression, on when
   * --compression-format is given). Default false: compressed blobs are sent as they are.
   */
  forceCompression?: boolean;
  /** The level of layers compressed on the way (default: gzip through ISA-L, PUSH_ISAL_LEVEL, else zlib 4; zstd 3). */
  compressionLevel?: number;
  /** A blob up to this size goes in one PUT; a longer one is streamed in one PATCH (default 8 MiB). */
  chunkSize?: number;
  signal?: AbortSignal;
  /** Where registries.d is read from to write signatures (default: the user's, else /etc/containers/registries.d). */
  registriesDir?: string;
  /**
   * Where compressed forms of layers were seen: a layer that would be compressed is first looked up here, and skipped
   * (the repository has it) or mounted (another repository of the registry has it) without compressing. Every blob
   * this destination pushes, finds or mounts is recorded in it.
   */
  blobInfoCache?: BlobInfoCache;
}

interface LayerOut {
  digest: string;
  size: number;
  mediaType: 'gzip' | 'zstd' | 'none';
  state: PutLayerResult['state'];
  /** zstd:chunked: where the TOC and tar-split are (the layer descriptor's annotations). */
  annotations?: Record<string, string>;
}

/** The tag part of a full name of `repo`: `host/repo:tag` → `tag`; a digest reference gives its digest. */
function tagOf(name: string, ref: ImageReference): string {
  const r = parseReference(name);
  if (r.domain !== ref.domain || r.path !== ref.path) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `${name} is not in ${ref.domain}/${ref.path}, where this destination pushes`);
  }
  return r.digest ?? r.tag ?? 'latest';
}

export class RegistryDestination implements ImageDestination {
  readonly transport = 'docker' as const;
  readonly reference: string;
  readonly keepsSignatures = true;
  private readonly pusher: BlobPusher;
  /** Layers already pushed in this destination's life, by source digest and wanted compression. */
  private readonly memo = new Map<string, Promise<LayerOut>>();
  /** Set while an image whose signatures are kept is pushed: its layers go as they are, so its manifest stays. */
  private keepManifest = false;
  /** Layers compressed one at a time, on every core (blobs sent as they are do not wait for it). */
  private readonly compressing = new CompressionSlots();

  constructor(
    private readonly client: RegistryClient,
    readonly ref: ImageReference,
    private readonly options: RegistryDestinationOptions = {},
  ) {
    this.reference = `docker://${ref.domain}/${ref.path}${ref.digest ? '@' + ref.digest : ':' + (ref.tag ?? 'latest')}`;
    this.pusher = new BlobPusher(client, ref, {
      ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** The repository of this registry a source image is in, when it is here too (a mount can then skip the upload). */
  private mountSource(image: ImageSource): string | undefined {
    const names = image.transport === 'docker' ? [image.reference.replace(/^docker:\/\//, '')] : image.names;
    for (const n of names) {
      try {
        const r = parseReference(n);
        if (r.domain === this.ref.domain && r.path !== this.ref.path) return r.path;
      } catch {
        /* a name that is not a registry name */
      }
    }
    return undefined;
  }

  private wants(layer: LayerBlob): PushCompression | undefined {
    if (this.keepManifest) return undefined;
    const kind = layerCompression(layer.mediaType) ?? 'none';
    const has = kind === 'zstd' && isChunked(layer.annotations) ? 'zstd:chunked' : kind;
    const want = this.options.compression ?? 'gzip';
    if (has === want || (want === 'zstd' && kind === 'zstd')) return undefined;
    if (has === 'none' ? layer.rebuilt === true || this.options.forceCompression === true : this.options.forceCompression === true) return want;
    return undefined;
  }

  private async putLayer(layer: LayerBlob, from: string | undefined, options: PutImageOptions, signal?: AbortSignal): Promise<LayerOut> {
    const out = await this.sendLayer(layer, from, options, signal);
    await this.options.blobInfoCache?.record(layer.diffID, { digest: out.digest, size: out.size, compression: out.mediaType }, this.ref.domain, this.ref.path);
    return out;
  }

  /**
   * A blob the blob-info cache knows as `layer` compressed with `want`, found in this repository (HEAD) or mounted
   * from another of this registry; undefined when none is (then the layer is compressed after all).
   */
  private async reuseKnown(layer: LayerBlob, want: Exclude<PushCompression, 'zstd:chunked'>, options: PutImageOptions, signal?: AbortSignal): Promise<LayerOut | undefined> {
    const cache = this.options.blobInfoCache;
    if (!cache) return undefined;
    for (const known of (await cache.candidates(layer.diffID, want, this.ref.domain)).slice(0, 3)) {
      try {
        if (await this.pusher.has(known.digest, signal)) {
          options.onLayer?.(layer, 'exists');
          return { digest: known.digest, size: known.size, mediaType: want, state: 'exists' };
        }
        for (const repo of known.repositories.filter((r) => r !== this.ref.path).slice(0, 2)) {
          const m = await this.pusher.mount(known.digest, repo, signal);
          if (m === true) {
            options.onLayer?.(layer, 'reused');
            return { digest: known.digest, size: known.size, mediaType: want, state: 'reused' };
          }
          await this.pusher.cancel(m);
        }
      } catch (err) {
        // only a hint: a registry that refuses the HEAD or the mount gets the layer compressed and uploaded
        if (signal?.aborted) throw err;
      }
    }
    return undefined;
  }

  private async sendLayer(layer: LayerBlob, from: string | undefined, options: PutImageOptions, signal?: AbortSignal): Promise<LayerOut> {
    const want = this.wants(layer);
    const onBytes = options.onBytes ? (n: number) => options.onBytes!(layer, n) : undefined;
    if (want === undefined) {
      const kind = layerCompression(layer.mediaType) ?? 'none';
      if (await this.pusher.has(layer.digest, signal)) {
        options.onLayer?.(layer, 'exists');
        return { digest: layer.digest, size: layer.size, mediaType: kind, state: 'exists' };
      }
      let location: URL | undefined;
      if (from !== undefined) {
        const m = await this.pusher.mount(layer.digest, from, signal);
        if (m === true) {
          options.onLayer?.(layer, 'reused');
          return { digest: layer.digest, size: layer.size, mediaType: kind, state: 'reused' };
        }
        location = m;
      }
      options.onLayer?.(layer, 'copying');
      const blob: BlobBytes = {
        what: `layer blob ${layer.digest}`,
        digest: layer.digest,
        size: layer.size,
        open: async () => (await layer.open(signal ? { signal } : {})) as AsyncIterable<Buffer>,
      };
      await this.pusher.upload(blob, { ...(signal ? { signal } : {}), ...(onBytes ? { onBytes } : {}), ...(location ? { location } : {}) });
      options.onLayer?.(layer, 'done');
      return { digest: layer.digest, size: layer.size, mediaType: kind, state: 'copied' };
    }
    // A blob the cache knows carries no zstd:chunked annotations: a chunked layer is always compressed here.
    const known = want === 'zstd:chunked' ? undefined : await this.reuseKnown(layer, want, options, signal);
    if (known) return known;
    options.onLayer?.(layer, 'copying');
    let check: (() => Promise<Record<string, string> | undefined>) | undefined;
    let annotations: Record<string, string> | undefined;
    const blob: BlobBytes = {
      what: `layer ${layer.diffID} (${want}-compressed)`,
      open: async () => {
        const level = this.options.compressionLevel;
        const how = level !== undefined ? { level } : want === 'gzip' ? { isalLevel: PUSH_ISAL_LEVEL } : {};
        const release = await this.compressing.acquire();
        try {
          const c = await openCompressed(layer, { compression: want, threads: this.compressing.threads, ...how }, (n) => onBytes?.(Math.min(n, layer.size)), signal);
          c.stream.once('close', release);
          check = c.check;
          return c.stream as AsyncIterable<Buffer>;
        } catch (err) {
          release();
          throw err;
        }
      },
      verify: async () => {
        annotations = await check?.();
      },
    };
    const up = await this.pusher.upload(blob, signal ? { signal } : {});
    options.onLayer?.(layer, 'done');
    return { digest: up.digest, size: up.size, mediaType: want === 'zstd:chunked' ? 'zstd' : want, state: 'recompressed', ...(annotations ? { annotations } : {}) };
  }

  async putImage(image: ImageSource, options: PutImageOptions): Promise<PutImageResult> {
    const signal = options.signal ?? this.options.signal;
    if (signal?.aborted) throw abortError(signal);
    const from = this.mountSource(image);
    const kept = options.signatures ?? [];
    this.keepManifest = false;
    if (kept.length > 0 && this.options.forceCompression === true && image.layers.some((l) => this.wants(l) !== undefined)) throw invalidates(image);
    this.keepManifest = kept.length > 0;
    const outs: LayerOut[] = new Array(image.layers.length);
    let next = 0;
    let failed = false;
    // The config does not depend on how the layers go: it is uploaded beside them, not after them (its HEAD, POST and
    // PUT were three round trips between the last layer and the manifest).
    const config = this.pusher.putBytes(image.config, `config ${image.configDigest}`, signal, from).catch((err: unknown) => {
      failed = true;
      throw err;
    });
    config.catch(() => {});
    const worker = async (): Promise<void> => {
      while (next < image.layers.length && !failed) {
        const i = next++;
        const layer = image.layers[i]!;
        const key = `${layer.digest}|${this.wants(layer) ?? ''}`;
        let p = this.memo.get(key);
        if (!p) {
          p = this.putLayer(layer, from, options, signal);
          this.memo.set(key, p);
          p.catch(() => this.memo.delete(key));
        } else {
          options.onLayer?.(layer, 'exists');
        }
        outs[i] = await p.catch((err: unknown) => {
          failed = true;
          throw err;
        });
      }
    };
    const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency, image.layers.length)) }, worker);
    const settled = await Promise.allSettled(workers);
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected) {
      await config.catch(() => {});
      throw rejected.reason;
    }
    await config;

    const changed = outs.some((o, i) => {
      const was = image.parsedManifest.layers[i];
      return !was || was.digest !== o.digest || (layerCompression(was.mediaType) ?? 'none') !== o.mediaType;
    });
    if (changed && kept.length > 0) throw invalidates(image);
    const manifest = changed ? this.rewrite(image, outs) : { bytes: image.manifest, mediaType: image.manifestMediaType };
    const manifestDigest = sha256Digest(manifest.bytes);
    const names = [...new Set(options.names)];
    const refs = names.length > 0 ? names.map((n) => tagOf(n, this.ref)) : [this.ref.digest ?? manifestDigest];
    const writeSignatures = await this.prepareSignatures(manifest.bytes, manifestDigest, names, options, signal);
    for (const r of refs) {
      if (r.includes(':') && r !== manifestDigest) {
        throw new CarrierError('CARRIER_DIGEST_MISMATCH', `${this.ref.domain}/${this.ref.path}@${r} was asked for, but the manifest pushed is ${manifestDigest}`);
      }
      await this.pusher.putManifest(r, manifest.bytes, manifest.mediaType, signal);
    }
    await writeSignatures();
    return {
      id: image.configDigest.replace(/^sha256:/, ''),
      names,
      manifestDigest,
      manifestReused: !changed,
      layers: outs.map((o, i) => ({ digest: o.digest, size: o.size, diffID: image.layers[i]!.diffID, state: o.state })),
    };
  }

  /**
   * The source's signatures kept, and new ones made for the first name pushed, to be written as registries.d says:
   * made and checked before the manifest is pushed, written after it.
   */
  private async prepareSignatures(manifest: Buffer, digest: string, names: string[], options: PutImageOptions, signal?: AbortSignal): Promise<() => Promise<void>> {
    const identity = names[0] ?? `${this.ref.domain}/${this.ref.path}${this.ref.tag !== undefined ? ':' + this.ref.tag : '@' + digest}`;
    const made = await Promise.all((options.signers ?? []).map((sign) => sign(manifest, identity)));
    const target = { client: this.client, pusher: this.pusher, ref: this.ref };
    return prepareRegistrySignatures(target, digest, [...(options.signatures ?? []), ...made], {
      ...(this.options.registriesDir !== undefined ? { registriesDir: this.options.registriesDir } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  /** A manifest naming the layers as they were pushed: Docker schema 2 when the source was and can stay so, else OCI. */
  private rewrite(image: ImageSource, outs: LayerOut[]): { bytes: Buffer; mediaType: string } {
    const docker = image.manifestMediaType === DOCKER_MANIFEST && outs.every((o) => o.mediaType !== 'zstd');
    const configType = docker ? image.parsedManifest.config.mediaType : OCI_CONFIG;
    const layers = outs.map((o) => ({
      mediaType: docker ? (o.mediaType === 'gzip' ? DOCKER_LAYER_GZIP : DOCKER_LAYER_TAR) : ociLayerType(o.mediaType),
      digest: o.digest,
      size: o.size,
      ...(o.annotations ? { annotations: o.annotations } : {}),
    }));
    const mediaType = docker ? DOCKER_MANIFEST : OCI_MANIFEST;
    const annotations = !docker && image.parsedManifest.annotations ? { annotations: image.parsedManifest.annotations } : {};
    const doc = { schemaVersion: 2, mediaType, config: { mediaType: configType, digest: image.configDigest, size: image.config.length }, layers, ...annotations };
    return { bytes: Buffer.from(JSON.stringify(doc)), mediaType };
  }

  /**
   * PUTs an index or manifest list under the names given (after every manifest it lists was pushed by digest with
   * putImage and no names). Its bytes are kept, so its digest is the source's.
   */
  async putIndex(index: Document, names: readonly string[], signal?: AbortSignal, signing: Pick<PutImageOptions, 'signatures' | 'signers'> = {}): Promise<string> {
    const refs = names.length > 0 ? [...new Set(names)].map((n) => tagOf(n, this.ref)) : [this.ref.digest ?? index.digest];
    const s = signal ?? this.options.signal;
    const digest = sha256Digest(index.bytes);
    const writeSignatures = await this.prepareSignatures(index.bytes, digest, [...new Set(names)], { ...signing, names, concurrency: 1 }, s);
    for (const r of refs) await this.pusher.putManifest(r, index.bytes, index.mediaType, s);
    await writeSignatures();
    return digest;
  }

  async close(): Promise<void> {}

  /** Nothing to undo: blobs uploaded are unreferenced until a manifest names them, and no manifest was put. */
  async abort(): Promise<void> {}
}

/**
 * One layer compresses at a time, on every core (compressLayer's threads): more layers at once only add memory —
 * each compressor holds its threads + 2 blocks (gzip ~2 MiB, zstd ~16 MiB each, input and output) — and did not
 * measurably go faster. A slot is held from the compressed stream's opening to its close (its last byte read, or its
 * end on failure), not until the registry has taken the blob: the next layer compresses while the registry stores
 * and hashes the previous one. Blobs sent as they are do not wait for this.
 */
class CompressionSlots {
  private readonly waiting: (() => void)[] = [];
  private busy = 0;
  private readonly slots = 1;
  readonly threads = Math.max(1, Math.min(availableParallelism(), 8));

  /** Waits for a slot; the function returned gives it back (once, however often it is called). */
  async acquire(): Promise<() => void> {
    if (this.busy >= this.slots) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.busy++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.waiting.shift();
      if (next) next();
      else this.busy--;
    };
  }
}

/** As containers/image refuses it: a signed image whose manifest would change loses its signatures' meaning. */
function invalidates(image: ImageSource): CarrierError {
  return new CarrierError('CARRIER_UNSUPPORTED', `${image.reference} is signed, and pushing it would change its manifest, which would invalidate its signatures: push with --remove-signatures`);
}

/**
 * The layer compressed on native threads (compressLayer: gzip in parallel blocks or zstd with worker threads), with
 * a check of its diff_id (and of the blob's digest, when it is decompressed here first); `onTar` counts the tar's bytes.
 */
async function openCompressed(
  layer: LayerBlob,
  how: Omit<CompressLayerOptions, 'compression'> & { compression: PushCompression },
  onTar: (n: number) => void,
  signal?: AbortSignal,
): Promise<{ stream: Readable; check: () => Promise<Record<string, string> | undefined> }> {
  const o = signal ? { signal } : {};
  const { compression, ...rest } = how;
  // compressLayer counts the tar's bytes itself (and rebuilds a store layer's tar on its own thread when handed the
  // store's stream unread); the zstd:chunked compressor is counted on the way in.
  let tarBytes = 0;
  const counter = (): Transform => tap(undefined, (n) => onTar((tarBytes += n)));
  const count = (s: Readable): Readable => (compression === 'zstd:chunked' ? chain(s, counter()) : s);
  let tar: Readable;
  let checkBlob = (): void => {};
  if (layer.openTar) {
    tar = count(await layer.openTar(o));
  } else {
    const blob = await layer.open(o);
    const kind = layerCompression(layer.mediaType) ?? 'none';
    if (kind === 'none') {
      tar = count(blob);
    } else {
      const blobHash = createHash('sha256');
      let blobBytes = 0;
      const inflate = decompressor(kind);
      const out = tap(undefined, () => {});
      inflate.on('error', (err) => out.destroy(compressionError(kind, err) as Error));
      tar = count(chain(blob, tap(blobHash, (n) => void (blobBytes += n)), inflate, out));
      checkBlob = () => {
        const got = `sha256:${blobHash.digest('hex')}`;
        if (got !== layer.digest || blobBytes !== layer.size) {
          throw new CarrierError('CARRIER_DIGEST_MISMATCH', `layer blob ${layer.digest} read as ${blobBytes} bytes with ${got}`);
        }
      };
    }
  }
  const job =
    compression === 'zstd:chunked'
      ? compressChunked(tar, { ...(how.level !== undefined ? { level: how.level } : {}), ...o })
      : compressLayer(tar, { ...rest, compression, onTarBytes: onTar, ...o });
  return {
    stream: job.stream,
    check: async () => {
      const r: { diffID: string; uncompressedSize: number; annotations?: Record<string, string> } = await job.result;
      checkBlob();
      if (r.diffID !== layer.diffID || (layer.diffSize !== undefined && r.uncompressedSize !== layer.diffSize)) {
        throw new CarrierError('CARRIER_DIGEST_MISMATCH', `layer ${layer.diffID} read as ${r.uncompressedSize} bytes with ${r.diffID}`);
      }
      return r.annotations;
    },
  };
}

// Pull: resolve → plan → fetch + apply (in parallel, progressively) → commit.
//
// Every missing layer is streamed from the registry straight into applyLayer (which hashes, decompresses, hashes
// again, extracts and records the tar-split on native threads) while the same bytes are teed into the blob cache;
// extraction starts with the first byte. Layers already in the store are skipped, cached blobs are applied without
// the network. The store's commit protocol makes a failed or cancelled pull leave the store as it was.
import type { Readable } from 'node:stream';
import { CarrierError } from './errors.js';
import { formatReference, isShortName, normalizePullName, parseReference, type ImageReference } from './reference.js';
import { RegistryClient, loadCredentials } from './registry/index.js';
import { loadRegistriesConf } from './registries-conf.js';
import { parseManifest, parseImageConfig, hostPlatform, type PlatformWant, type Descriptor } from './oci/manifest.js';
import { sha256Digest } from './oci/digest.js';
import { isLayerMediaType, isNondistributable } from './oci/mediatypes.js';
import { BlobCache, type BlobWriter } from './store/blobs.js';
import { cacheMaxSizeFromEnv, trimBlobCache } from './store/gc.js';
import type { Store, CommitLayer } from './store/store.js';
import { layerIdFor } from './store/ids.js';
import type { AppliedLayer } from './layer/apply.js';

/** What pull needs from a registry; src/registry's RegistryClient is the real one. */
export interface RegistrySource {
  getManifest(
    ref: ImageReference,
    options: { platform?: PlatformWant; signal?: AbortSignal },
  ): Promise<{ bytes: Buffer; mediaType: string; digest: string; list?: { bytes: Buffer; digest: string; mediaType: string } }>;
  getBlob(ref: ImageReference, digest: string, options: { size?: number; signal?: AbortSignal }): Promise<Readable>;
}

export type LayerState = 'exists' | 'cached' | 'downloading' | 'done';

export type PullEvent =
  | { type: 'resolved'; reference: string; manifestDigest: string; listDigest?: string; configDigest: string; layers: { digest: string; size: number }[] }
  | { type: 'layer'; digest: string; size: number; state: LayerState }
  | { type: 'progress'; digest: string; bytes: number; size: number }
  | { type: 'committed'; id: string; names: string[] };

export interface PullOptions {
  /** `os/arch[/variant]` or an object; default: this machine. */
  platform?: string | PlatformWant;
  signal?: AbortSignal;
  onProgress?: (event: PullEvent) => void;
  /** Layers fetched and applied at once. Default 3. */
  concurrency?: number;
  /** Use and fill the blob cache (default true). */
  blobCache?: boolean;
  /** Where blobs are cached (default: the store's configured blob cache). */
  blobCacheDir?: string;
  /** false: layers are not flushed to disk before they are recorded complete, as podman does (see CommitOptions.sync). */
  sync?: boolean;
  /** Trim the blob cache to this many bytes after the pull (default: $CARRIER_CACHE_MAX_SIZE, else no cap). */
  blobCacheMaxSize?: number;
  /** The registry client to use (default: a RegistryClient made from the options below, closed afterwards). */
  registry?: RegistrySource;
  /** false: plain http and untrusted TLS allowed (podman --tls-verify=false). */
  tlsVerify?: boolean;
  /** `user:pass` for every registry (podman --creds). */
  creds?: string;
  /** An auth.json to read instead of the default locations (podman --authfile). */
  authfile?: string;
  /** A registries.conf (default: $CONTAINERS_REGISTRIES_CONF, else docker.io as the only search registry). */
  registriesConf?: string;
  /** Settings ignored while reading config files. */
  onWarning?: (message: string) => void;
  /** The largest config blob accepted (default 8 MiB). */
  maxConfigBytes?: number;
}

export interface PullResult {
  id: string;
  names: string[];
  /** The digest podman records: the index's when pulled through one, else the manifest's. */
  digest: string;
  manifestDigest: string;
  layers: { digest: string; size: number; state: 'exists' | 'cached' | 'downloaded' }[];
}

/** Errors that say a cached blob's bytes are bad (it is then evicted and fetched again). */
const CONTENT_ERRORS = new Set(['CARRIER_DIGEST_MISMATCH', 'CARRIER_BAD_COMPRESSION', 'CARRIER_TRUNCATED', 'CARRIER_BAD_TAR']);

export function parsePlatform(p: string | PlatformWant | undefined): PlatformWant {
  if (p === undefined) return hostPlatform();
  if (typeof p !== 'string') return p;
  const parts = p.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '')) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid platform "${p}": want os/arch[/variant]`);
  }
  const want: PlatformWant = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) want.variant = parts[2];
  return want;
}

/**
 * Pulls `reference` (e.g. `alpine`, `host:5000/repo:tag`, `repo@sha256:…`) into the store. A short name is tried
 * against each of registries.conf's unqualified-search-registries in turn (docker.io when there is no file).
 */
export async function pull(store: Store, reference: string, options: PullOptions = {}): Promise<PullResult> {
  const conf = await loadRegistriesConf(options.registriesConf !== undefined ? { file: options.registriesConf } : {});
  for (const w of conf.warnings) options.onWarning?.(w);
  const own = options.registry
    ? undefined
    : new RegistryClient({
        ...(options.tlsVerify !== undefined ? { tlsVerify: options.tlsVerify } : {}),
        registriesConf: conf,
        credentials: await loadCredentials({
          ...(options.creds !== undefined ? { creds: options.creds } : {}),
          ...(options.authfile !== undefined ? { authfile: options.authfile } : {}),
          ...(options.onWarning ? { onWarning: options.onWarning } : {}),
        }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
  const registry = options.registry ?? own!;
  try {
    const names = isShortName(reference)
      ? conf.unqualifiedSearchRegistries.map((domain) => normalizePullName(reference, { defaultDomain: domain }))
      : [normalizePullName(reference)];
    if (names.length === 0) throw new CarrierError('CARRIER_INVALID_REFERENCE', `short name "${reference}" and no unqualified-search-registries are configured`);
    let lastError: unknown;
    for (const name of names) {
      try {
        return await pullOne(store, name, registry, options);
      } catch (err) {
        lastError = err;
        const code = (err as { code?: string }).code;
        if (names.length === 1 || (code !== 'CARRIER_NOT_FOUND' && code !== 'CARRIER_UNAUTHORIZED')) throw err;
      }
    }
    throw lastError;
  } finally {
    await own?.close();
  }
}

async function pullOne(store: Store, name: string, registry: RegistrySource, options: PullOptions): Promise<PullResult> {
  const ref = parseReference(name);
  const emit = options.onProgress ?? (() => {});
  const signal = options.signal;
  const platform = parsePlatform(options.platform);

  const got = await registry.getManifest(ref, { platform, ...(signal ? { signal } : {}) });
  const manifest = parseManifest(got.bytes, got.mediaType);
  if (manifest.kind !== 'manifest') throw new CarrierError('CARRIER_INVALID_MANIFEST', `${name} resolved to an index, not an image manifest`);
  if (sha256Digest(got.bytes) !== got.digest) throw new CarrierError('CARRIER_DIGEST_MISMATCH', `manifest of ${name} does not match ${got.digest}`);

  const config = await readSmallBlob(registry, ref, manifest.config, options.maxConfigBytes ?? 8 << 20, signal);
  const parsedConfig = parseImageConfig(config);
  const layers = manifest.layers.filter((l) => isLayerMediaType(l.mediaType) || l.mediaType === undefined);
  if (layers.length !== manifest.layers.length) {
    const odd = manifest.layers.find((l) => !layers.includes(l))!;
    throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${odd.digest} has media type ${odd.mediaType}, which is not a layer`);
  }
  if (layers.length !== parsedConfig.rootfs.diff_ids.length) {
    throw new CarrierError('CARRIER_INVALID_MANIFEST', `the manifest lists ${layers.length} layers but the config has ${parsedConfig.rootfs.diff_ids.length} diff_ids`);
  }
  for (const l of layers) {
    if (isNondistributable(l.mediaType) && (l.urls?.length ?? 0) > 0) {
      throw new CarrierError('CARRIER_UNSUPPORTED', `layer ${l.digest} is non-distributable (foreign URLs are not fetched)`);
    }
  }
  emit({
    type: 'resolved',
    reference: name,
    manifestDigest: got.digest,
    ...(got.list ? { listDigest: got.list.digest } : {}),
    configDigest: manifest.config.digest,
    layers: layers.map((l) => ({ digest: l.digest, size: l.size })),
  });

  const cache = options.blobCache === false ? undefined : new BlobCache(options.blobCacheDir ?? store.config.blobCache);
  const states = new Map<number, 'exists' | 'cached' | 'downloaded'>();
  const fromCache = new Set<string>();
  const commitLayers: CommitLayer[] = layers.map((desc, i) => layerSource(i, desc, parsedConfig.rootfs.diff_ids[i]!));

  function layerSource(index: number, desc: Descriptor, diffID: string): CommitLayer {
    let writer: BlobWriter | undefined;
    return {
      diffID,
      digest: desc.digest,
      size: desc.size,
      open: async () => {
        const cached = cache ? await cache.lookup(desc.digest, desc.size) : undefined;
        if (cached) {
          fromCache.add(desc.digest);
          states.set(index, 'cached');
          emit({ type: 'layer', digest: desc.digest, size: desc.size, state: 'cached' });
          return cached;
        }
        states.set(index, 'downloaded');
        emit({ type: 'layer', digest: desc.digest, size: desc.size, state: 'downloading' });
        const body = await registry.getBlob(ref, desc.digest, { size: desc.size, ...(signal ? { signal } : {}) });
        let last = 0;
        const onBytes = (bytes: number): void => {
          const now = Date.now();
          if (now - last >= 100 || bytes === desc.size) {
            last = now;
            emit({ type: 'progress', digest: desc.digest, bytes, size: desc.size });
          }
        };
        // The blob cache copy is written by applyLayer's decode thread, not here: no per-chunk round trip through
        // the thread pool on the way to the decompressor.
        if (cache) {
          writer = await cache.begin(desc.digest).catch((err: unknown) => {
            body.destroy();
            throw err;
          });
        }
        return { stream: body, onBytes, ...(writer ? { teeFd: writer.fd } : {}) };
      },
      settle: async (applied: AppliedLayer | undefined) => {
        if (writer) {
          if (applied) await writer.commit();
          else await writer.abort();
          writer = undefined;
        }
        if (applied) emit({ type: 'layer', digest: desc.digest, size: desc.size, state: 'done' });
      },
    };
  }

  // Layers the store already has are announced up front (podman: "Copying blob … skipped: already exists").
  const present = new Set((await store.layers()).filter((l) => !l.incomplete && !l.readOnly).map((l) => l.id));
  let parentId: string | undefined;
  const existing = new Set<number>();
  layers.forEach((l, i) => {
    parentId = layerIdFor(parentId, parsedConfig.rootfs.diff_ids[i]!);
    if (present.has(parentId)) {
      existing.add(i);
      emit({ type: 'layer', digest: l.digest, size: l.size, state: 'exists' });
    }
  });

  const names = [ref.digest ? `${ref.domain}/${ref.path}@${ref.digest}` : formatReference(ref)];
  const commit = {
    config,
    configDigest: manifest.config.digest,
    manifest: got.bytes,
    manifestDigest: got.digest,
    ...(got.list ? { list: { bytes: got.list.bytes, digest: got.list.digest } } : {}),
    layers: commitLayers,
    names,
    ...(parsedConfig.created ? { created: parsedConfig.created } : {}),
  };
  const commitOptions = { concurrency: options.concurrency ?? 3, ...(signal ? { signal } : {}), ...(options.sync === false ? { sync: false } : {}) };
  let result;
  try {
    result = await store.commitImage(commit, commitOptions);
  } catch (err) {
    // A cached blob that no longer verifies (a crash before it reached the disk, a bad disk) is dropped and the
    // pull retried once from the network.
    const code = (err as { code?: string }).code;
    if (!cache || fromCache.size === 0 || !code || !CONTENT_ERRORS.has(code)) throw err;
    for (const d of fromCache) await cache.evict(d);
    fromCache.clear();
    states.clear();
    result = await store.commitImage(commit, commitOptions);
  }
  const byDiff = new Map(result.layers.map((l) => [l.diffID, l]));
  const summary = layers.map((l, i) => {
    const state = byDiff.get(parsedConfig.rootfs.diff_ids[i]!)?.applied ? (states.get(i) ?? 'downloaded') : 'exists';
    if (state === 'exists' && !existing.has(i)) emit({ type: 'layer', digest: l.digest, size: l.size, state: 'exists' });
    return { digest: l.digest, size: l.size, state };
  });
  emit({ type: 'committed', id: result.id, names });
  // Keep the blob cache under its cap (CARRIER_CACHE_MAX_SIZE) between prunes: least recently used blobs go first.
  const cap = options.blobCacheMaxSize ?? cacheMaxSizeFromEnv();
  if (cache && cap !== undefined) await trimBlobCache(cache.root, cap);
  return { id: result.id, names, digest: got.list?.digest ?? got.digest, manifestDigest: got.digest, layers: summary };
}

async function readSmallBlob(registry: RegistrySource, ref: ImageReference, desc: Descriptor, max: number, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > max) throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `config blob ${desc.digest} is ${desc.size} bytes, more than ${max}`);
  const body = await registry.getBlob(ref, desc.digest, { size: desc.size, ...(signal ? { signal } : {}) });
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

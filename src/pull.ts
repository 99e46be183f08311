// Pull: copyImage from the registry transport into the store transport.
//
// Every missing layer is streamed from the registry straight into applyLayer (which hashes, decompresses, hashes
// again, extracts and records the tar-split on native threads) while the same bytes are teed into the blob cache;
// extraction starts with the first byte. Layers already in the store are skipped, cached blobs are applied without
// the network. The store's commit protocol makes a failed or cancelled pull leave the store as it was.
import { CarrierError } from './errors.js';
import { isShortName, normalizePullName, parseReference, validateStoredName } from './reference.js';
import { RegistryClient, loadCredentials } from './registry/index.js';
import { loadRegistriesConf } from './registries-conf.js';
import { hostPlatform, type PlatformWant } from './oci/manifest.js';
import { BlobCache } from './store/blobs.js';
import { cacheMaxSizeFromEnv, trimBlobCache } from './store/gc.js';
import type { Store } from './store/store.js';
import { openRegistryManifest, type RegistrySource } from './transports/registry.js';
import { StoreDestination } from './transports/store-destination.js';
import { copyImage, type CopyEvent } from './copy/copy-image.js';
import { loadPolicy } from './trust/index.js';

export type { RegistrySource } from './transports/registry.js';

export type LayerState = 'exists' | 'cached' | 'downloading' | 'done';

export type PullEvent =
  | { type: 'resolved'; reference: string; manifestDigest: string; listDigest?: string; configDigest: string; layers: { digest: string; size: number }[] }
  | { type: 'layer'; digest: string; size: number; state: LayerState }
  | { type: 'progress'; digest: string; bytes: number; size: number }
  /** A zstd:chunked layer pulled partially: compressed bytes to fetch, and skipped because the store has the files. */
  | { type: 'partial'; digest: string; size: number; toFetch: number; skipped: number }
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
  /** Certificates (`*.crt`, `*.cert` + `*.key`) for every registry (podman --cert-dir); default: the registry's certs.d. */
  certDir?: string;
  /** An auth.json to read instead of the default locations (podman --authfile). */
  authfile?: string;
  /** A registries.conf (default: $CONTAINERS_REGISTRIES_CONF, else docker.io as the only search registry). */
  registriesConf?: string;
  /** Settings ignored while reading config files. */
  onWarning?: (message: string) => void;
  /** The policy.json to enforce (podman --signature-policy); default: ~/.config/containers/policy.json, else /etc/containers/policy.json, else none (accept). */
  signaturePolicy?: string;
  /** The largest config blob accepted (default 8 MiB). */
  maxConfigBytes?: number;
  /** Bytes the image's new layers may write to disk (see CommitOptions.maxImageBytes). */
  maxImageBytes?: number;
  /** Overall deadline for the registry's part of the pull (ms): past it, everything stops with CARRIER_TIMEOUT. Default: none. */
  timeout?: number;
  /**
   * zstd:chunked layers: 'auto' (default) fetches only the files the store lacks, by HTTP range, when that is cheaper
   * than the whole blob, verifying every file and the layer's diff_id; 'never' always fetches whole blobs.
   */
  partial?: 'auto' | 'never';
  /**
   * A partial pull hard-links a file the store already has, instead of reflinking or copying it, when its owner,
   * mode, mtime and xattrs match (containers-storage's `use_hard_links`; layers then share those inodes). Default: false.
   */
  useHardLinks?: boolean;
}

export interface PullResult {
  id: string;
  names: string[];
  /** The digest podman records: the index's when pulled through one, else the manifest's. */
  digest: string;
  manifestDigest: string;
  layers: { digest: string; size: number; state: 'exists' | 'cached' | 'downloaded' }[];
}

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
  // An own client reports registries.conf's warnings itself, with its retries.
  if (options.registry) for (const w of conf.warnings) options.onWarning?.(w);
  const own = options.registry
    ? undefined
    : new RegistryClient({
        ...(options.tlsVerify !== undefined ? { tlsVerify: options.tlsVerify } : {}),
        ...(options.certDir !== undefined ? { certDir: options.certDir } : {}),
        ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
        registriesConf: conf,
        credentials: await loadCredentials({
          ...(options.creds !== undefined ? { creds: options.creds } : {}),
          ...(options.authfile !== undefined ? { authfile: options.authfile } : {}),
          ...(options.onWarning ? { onWarning: options.onWarning } : {}),
        }),
        ...(options.onWarning ? { onWarning: options.onWarning } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
  const registry = options.registry ?? own!;
  try {
    const names = isShortName(reference)
      ? conf.unqualifiedSearchRegistries.map((domain) => normalizePullName(reference, { defaultDomain: domain }))
      : [normalizePullName(reference)];
    for (const name of names) validateStoredName(name);
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
  const signal = options.signal;
  // The signature policy is read while the manifest is fetched: it decides as soon as the manifest is in.
  const loadedPolicy = loadPolicy(options.signaturePolicy !== undefined ? { signaturePolicy: options.signaturePolicy } : {});
  loadedPolicy.catch(() => {});
  const source = await openRegistryManifest(registry, parseReference(name), {
    platform: parsePlatform(options.platform),
    ...(signal ? { signal } : {}),
    ...(options.maxConfigBytes !== undefined ? { maxConfigBytes: options.maxConfigBytes } : {}),
  });
  const cache = options.blobCache === false ? undefined : new BlobCache(options.blobCacheDir ?? store.config.blobCache);
  if (options.partial !== undefined && options.partial !== 'auto' && options.partial !== 'never') {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `partial must be 'auto' or 'never', got '${String(options.partial)}'`);
  }
  const destination = new StoreDestination(store, {
    ...(cache ? { blobCache: cache } : {}),
    ...(options.sync === false ? { sync: false } : {}),
    ...(options.partial ? { partial: options.partial } : {}),
    ...(options.useHardLinks ? { useHardLinks: true } : {}),
    ...(options.maxImageBytes !== undefined ? { maxImageBytes: options.maxImageBytes } : {}),
  });
  const emit = options.onProgress;
  const names = [...source.names];
  const result = await copyImage(source, destination, {
    names,
    concurrency: options.concurrency ?? 3,
    ...(signal ? { signal } : {}),
    ...(emit ? { onProgress: (event: CopyEvent) => emit(pullEvent(event, name)) } : {}),
    loadedPolicy,
    signatureRegistry: registry,
  }).catch((err: unknown) => {
    throw namingImage(err, name);
  });
  // Keep the blob cache under its cap (CARRIER_CACHE_MAX_SIZE) between prunes: least recently used blobs go first.
  const cap = options.blobCacheMaxSize ?? cacheMaxSizeFromEnv();
  if (cache && cap !== undefined) await trimBlobCache(cache.root, cap);
  return {
    id: result.id,
    names,
    digest: source.list?.digest ?? source.manifestDigest,
    manifestDigest: source.manifestDigest,
    layers: result.layers.map((l) => ({ digest: l.digest, size: l.size, state: l.state === 'reused' ? 'cached' : l.state === 'exists' ? 'exists' : 'downloaded' })),
  };
}

/**
 * A layer whose bytes were wrong is reported with the image it belongs to, and what to do: bytes that did not match
 * their digest, or ended early, may be a bad transfer; the same failure twice is the registry's copy.
 */
function namingImage(err: unknown, name: string): unknown {
  if (!(err instanceof CarrierError) || err.message.includes(name)) return err;
  if (['CARRIER_DIGEST_MISMATCH', 'CARRIER_BAD_COMPRESSION', 'CARRIER_TRUNCATED'].includes(err.code)) {
    err.message = `${name}: ${err.message}; nothing was stored: pull again, and if it fails the same way the registry holds a damaged blob`;
  } else if (err.code === 'CARRIER_BAD_TAR') {
    err.message = `${name}: ${err.message}`;
  }
  return err;
}

/** A copy event as pull has always reported it. */
function pullEvent(event: CopyEvent, reference: string): PullEvent {
  switch (event.type) {
    case 'resolved': {
      const { source: _source, ...rest } = event;
      return { ...rest, reference };
    }
    case 'layer':
      return { ...event, state: event.state === 'reused' ? 'cached' : event.state === 'copying' ? 'downloading' : event.state };
    case 'progress':
    case 'partial':
      return event;
    case 'committed':
      return { type: 'committed', id: event.id, names: event.names };
  }
}

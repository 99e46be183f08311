// Push and copy: copyImage from the store (push) or from any transport (copy) to any transport, a registry
// included. A registry destination uploads every blob before the manifest, so a failed or cancelled push leaves no tag
// naming a partial image, and nothing in the store changes. With `all`, every image of the source's index is pushed
// by digest first and the index, byte for byte, last.
import { CarrierError } from './errors.js';
import { normalizePullName, parseReference } from './reference.js';
import { RegistryClient, loadCredentials } from './registry/index.js';
import { loadRegistriesConf } from './registries-conf.js';
import { parseManifest } from './oci/manifest.js';
import { BlobCache } from './store/blobs.js';
import { BlobInfoCache } from './registry/blob-info-cache.js';
import type { Store } from './store/store.js';
import { openImageDestination, openImageSource, parseTransportReference, type OpenedSource } from './transports/reference.js';
import { openRegistryManifest } from './transports/registry.js';
import { openStoreSource, type StoreImageSource } from './transports/store-source.js';
import { RegistryDestination, type PushCompression } from './transports/registry-destination.js';
import type { ImageDestination, ImageSource, PendingImageSource, PutLayerResult } from './transports/types.js';
import { copyImage, type CopyEvent } from './copy/copy-image.js';
import { copyFromStore } from './copy/from-store.js';
import { writtenWhole } from './transports/archive-output.js';
import { gpgSigner, readPassphraseFile, sigstoreSigner, type ManifestSigner } from './trust/index.js';
import { join } from 'node:path';

export type { PushCompression, RegistryDestinationOptions } from './transports/registry-destination.js';

/** How to reach registries: podman's --tls-verify, --creds, --authfile and registries.conf. */
export interface RegistryAccess {
  /** false: plain http and untrusted TLS allowed (podman --tls-verify=false). */
  tlsVerify?: boolean;
  /** `user:pass` for every registry (podman --creds). */
  creds?: string;
  /** An auth.json to read instead of the default locations (podman --authfile). */
  authfile?: string;
}

export interface PushOptions extends RegistryAccess {
  signal?: AbortSignal;
  onProgress?: (event: CopyEvent) => void;
  /** Compression of layers the store rebuilds from their tar-split (default gzip). */
  compressionFormat?: PushCompression;
  /**
   * Level of layers compressed on the way (podman's --compression-level): zlib's gzip 0–9, zstd 1–19 (default 3).
   * Without it gzip is ISA-L's deflate at its level 3 where the machine has libisal, else zlib's level 4.
   */
  compressionLevel?: number;
  /**
   * Recompress blobs already compressed otherwise too (podman's --force-compression). Default: true when
   * `compressionFormat` is given, as podman does.
   */
  forceCompression?: boolean;
  /** Every image of an index the source has (copy from a registry); a single image is pushed as it is. */
  all?: boolean;
  /** Layers uploaded at once. Default 3. */
  concurrency?: number;
  /** A registries.conf (default: $CONTAINERS_REGISTRIES_CONF). */
  registriesConf?: string;
  onWarning?: (message: string) => void;
  /** The registry client (default: one made from the options, closed afterwards). */
  registry?: RegistryClient;
  /** Upload cached compressed blobs as they are (default true): a pulled image keeps its digests. */
  blobCache?: boolean;
  blobCacheDir?: string;
  /**
   * Remember which compressed blob each layer became in which registry repository, and look it up before compressing
   * a layer: one the destination repository has is skipped, one another repository of the registry has is mounted,
   * neither compressed again (default true; kept in `blob-info-v1.json` in the blob cache directory).
   */
  blobInfoCache?: boolean;
  /** A blob up to this size goes in one PUT; a longer one is streamed in one PATCH (default 8 MiB). */
  chunkSize?: number;
  /** The policy.json to enforce on the source (default: the one in force, as containers/image finds it). */
  signaturePolicy?: string;
  /** Drop the source's signatures (podman --remove-signatures); kept by default, which needs an unchanged manifest. */
  removeSignatures?: boolean;
  /** Sign with this GPG key of the user's keyring (podman --sign-by FINGERPRINT): simple signing, in the lookaside. */
  signBy?: string;
  /** Sign with this sigstore private key file (podman --sign-by-sigstore-private-key): a `.sig` attachment. */
  signBySigstorePrivateKey?: string;
  /** The signing key's passphrase, in a file (podman --sign-passphrase-file): its first line. */
  signPassphraseFile?: string;
  /** The sigstore key's passphrase itself, when no file is given (podman's CLI asks for it on the terminal). */
  signPassphrase?: string;
}

export interface PushResult {
  /** Image id (hex of the config digest). */
  id: string;
  /** The destination, as a transport reference. */
  destination: string;
  /** The manifest's digest at the destination. */
  manifestDigest: string;
  /** What `--digestfile` records: the index's digest when an index was pushed, else the manifest's. */
  digest: string;
  /** True when the source's manifest bytes were kept (every digest unchanged). */
  manifestReused: boolean;
  layers: PutLayerResult[];
  /** Manifests pushed by digest before the index (with `all`). */
  instances?: string[];
}

const TRANSPORT = /^(docker|containers-storage|oci|oci-archive|docker-archive):/;

/** A destination as podman push takes it: a transport reference, or a registry name. */
export function pushDestination(destination: string): string {
  return TRANSPORT.test(destination) ? destination : `docker://${normalizePullName(destination)}`;
}

/** A registry client with `access`, the options' registries.conf, warnings and signal. */
async function newClient(access: RegistryAccess, options: PushOptions): Promise<RegistryClient> {
  const conf = await loadRegistriesConf(options.registriesConf !== undefined ? { file: options.registriesConf } : {});
  return new RegistryClient({
    ...(access.tlsVerify !== undefined ? { tlsVerify: access.tlsVerify } : {}),
    registriesConf: conf,
    credentials: await loadCredentials({
      ...(access.creds !== undefined ? { creds: access.creds } : {}),
      ...(access.authfile !== undefined ? { authfile: access.authfile } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    }),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Pushes `image` of the store (a name or id, as podman takes it) to `destination`: a registry name
 * (`host/repo:tag`), `docker://…`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]` or `docker-archive:FILE[:NAME:TAG]`.
 * Without a destination the image goes to the registry its name names.
 */
export async function push(store: Store, image: string, destination?: string, options: PushOptions = {}): Promise<PushResult> {
  const run = (): Promise<PushResult> =>
    fromStore(store, image, destination, options, (source) => {
      const dest = destination ?? source.matchedName;
      if (dest === undefined) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `image ${image} was named by id: name a destination`);
      return copyTo({ image: source, close: async () => {} }, pushDestination(dest), options, { ...options, store });
    });
  return intoStore(destination) ? run() : store.withLayersHeld(run);
}

/**
 * Copies `image` of the store with `copy`, its layers' blobs taken from the blob cache where it has them; a cached
 * blob that no longer verifies is evicted and its layer rebuilt from the store (src/copy/from-store.ts).
 */
async function fromStore<T>(store: Store, image: string, destination: string | undefined, options: PushOptions, copy: (source: StoreImageSource) => Promise<T>): Promise<T> {
  const cache = options.blobCache === false ? undefined : new BlobCache(options.blobCacheDir ?? store.config.blobCache);
  const open = async (): Promise<StoreImageSource[]> => [await openStoreSource(store, image, cache ? { blobCache: cache } : {})];
  const to = destination !== undefined && TRANSPORT.test(destination) ? parseTransportReference(destination) : undefined;
  // A docker-archive takes each layer's tar from the store, never a cached blob: nothing to recover from there.
  const recover = to?.transport === 'docker-archive' ? undefined : cache;
  // An oci-archive into a FIFO or a device takes the cached blobs as it writes them: they are checked first.
  const once = to?.transport === 'oci-archive' && !(await writtenWhole(to.path));
  return copyFromStore(open, ([source]) => copy(source!), { ...(recover ? { cache: recover } : {}), once });
}

/**
 * True for a containers-storage destination: the store's commit takes the layers lock itself (holding it shared
 * while it waits for it would deadlock), and it reads no layer it already has.
 */
function intoStore(destination: string | undefined): boolean {
  return destination?.startsWith('containers-storage:') === true;
}

export interface CopyImagesOptions extends PushOptions {
  /** The store, when either side is containers-storage. */
  store?: Store;
  /** The source registry's access (default: the options' own, as for the destination). */
  source?: RegistryAccess;
  /** The destination registry's access (default: the options' own). */
  destination?: RegistryAccess;
  /** A registry source's platform (default: this machine). */
  platform?: { os: string; architecture: string; variant?: string };
  /** Where archives are unpacked and spooled (default the OS temp dir). */
  tmpDir?: string;
}

/**
 * skopeo copy: `source` and `destination` are transport references (`docker://`, `oci:`, `oci-archive:`,
 * `docker-archive:`, `containers-storage:`). Registry to registry streams every blob through without unpacking it,
 * and mounts it when both are in one registry.
 */
export async function copy(source: string, destination: string, options: CopyImagesOptions = {}): Promise<PushResult> {
  const src = parseTransportReference(source);
  parseTransportReference(destination);
  const client = src.transport === 'docker' && !options.registry ? await newClient({ ...options, ...options.source }, options) : undefined;
  try {
    const run = async (): Promise<PushResult> => {
      if (src.transport === 'containers-storage') {
        return fromStore(need(options.store), src.path, destination, options, (image) => copyTo({ image, close: async () => {} }, destination, { ...options, ...options.destination }, options, options.registry));
      }
      const opened = await openImageSource(source, {
        ...(options.registry ?? client ? { registry: (options.registry ?? client)! } : {}),
        ...(options.store ? { store: options.store } : {}),
        ...(options.platform ? { platform: options.platform } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}),
      });
      try {
        return await copyTo(opened, destination, { ...options, ...options.destination }, options, options.registry ?? client);
      } finally {
        await opened.close();
      }
    };
    return src.transport === 'containers-storage' && !intoStore(destination) ? await need(options.store).withLayersHeld(run) : await run();
  } finally {
    await client?.close();
  }
}

function need(store: Store | undefined): Store {
  if (!store) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'containers-storage: needs a store');
  return store;
}

/** Copies an opened source to a destination reference: opens it, copies (every instance with `all`), closes it. */
async function copyTo(opened: OpenedSource, destination: string, access: RegistryAccess, options: CopyImagesOptions, sourceClient?: RegistryClient): Promise<PushResult> {
  const dest = parseTransportReference(destination);
  const own = dest.transport === 'docker' && !options.registry ? await newClient(access, options) : undefined;
  const { signal } = options;
  try {
    const compression = options.compressionFormat;
    const { destination: out, names } = await openImageDestination(destination, {
      ...(options.store ? { store: options.store } : {}),
      ...(options.registry ?? own ? { pushClient: (options.registry ?? own)! } : {}),
      ...(signal ? { signal } : {}),
      ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}),
      ...(dest.transport === 'containers-storage' && options.blobCache !== false && options.store
        ? { storeDestination: { blobCache: new BlobCache(options.blobCacheDir ?? options.store.config.blobCache) } }
        : {}),
      registryDestination: {
        ...(compression ? { compression } : {}),
        forceCompression: options.forceCompression ?? compression !== undefined,
        ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
        ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
        ...(options.store && options.blobInfoCache !== false
          ? { blobInfoCache: new BlobInfoCache(join(options.blobCacheDir ?? options.store.config.blobCache, 'blob-info-v1.json')) }
          : {}),
      },
    });
    try {
      const result = await copyAll(opened.image, out, names, options, sourceClient);
      await out.close();
      return result;
    } catch (err) {
      await out.abort().catch(() => {});
      throw err;
    }
  } finally {
    await own?.close();
  }
}

/** The signers the options ask for (podman's --sign-by and --sign-by-sigstore-private-key). */
async function signersOf(options: PushOptions): Promise<ManifestSigner[]> {
  const signers: ManifestSigner[] = [];
  const passFile = options.signPassphraseFile;
  if (options.signBy !== undefined) signers.push(gpgSigner({ keyId: options.signBy, ...(passFile !== undefined ? { passphraseFile: passFile } : {}) }));
  if (options.signBySigstorePrivateKey !== undefined) {
    const passphrase = passFile !== undefined ? await readPassphraseFile(passFile) : options.signPassphrase !== undefined ? Buffer.from(options.signPassphrase) : undefined;
    signers.push(sigstoreSigner({ privateKeyFile: options.signBySigstorePrivateKey, ...(passphrase ? { passphrase } : {}) }));
  }
  return signers;
}

async function copyAll(image: ImageSource | PendingImageSource, out: ImageDestination, names: string[], options: CopyImagesOptions, sourceClient?: RegistryClient): Promise<PushResult> {
  const signers = await signersOf(options);
  if (signers.length > 0 && !(out instanceof RegistryDestination)) {
    throw new CarrierError('CARRIER_UNSUPPORTED', `signing is supported when pushing to a registry, not to ${out.reference}`);
  }
  const copyOptions = {
    ...(options.removeSignatures ? { removeSignatures: true } : {}),
    ...(signers.length > 0 ? { signers } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.signaturePolicy !== undefined ? { signaturePolicy: options.signaturePolicy } : {}),
    ...(sourceClient && image.transport === 'docker' ? { signatureRegistry: sourceClient } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
  };
  const list = image.list;
  if (!options.all || !list) {
    const r = await copyImage(image, out, { ...copyOptions, names });
    return { id: r.id, destination: out.reference, manifestDigest: r.manifestDigest, digest: r.manifestDigest, manifestReused: r.manifestReused, layers: r.layers };
  }
  if (!(out instanceof RegistryDestination) || image.transport !== 'docker') {
    throw new CarrierError('CARRIER_UNSUPPORTED', `copying every image of an index is supported from a registry to a registry only (${image.reference} → ${out.reference})`);
  }
  const index = parseManifest(list.bytes, list.mediaType);
  if (index.kind !== 'index') throw new CarrierError('CARRIER_INVALID_MANIFEST', `${list.digest} is not an index`);
  const base = parseReference(image.reference.replace(/^docker:\/\//, ''));
  if (!sourceClient) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'copying every image of an index needs the source registry client');
  const instances: string[] = [];
  let first: PushResult | undefined;
  for (const entry of index.manifests) {
    const source =
      entry.digest === image.manifestDigest
        ? image
        : await openRegistryManifest(sourceClient, `${base.domain}/${base.path}@${entry.digest}`, options.signal ? { signal: options.signal } : {});
    const r = await copyImage(source, out, { ...copyOptions, names: [] });
    if (r.manifestDigest !== entry.digest) {
      throw new CarrierError('CARRIER_UNSUPPORTED', `${entry.digest} would change to ${r.manifestDigest} (its layers were recompressed), so the index could not be kept; copy without --all`);
    }
    instances.push(r.manifestDigest);
    first ??= { id: r.id, destination: out.reference, manifestDigest: r.manifestDigest, digest: r.manifestDigest, manifestReused: r.manifestReused, layers: r.layers };
  }
  // podman signs the list too, when it signs its instances.
  const digest = await out.putIndex(list, names, options.signal, signers.length > 0 ? { signers } : {});
  return { ...first!, digest, instances };
}

// Transport references as skopeo and podman write them: `docker://host/repo:tag`, `containers-storage:name`,
// `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME:TAG|:@INDEX]`; and opening one as a
// source or a destination.
import type { Writable } from 'node:stream';
import { CarrierError } from '../errors.js';
import { normalizeLocalName, normalizePullName, parseReference } from '../reference.js';
import type { PlatformWant } from '../oci/manifest.js';
import type { Store } from '../store/store.js';
import { openImageArchive } from './archive.js';
import { openRegistryManifest, type RegistrySource } from './registry.js';
import { openStoreSource } from './store-source.js';
import { StoreDestination, type StoreDestinationOptions } from './store-destination.js';
import { OciLayoutDestination } from './oci-layout-destination.js';
import { DockerArchiveDestination } from './docker-archive-destination.js';
import type { ImageDestination, ImageSource, PendingImageSource, TransportName } from './types.js';
import { RegistryDestination, type RegistryDestinationOptions } from './registry-destination.js';
import { RegistryClient } from '../registry/client.js';

export interface TransportReference {
  transport: TransportName;
  /** The registry name, the store query, or the path of the layout or archive. */
  path: string;
  /** oci, oci-archive: the ref.name; docker-archive: a name:tag. */
  name?: string;
  /** docker-archive: the image's position in manifest.json (`@N`). */
  index?: number;
}

const TRANSPORTS: readonly TransportName[] = ['docker', 'containers-storage', 'oci', 'oci-archive', 'docker-archive'];

/** Parses `transport:rest` (`docker://…` has its two slashes after the colon). */
export function parseTransportReference(s: string): TransportReference {
  const colon = s.indexOf(':');
  const transport = s.slice(0, colon) as TransportName;
  if (colon <= 0 || !TRANSPORTS.includes(transport)) {
    throw new CarrierError('CARRIER_INVALID_REFERENCE', `"${s}" names no transport: use ${TRANSPORTS.map((t) => `${t}:`).join(', ')}`);
  }
  const rest = s.slice(colon + 1);
  if (transport === 'docker') {
    if (!rest.startsWith('//')) throw new CarrierError('CARRIER_INVALID_REFERENCE', `"${s}": a docker reference is docker://NAME`);
    return { transport, path: normalizePullName(rest.slice(2)) };
  }
  if (transport === 'containers-storage') {
    if (rest === '') throw new CarrierError('CARRIER_INVALID_REFERENCE', `"${s}" names no image`);
    return { transport, path: rest };
  }
  // PATH[:REF]: the path ends at the first colon (a path with a colon cannot be named, as in containers/image).
  const sep = rest.indexOf(':');
  const path = sep < 0 ? rest : rest.slice(0, sep);
  const ref = sep < 0 ? undefined : rest.slice(sep + 1);
  if (path === '') throw new CarrierError('CARRIER_INVALID_REFERENCE', `"${s}" names no path`);
  if (ref === undefined || ref === '') return { transport, path };
  if (transport === 'docker-archive' && /^@\d+$/.test(ref)) return { transport, path, index: Number(ref.slice(1)) };
  return { transport, path, name: ref };
}

export interface OpenTransportOptions {
  /** containers-storage: the store. */
  store?: Store;
  /** docker: the registry client. */
  registry?: RegistrySource;
  platform?: PlatformWant;
  signal?: AbortSignal;
  tmpDir?: string;
  /** containers-storage destination: its options (blob cache, sync). */
  storeDestination?: StoreDestinationOptions;
  /** oci, oci-archive destinations: compression of rebuilt layers. */
  compression?: 'gzip' | 'none';
  /** docker destination: the client to push with (default: `registry`, when that is a RegistryClient). */
  pushClient?: RegistryClient;
  /** docker destination: its options (compression of rebuilt layers, chunk size). */
  registryDestination?: RegistryDestinationOptions;
}

/** A source and what must be closed once it has been copied (an archive's file, a decompressed temp copy). */
export interface OpenedSource {
  /** A registry image is pending: its config is fetched when copyImage resolves it, after the signature policy. */
  image: ImageSource | PendingImageSource;
  close(): Promise<void>;
}

function need<T>(value: T | undefined, what: string, ref: string): T {
  if (value === undefined) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `${ref} needs ${what}`);
  return value;
}

/** Opens a transport reference as an image source. */
export async function openImageSource(reference: string, options: OpenTransportOptions = {}): Promise<OpenedSource> {
  const r = parseTransportReference(reference);
  const signal = options.signal ? { signal: options.signal } : {};
  if (r.transport === 'docker') {
    const image = await openRegistryManifest(need(options.registry, 'a registry client', reference), r.path, {
      ...signal,
      ...(options.platform ? { platform: options.platform } : {}),
    });
    return { image, close: async () => {} };
  }
  if (r.transport === 'containers-storage') {
    const image = await openStoreSource(need(options.store, 'a store', reference), r.path);
    return { image, close: async () => {} };
  }
  const archive = await openImageArchive(r.path, {
    ...signal,
    ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}),
    ...(options.platform ? { platform: options.platform } : {}),
  });
  try {
    const want = r.transport === 'oci' ? 'oci-dir' : r.transport;
    if (archive.format !== want) throw new CarrierError('CARRIER_INVALID_ARCHIVE', `${r.path} is an ${archive.format}, not an ${r.transport}`);
    const image =
      r.index !== undefined
        ? archive.images[r.index]
        : r.name !== undefined
          ? archive.images.find((i) => i.names.includes(r.name!))
          : archive.images.length === 1
            ? archive.images[0]
            : undefined;
    if (!image) {
      const what = r.index !== undefined ? `no image @${r.index}` : r.name !== undefined ? `no image named ${r.name}` : `${archive.images.length} images; name one`;
      throw new CarrierError('CARRIER_NOT_FOUND', `${reference}: ${what}`);
    }
    return { image, close: () => archive.close() };
  } catch (err) {
    await archive.close();
    throw err;
  }
}

/**
 * Opens a transport reference as a destination, with the names the reference gives the image (an oci ref.name, a
 * docker-archive name:tag). Close it after the copy (an archive is written then).
 */
export async function openImageDestination(reference: string, options: OpenTransportOptions & { output?: Writable } = {}): Promise<{ destination: ImageDestination; names: string[] }> {
  const r = parseTransportReference(reference);
  const common = { ...(options.signal ? { signal: options.signal } : {}), ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}) };
  switch (r.transport) {
    case 'containers-storage':
      return { destination: new StoreDestination(need(options.store, 'a store', reference), options.storeDestination), names: [normalizeLocalName(r.path)] };
    case 'oci':
    case 'oci-archive': {
      const destination = await OciLayoutDestination.open(r.transport, r.path, { ...common, ...(options.compression ? { compression: options.compression } : {}) });
      return { destination, names: r.name !== undefined ? [r.name] : [] };
    }
    case 'docker-archive':
      return { destination: new DockerArchiveDestination(r.path, common), names: r.name !== undefined ? [r.name] : [] };
    case 'docker': {
      const client = options.pushClient ?? (options.registry instanceof RegistryClient ? options.registry : undefined);
      const ref = parseReference(r.path);
      const destination = new RegistryDestination(need(client, 'a registry client', reference), ref, {
        ...(options.signal ? { signal: options.signal } : {}),
        ...options.registryDestination,
      });
      return { destination, names: ref.digest ? [] : [`${ref.domain}/${ref.path}:${ref.tag ?? 'latest'}`] };
    }
  }
}

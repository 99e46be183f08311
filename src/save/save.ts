/**
 * `podman save` as a library call: images of a store written as a docker-archive, an oci-archive or an OCI layout
 * directory, which `podman load` / `carrier load` take back with the same image ids.
 *
 * What podman 4.3.1 writes (observed with `podman save` on a private overlay store):
 *   docker-archive  `<diff_id hex>.tar` (the uncompressed layer), `<id>.json` (the config), per layer the legacy
 *                   `<v1 id>/{layer.tar -> ../<diff_id hex>.tar, VERSION, json}`, then `manifest.json`
 *                   ([{Config, RepoTags, Layers}]) and `repositories`; every entry mode 0444 (the link 0), uid/gid 0,
 *                   mtime 0, ustar. An image saved by id has RepoTags []; `-m` puts several images in one archive.
 *   oci-archive     a tar of an OCI layout: `blobs/`, `blobs/sha256/…`, `index.json`, `oci-layout`. Layers are
 *   oci-dir         gzip-compressed again and the manifest rewritten with OCI media types (so its digest changes);
 *                   index.json names the image by the full name it was asked for
 *                   (`org.opencontainers.image.ref.name: localhost/foo:1`), or not at all when asked by id.
 *
 * Carrier does the same, with two differences: when the blob cache holds every compressed layer blob of the stored
 * manifest, those blobs and the stored manifest bytes are written as they are (so the manifest digest survives the
 * round trip); and the legacy v1 ids of a docker-archive are Carrier's own (no loader reads them; manifest.json is
 * what `podman load` and `docker load` use). Layers come from the store's tar-split, byte-exact, and each is checked
 * against its diff_id and size as it is written.
 */
import { createHash } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CarrierError, abortError } from '../errors.js';
import type { ImageInfo, Store } from '../store/store.js';
import { findImage } from '../store/lookup.js';
import { BlobCache } from '../store/blobs.js';
import { layerChain, type ChainLayer } from '../checkout/checkout.js';
import { parseManifest, type ImageManifest } from '../oci/manifest.js';
import { sha256Digest } from '../oci/digest.js';
import * as MT from '../oci/mediatypes.js';
import { END_OF_ARCHIVE, padding, tarHeader, type TarHeaderFields } from './tar.js';

export type SaveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface SaveOptions {
  /** Default `docker-archive`. */
  format?: SaveFormat;
  /** A file (archives; created or truncated, removed again on failure), a writable stream (archives), or a new or empty directory (oci-dir). */
  output: string | Writable;
  /** OCI formats: how layers not found in the blob cache are written. Default `gzip`, as podman does. */
  compression?: 'gzip' | 'none';
  /** OCI formats: reuse compressed blobs from the blob cache (default true); a path picks another cache. */
  blobCache?: boolean | string;
  /** Where recompressed layers wait until their size is known (default the OS temp dir). */
  tmpDir?: string;
  signal?: AbortSignal;
}

export interface SavedImage {
  id: string;
  /** The names the archive gives the image (RepoTags, or the ref.name annotation). */
  names: string[];
  /** OCI formats: the digest of the manifest written. */
  manifestDigest?: string;
  /** OCI formats: true when the stored manifest was written as it is (all its blobs came from the blob cache). */
  manifestReused?: boolean;
}

export interface SaveResult {
  format: SaveFormat;
  images: SavedImage[];
  /** Layers written (each once), with where their bytes came from. */
  layers: { diffID: string; digest: string; size: number; source: 'store' | 'blob-cache' | 'recompressed' }[];
  /** Bytes written (archives: the tar's size; oci-dir: the files'). */
  bytes: number;
}

interface Resolved {
  info: ImageInfo;
  /** The stored name the query matched, when it matched by name. */
  name?: string;
  config: Buffer;
  chain: ChainLayer[];
}

/** A blob to write: bytes in memory, a file, or a layer rebuilt from the store. */
type BlobSource =
  | { kind: 'bytes'; data: Buffer }
  | { kind: 'file'; path: string }
  | { kind: 'layer'; layer: ChainLayer };

interface Blob {
  digest: string;
  size: number;
  source: BlobSource;
}

const ARCHIVE_MODE = 0o444;

function sha256Hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

/** JSON with object keys sorted, as Go marshals a map. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

async function resolve(store: Store, query: string): Promise<Resolved> {
  const info = await store.requireImage(query);
  // The name the query matched: the one name that finds this image on its own (none when it matched by id).
  const name = info.names.find((n) => findImage([{ id: '', digests: [], names: [n] }], query) !== undefined);
  const config = await store.imageBigData(info.id, `sha256:${info.id}`);
  const chain = await layerChain(store, info.topLayer);
  let diffIDs: unknown;
  try {
    diffIDs = (JSON.parse(config.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
  } catch {
    diffIDs = undefined;
  }
  if (Array.isArray(diffIDs)) {
    const have = chain.map((l) => l.diffID);
    if (have.length !== diffIDs.length || have.some((d, i) => d !== diffIDs[i])) {
      throw new CarrierError('CARRIER_CORRUPT_STORE', `image ${info.id.slice(0, 12)}: its layers (${have.join(', ')}) do not match its config's diff_ids`);
    }
  }
  for (const l of chain) {
    if (l.diffID === undefined) throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${l.id} has no diff digest`);
  }
  return { info, ...(name !== undefined ? { name } : {}), config, chain };
}

/** A layer's original tar from the store, checked against its diff_id and size while it is read. */
async function* layerChunks(store: Store, layer: ChainLayer, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const stream = await store.exportLayer(layer.id);
  const hash = createHash('sha256');
  let n = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw abortError(signal);
      n += chunk.length;
      if (layer.diffSize !== undefined && n > layer.diffSize) break;
      hash.update(chunk);
      yield chunk;
    }
  } finally {
    stream.destroy();
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if ((layer.diffSize !== undefined && n !== layer.diffSize) || digest !== layer.diffID) {
    throw new CarrierError('CARRIER_DIGEST_MISMATCH', `layer ${layer.id} rebuilt as ${n} bytes with ${digest}, expected ${layer.diffSize ?? '?'} bytes with ${layer.diffID}`);
  }
}

async function* blobChunks(store: Store, blob: Blob, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const s = blob.source;
  if (s.kind === 'bytes') {
    yield s.data;
    return;
  }
  if (s.kind === 'layer') {
    yield* layerChunks(store, s.layer, signal);
    return;
  }
  const hash = createHash('sha256');
  let n = 0;
  const fh = await open(s.path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for await (const chunk of fh.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw abortError(signal);
      n += chunk.length;
      if (n > blob.size) break;
      hash.update(chunk);
      yield chunk;
    }
  } finally {
    await fh.close();
  }
  if (n !== blob.size || `sha256:${hash.digest('hex')}` !== blob.digest) {
    throw new CarrierError('CARRIER_DIGEST_MISMATCH', `blob ${blob.digest} (${s.path}) changed while it was written`);
  }
}

/** A layer with no known size (never the case for a committed layer) is spooled to learn it. */
async function sizedLayer(store: Store, layer: ChainLayer, spool: () => Promise<string>, signal?: AbortSignal): Promise<Blob> {
  if (layer.diffSize !== undefined) return { digest: layer.diffID!, size: layer.diffSize, source: { kind: 'layer', layer } };
  const file = join(await spool(), `${hexOf(layer.diffID!)}.tar`);
  await pipeline(Readable.from(layerChunks(store, layer, signal)), createWriteStream(file, { mode: 0o600 }));
  return { digest: layer.diffID!, size: (await stat(file)).size, source: { kind: 'file', path: file } };
}

// ---- docker-archive --------------------------------------------------------------------------------------------

interface ArchiveEntry {
  header: TarHeaderFields;
  blob?: Blob;
}

async function dockerArchiveEntries(store: Store, images: Resolved[], spool: () => Promise<string>, result: SaveResult, signal?: AbortSignal): Promise<ArchiveEntry[]> {
  const file = (name: string, size: number): TarHeaderFields => ({ name, type: 'file', mode: ARCHIVE_MODE, size, mtime: 0 });
  const layerFiles: ArchiveEntry[] = [];
  const configs: ArchiveEntry[] = [];
  const legacy: ArchiveEntry[] = [];
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const seen = new Set<string>();
  // One manifest.json entry per image, names merged (as podman does when two names point at one image).
  const byId = new Map<string, { r: Resolved; tags: string[] }>();
  for (const r of images) {
    const e = byId.get(r.info.id) ?? { r, tags: [] };
    if (r.name !== undefined && !e.tags.includes(r.name)) e.tags.push(r.name);
    byId.set(r.info.id, e);
  }
  for (const { r, tags } of byId.values()) {
    const layers: string[] = [];
    let parentV1: string | undefined;
    for (const [i, l] of r.chain.entries()) {
      const hex = hexOf(l.diffID!);
      const name = `${hex}.tar`;
      layers.push(name);
      if (!seen.has(name)) {
        seen.add(name);
        const blob = await sizedLayer(store, l, spool, signal);
        layerFiles.push({ header: file(name, blob.size), blob });
        result.layers.push({ diffID: l.diffID!, digest: l.diffID!, size: blob.size, source: 'store' });
      }
      // Legacy (docker < 1.10) metadata: a v1 id per layer, chained through the parent's.
      const v1 = sha256Hex(`${parentV1 ?? ''}\n${l.diffID!}\n${i === r.chain.length - 1 ? r.info.id : ''}`);
      if (!seen.has(v1)) {
        seen.add(v1);
        const json: Record<string, unknown> = { id: v1, ...(parentV1 !== undefined ? { parent: parentV1 } : {}) };
        if (i === r.chain.length - 1) {
          let cfg: Record<string, unknown> = {};
          try {
            cfg = JSON.parse(r.config.toString('utf8')) as Record<string, unknown>;
          } catch {
            /* not JSON: no fields to copy */
          }
          for (const k of ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os']) json[k] = cfg[k] ?? null;
        }
        const jsonBytes = Buffer.from(sortedJson(json));
        legacy.push(
          { header: { name: `${v1}/layer.tar`, type: 'symlink', mode: 0, mtime: 0, linkname: `../${name}` } },
          { header: file(`${v1}/VERSION`, 3), blob: { digest: '', size: 3, source: { kind: 'bytes', data: Buffer.from('1.0') } } },
          { header: file(`${v1}/json`, jsonBytes.length), blob: { digest: '', size: jsonBytes.length, source: { kind: 'bytes', data: jsonBytes } } },
        );
      }
      parentV1 = v1;
    }
    const configName = `${r.info.id}.json`;
    if (!seen.has(configName)) {
      seen.add(configName);
      configs.push({ header: file(configName, r.config.length), blob: { digest: '', size: r.config.length, source: { kind: 'bytes', data: r.config } } });
    }
    manifest.push({ Config: configName, RepoTags: tags, Layers: layers });
    for (const t of tags) {
      const colon = t.lastIndexOf(':');
      const repo = t.slice(0, colon);
      (repositories[repo] ??= {})[t.slice(colon + 1)] = parentV1 ?? '';
    }
    result.images.push({ id: r.info.id, names: tags });
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const repoBytes = Buffer.from(JSON.stringify(repositories));
  return [
    ...layerFiles,
    ...configs,
    ...legacy,
    { header: file('manifest.json', manifestBytes.length), blob: { digest: '', size: manifestBytes.length, source: { kind: 'bytes', data: manifestBytes } } },
    { header: file('repositories', repoBytes.length), blob: { digest: '', size: repoBytes.length, source: { kind: 'bytes', data: repoBytes } } },
  ];
}

// ---- OCI ---------------------------------------------------------------------------------------------------------

interface OciLayout {
  blobs: Blob[];
  index: Buffer;
}

async function gzipLayer(store: Store, layer: ChainLayer, spool: () => Promise<string>, signal?: AbortSignal): Promise<Blob> {
  const dir = await spool();
  const tmp = join(dir, `${hexOf(layer.diffID!)}.tar.gz`);
  const hash = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(Readable.from(layerChunks(store, layer, signal)), createGzip(), count, createWriteStream(tmp, { mode: 0o600 }));
  return { digest: `sha256:${hash.digest('hex')}`, size, source: { kind: 'file', path: tmp } };
}

function ociLayerType(compression: 'gzip' | 'zstd' | 'none'): string {
  return compression === 'gzip' ? MT.OCI_LAYER_GZIP : compression === 'zstd' ? MT.OCI_LAYER_ZSTD : MT.OCI_LAYER_TAR;
}

async function ociLayout(store: Store, images: Resolved[], options: SaveOptions, spool: () => Promise<string>, result: SaveResult): Promise<OciLayout> {
  const cache = options.blobCache === false ? undefined : new BlobCache(typeof options.blobCache === 'string' ? options.blobCache : store.config.blobCache);
  const blobs = new Map<string, Blob>();
  const add = (b: Blob): void => {
    if (!blobs.has(b.digest)) blobs.set(b.digest, b);
  };
  const entries: Record<string, unknown>[] = [];
  const layerMemo = new Map<string, { blob: Blob; mediaType: string; source: SaveResult['layers'][number]['source'] }>();
  for (const r of images) {
    let stored: ImageManifest | undefined;
    let storedBytes: Buffer | undefined;
    try {
      storedBytes = await store.imageBigData(r.info.id, 'manifest');
      const m = parseManifest(storedBytes);
      if (m.kind === 'manifest' && m.layers.length === r.chain.length && hexOf(m.config.digest) === r.info.id) stored = m;
    } catch {
      stored = undefined;
    }
    // Compressed blobs of the stored manifest, where the cache has them.
    const cached: (string | undefined)[] = [];
    for (const [i] of r.chain.entries()) {
      const d = stored?.layers[i];
      cached.push(d && cache && MT.layerCompression(d.mediaType) !== undefined ? await cache.lookup(d.digest, d.size) : undefined);
    }
    const configBlob: Blob = { digest: `sha256:${r.info.id}`, size: r.config.length, source: { kind: 'bytes', data: r.config } };
    add(configBlob);
    let manifestBytes: Buffer;
    let reused = false;
    if (stored && storedBytes && stored.mediaType === MT.OCI_MANIFEST && cached.every((p) => p !== undefined)) {
      manifestBytes = storedBytes;
      reused = true;
      for (const [i, l] of r.chain.entries()) {
        const d = stored.layers[i]!;
        add({ digest: d.digest, size: d.size, source: { kind: 'file', path: cached[i]! } });
        if (!layerMemo.has(l.diffID!)) {
          layerMemo.set(l.diffID!, { blob: blobs.get(d.digest)!, mediaType: d.mediaType, source: 'blob-cache' });
          result.layers.push({ diffID: l.diffID!, digest: d.digest, size: d.size, source: 'blob-cache' });
        }
      }
    } else {
      const layers: Record<string, unknown>[] = [];
      for (const [i, l] of r.chain.entries()) {
        let memo = layerMemo.get(l.diffID!);
        if (!memo) {
          const d = stored?.layers[i];
          if (d && cached[i] !== undefined) {
            memo = { blob: { digest: d.digest, size: d.size, source: { kind: 'file', path: cached[i]! } }, mediaType: ociLayerType(MT.layerCompression(d.mediaType)!), source: 'blob-cache' };
          } else if ((options.compression ?? 'gzip') === 'gzip') {
            memo = { blob: await gzipLayer(store, l, spool, options.signal), mediaType: MT.OCI_LAYER_GZIP, source: 'recompressed' };
          } else {
            memo = { blob: await sizedLayer(store, l, spool, options.signal), mediaType: MT.OCI_LAYER_TAR, source: 'store' };
          }
          layerMemo.set(l.diffID!, memo);
          result.layers.push({ diffID: l.diffID!, digest: memo.blob.digest, size: memo.blob.size, source: memo.source });
        }
        add(memo.blob);
        layers.push({ mediaType: memo.mediaType, digest: memo.blob.digest, size: memo.blob.size });
      }
      manifestBytes = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.OCI_MANIFEST,
        config: { mediaType: MT.OCI_CONFIG, digest: configBlob.digest, size: configBlob.size },
        layers,
        ...(stored?.annotations ? { annotations: stored.annotations } : {}),
      }));
    }
    const manifestDigest = sha256Digest(manifestBytes);
    add({ digest: manifestDigest, size: manifestBytes.length, source: { kind: 'bytes', data: manifestBytes } });
    entries.push({
      mediaType: MT.OCI_MANIFEST,
      digest: manifestDigest,
      size: manifestBytes.length,
      ...(r.name !== undefined ? { annotations: { 'org.opencontainers.image.ref.name': r.name } } : {}),
    });
    result.images.push({ id: r.info.id, names: r.name !== undefined ? [r.name] : [], manifestDigest, manifestReused: reused });
  }
  return { blobs: [...blobs.values()], index: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: entries })) };
}

const OCI_LAYOUT_FILE = Buffer.from('{"imageLayoutVersion": "1.0.0"}');

function ociArchiveEntries(layout: OciLayout): ArchiveEntry[] {
  const mtime = Math.floor(Date.now() / 1000);
  const base = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime };
  const bytes = (name: string, data: Buffer): ArchiveEntry => ({
    header: { ...base, name, type: 'file', mode: 0o644, size: data.length },
    blob: { digest: '', size: data.length, source: { kind: 'bytes', data } },
  });
  return [
    { header: { ...base, name: 'blobs/', type: 'dir', mode: 0o755 } },
    { header: { ...base, name: 'blobs/sha256/', type: 'dir', mode: 0o755 } },
    ...[...layout.blobs].sort((a, b) => (a.digest < b.digest ? -1 : 1)).map((b) => ({
      header: { ...base, name: `blobs/sha256/${hexOf(b.digest)}`, type: 'file' as const, mode: 0o644, size: b.size },
      blob: b,
    })),
    bytes('index.json', layout.index),
    bytes('oci-layout', OCI_LAYOUT_FILE),
  ];
}

async function* archiveChunks(store: Store, entries: ArchiveEntry[], counter: { bytes: number }, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const e of entries) {
    if (signal?.aborted) throw abortError(signal);
    const h = tarHeader(e.header);
    counter.bytes += h.length;
    yield h;
    if (e.blob) {
      for await (const chunk of blobChunks(store, e.blob, signal)) {
        counter.bytes += chunk.length;
        yield chunk;
      }
      const pad = padding(e.blob.size);
      counter.bytes += pad.length;
      if (pad.length > 0) yield pad;
    }
  }
  counter.bytes += END_OF_ARCHIVE.length;
  yield END_OF_ARCHIVE;
}

async function writeOciDir(store: Store, layout: OciLayout, dir: string, signal?: AbortSignal): Promise<number> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if ((await readdir(dir)).length > 0) {
    throw new CarrierError('CARRIER_EXISTS', `${dir} is not empty; oci-dir needs a new or empty directory`, { path: dir });
  }
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true, mode: 0o755 });
  let bytes = 0;
  for (const b of layout.blobs) {
    const final = join(blobDir, hexOf(b.digest));
    const tmp = `${final}.tmp`;
    await pipeline(Readable.from(blobChunks(store, b, signal)), createWriteStream(tmp, { mode: 0o644, flags: 'wx' }));
    await rename(tmp, final);
    bytes += b.size;
  }
  await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT_FILE, { mode: 0o644 });
  await writeFile(join(dir, 'index.json'), layout.index, { mode: 0o644 });
  return bytes + OCI_LAYOUT_FILE.length + layout.index.length;
}

/**
 * Writes images of `store` (each query as `podman save` takes it: name, short name, id or id prefix) in `format`.
 * docker-archive takes several images (podman's `-m`); the OCI formats put one index.json entry per image.
 */
export async function saveImages(store: Store, queries: readonly string[], options: SaveOptions): Promise<SaveResult> {
  // Layers stay put while they are rebuilt: an rmi elsewhere waits for the save.
  return store.withLayersHeld(() => saveImagesHeld(store, queries, options));
}

async function saveImagesHeld(store: Store, queries: readonly string[], options: SaveOptions): Promise<SaveResult> {
  const format = options.format ?? 'docker-archive';
  if (!['docker-archive', 'oci-archive', 'oci-dir'].includes(format)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown save format '${format}': use docker-archive, oci-archive or oci-dir`);
  }
  if (queries.length === 0) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'no images to save');
  if (format === 'oci-dir' && typeof options.output !== 'string') {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'oci-dir needs a directory path as output');
  }
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const images: Resolved[] = [];
  for (const q of queries) images.push(await resolve(store, q));
  const result: SaveResult = { format, images: [], layers: [], bytes: 0 };
  let spoolDir: string | undefined;
  const spool = async (): Promise<string> => (spoolDir ??= await mkdtemp(join(options.tmpDir ?? tmpdir(), 'carrier-save-')));
  try {
    if (format === 'oci-dir') {
      const layout = await ociLayout(store, images, options, spool, result);
      const dir = options.output as string;
      const existed = await stat(dir).then(() => true, () => false);
      try {
        result.bytes = await writeOciDir(store, layout, dir, signal);
      } catch (err) {
        if (!(err instanceof CarrierError && err.code === 'CARRIER_EXISTS')) {
          if (existed) {
            for (const n of await readdir(dir).catch(() => [] as string[])) await rm(join(dir, n), { recursive: true, force: true });
          } else {
            await rm(dir, { recursive: true, force: true });
          }
        }
        throw err;
      }
      return result;
    }
    const entries = format === 'docker-archive'
      ? await dockerArchiveEntries(store, images, spool, result, signal)
      : ociArchiveEntries(await ociLayout(store, images, options, spool, result));
    const counter = { bytes: 0 };
    const source = Readable.from(archiveChunks(store, entries, counter, signal));
    if (typeof options.output === 'string') {
      const file = options.output;
      const fh = await open(file, 'w', 0o644);
      try {
        await pipeline(source, fh.createWriteStream());
      } catch (err) {
        await unlink(file).catch(() => {});
        throw err;
      } finally {
        await fh.close().catch(() => {});
      }
    } else {
      await pipeline(source, options.output);
    }
    result.bytes = counter.bytes;
    return result;
  } finally {
    if (spoolDir !== undefined) await rm(spoolDir, { recursive: true, force: true });
  }
}

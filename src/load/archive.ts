import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError, abortError } from '../errors.js';
import { digestMatches, parseDigest, sha256Digest } from '../oci/digest.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER_TAR,
  DOCKER_MANIFEST,
  OCI_INDEX,
  isLayerMediaType,
  manifestKind,
} from '../oci/mediatypes.js';
import {
  MAX_DOCUMENT_BYTES,
  choosePlatform,
  hostPlatform,
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type PlatformWant,
} from '../oci/manifest.js';
import { TarIndex, looksLikeTarHeader, normaliseEntryName, type TarEntry } from './tarindex.js';
import { compressionError, decompressor, sniffCompression } from './compression.js';

export interface SourceLayer {
  /** Digest of the bytes `open()` yields (for docker-archive layers: the DiffID, see {@link openImageArchive}). */
  digest: string;
  /** Length of the bytes `open()` yields. */
  size: number;
  /** Media type of the bytes `open()` yields. */
  mediaType: string;
  /** The config's rootfs.diff_ids entry for this layer. */
  diffID: string;
  /** A fresh stream of the layer blob each call; nothing is verified here (applyLayer checks digest, size, diffID). */
  open(): Promise<Readable>;
}

export interface SourceImage {
  /** Names as written in the archive (RepoTags, or the OCI ref.name annotation), not normalised. */
  names: string[];
  /** The exact manifest bytes to record, their digest and media type. */
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
  /** The config bytes (already hashed and compared with the digest the archive names). Image id = its hex. */
  config: Buffer;
  configDigest: string;
  /** Base layer first; layers[i].diffID = config rootfs.diff_ids[i]. */
  layers: SourceLayer[];
}

export type ArchiveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface ImageArchive {
  format: ArchiveFormat;
  images: SourceImage[];
  /** Closes the archive and removes the temp file of a compressed archive. Layer streams cannot be opened after. */
  close(): Promise<void>;
}

export interface OpenImageArchiveOptions {
  signal?: AbortSignal;
  /** Where a compressed archive is decompressed to (default os.tmpdir()). */
  tmpDir?: string;
  /** Platform picked from a multi-platform index inside an OCI layout (default: this host's). */
  platform?: PlatformWant;
}

const SMALL_FILE_CAP = 64 * 1024;
const MAX_INDEX_DEPTH = 4;

function invalidArchive(message: string, p?: string): CarrierError {
  return new CarrierError('CARRIER_INVALID_ARCHIVE', message, p === undefined ? {} : { path: p });
}

// ---------------------------------------------------------------------------------------------------------------
// Where the files of an archive come from: a tar (indexed, read in place) or a directory (OCI layout).

interface FileInfo {
  size: number;
  /** Reads the first `n` bytes (or fewer if the file is shorter). */
  head(n: number): Promise<Buffer>;
  open(): Promise<Readable>;
}

interface FileSource {
  /** Undefined when the file is absent. */
  stat(name: string): Promise<FileInfo | undefined>;
  close(): Promise<void>;
}

async function readAll(info: FileInfo, name: string, cap: number): Promise<Buffer> {
  if (info.size > cap) {
    throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `'${name}' is ${info.size} bytes, over the ${cap}-byte cap`, { path: name });
  }
  const buf = await info.head(info.size);
  if (buf.length !== info.size) throw new CarrierError('CARRIER_TRUNCATED', `'${name}' is shorter than its recorded size`, { path: name });
  return buf;
}

async function readRequired(src: FileSource, name: string, cap: number, what: string): Promise<Buffer> {
  const info = await src.stat(name);
  if (!info) throw invalidArchive(`${what} '${name}' is not in the archive`, name);
  return readAll(info, name, cap);
}

class TarSource implements FileSource {
  private closed = false;
  constructor(
    private readonly file: string,
    private readonly fh: FileHandle,
    readonly index: TarIndex,
  ) {}

  has(name: string): boolean {
    return this.index.entries.has(name);
  }

  async stat(name: string): Promise<FileInfo | undefined> {
    const e: TarEntry | undefined = this.index.resolveFile(name);
    if (!e) return undefined;
    return {
      size: e.size,
      head: async (n) => {
        this.checkOpen();
        const buf = Buffer.alloc(Math.min(n, e.size));
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await this.fh.read(buf, got, buf.length - got, e.offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      },
      open: async () => {
        this.checkOpen();
        if (e.size === 0) return Readable.from([]);
        return fs.createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
      },
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'the image archive is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/**
 * Files of an OCI layout directory. A file is opened with O_NOFOLLOW (a symlinked blob is refused) and its
 * parent's real path must be the expected directory inside the layout (a symlinked `blobs/` is refused).
 */
class DirSource implements FileSource {
  private closed = false;
  private constructor(
    private readonly root: string,
    private readonly realRoot: string,
  ) {}

  static async create(root: string): Promise<DirSource> {
    return new DirSource(root, await fsp.realpath(root));
  }

  private async openSafe(name: string): Promise<FileHandle | undefined> {
    if (this.closed) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'the image archive is closed');
    const rel = normaliseEntryName(name, 0);
    const full = path.join(this.root, rel);
    let fh: FileHandle;
    try {
      fh = await fsp.open(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') throw new CarrierError('CARRIER_UNSAFE_PATH', `'${rel}' in the OCI layout is a symlink`, { path: full, cause: err });
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw invalidArchive(`'${rel}' in the OCI layout is not a regular file`, full);
      const parent = await fsp.realpath(path.dirname(full));
      const wantParent = path.join(this.realRoot, path.posix.dirname(rel));
      if (parent !== wantParent) {
        throw new CarrierError('CARRIER_UNSAFE_PATH', `'${rel}' resolves outside the OCI layout (${parent})`, { path: full });
      }
      return fh;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async stat(name: string): Promise<FileInfo | undefined> {
    const fh = await this.openSafe(name);
    if (!fh) return undefined;
    let size: number;
    try {
      size = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
    return {
      size,
      head: async (n) => {
        const h = await this.openSafe(name);
        if (!h) throw invalidArchive(`'${name}' disappeared from the OCI layout`, name);
        try {
          const buf = Buffer.alloc(Math.min(n, size));
          let got = 0;
          while (got < buf.length) {
            const { bytesRead } = await h.read(buf, got, buf.length - got, got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return buf.subarray(0, got);
        } finally {
          await h.close();
        }
      },
      open: async () => {
        const h = await this.openSafe(name);
        if (!h) throw invalidArchive(`'${name}' disappeared from the OCI layout`, name);
        return h.createReadStream({ highWaterMark: 1 << 20 });
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// OCI layout (directory or tar)

function blobPath(digest: string): string {
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

async function readOciLayout(src: FileSource, opts: OpenImageArchiveOptions): Promise<SourceImage[]> {
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
  const images: SourceImage[] = [];
  const byDigest = new Map<string, SourceImage>();

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
      if (name !== undefined && !known.names.includes(name)) known.names.push(name);
      continue;
    }
    const manifest = parseManifest(found.bytes, found.desc.mediaType);
    if (manifest.kind !== 'manifest') throw new CarrierError('CARRIER_INVALID_MANIFEST', 'expected an image manifest');
    const config = await readBlob(src, manifest.config, 'config', MAX_DOCUMENT_BYTES);
    const diffIDs = parseImageConfig(config).rootfs.diff_ids;
    if (diffIDs.length !== manifest.layers.length) {
      throw new CarrierError(
        'CARRIER_INVALID_MANIFEST',
        `manifest ${found.desc.digest} has ${manifest.layers.length} layers but its config lists ${diffIDs.length} diff_ids`,
      );
    }
    const layers: SourceLayer[] = [];
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
    const image: SourceImage = {
      names: name === undefined ? [] : [name],
      manifest: found.bytes,
      manifestDigest: found.desc.digest,
      manifestMediaType: manifest.mediaType,
      config,
      configDigest: manifest.config.digest,
      layers,
    };
    byDigest.set(found.desc.digest, image);
    images.push(image);
  }
  if (images.length === 0) throw invalidArchive('the OCI layout has no image manifests');
  return images;
}

// ---------------------------------------------------------------------------------------------------------------
// docker-archive

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
    await pipeline(await info.open(), await decompressor(kind), counter, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw compressionError(kind, err);
  }
  return n;
}

async function readDockerArchive(src: TarSource, opts: OpenImageArchiveOptions): Promise<SourceImage[]> {
  const items = parseDockerManifest(await readRequired(src, 'manifest.json', MAX_DOCUMENT_BYTES, 'manifest'));
  const images: SourceImage[] = [];
  const byDigest = new Map<string, SourceImage>();
  for (const item of items) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const configName = normaliseEntryName(item.Config, 0);
    const config = await readRequired(src, configName, MAX_DOCUMENT_BYTES, 'config');
    const configDigest = sha256Digest(config);
    const promised = digestFromName(configName);
    if (promised !== undefined && promised !== configDigest) {
      throw new CarrierError('CARRIER_DIGEST_MISMATCH', `config '${configName}' hashes to ${configDigest}`, { path: configName });
    }
    const diffIDs = parseImageConfig(config).rootfs.diff_ids;
    if (diffIDs.length !== item.Layers.length) {
      throw new CarrierError(
        'CARRIER_INVALID_MANIFEST',
        `image ${configDigest} lists ${item.Layers.length} layer files but its config has ${diffIDs.length} diff_ids`,
      );
    }
    const layers: SourceLayer[] = [];
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
        layers.push({ digest: diffID, size: info.size, mediaType: DOCKER_LAYER_TAR, diffID, open: () => info.open() });
      } else {
        // As containers/image does: serve the decompressed tar, addressed by its DiffID; its size takes one pass.
        const size = await countDecompressed(info, kind, opts.signal);
        const open = async (): Promise<Readable> => {
          const out = await decompressor(kind);
          const input = await info.open();
          input.on('error', (err) => out.destroy(err));
          out.on('close', () => input.destroy());
          return input.pipe(out);
        };
        layers.push({ digest: diffID, size, mediaType: DOCKER_LAYER_TAR, diffID, open });
      }
    }
    const manifest = dockerArchiveManifest(configDigest, config.length, layers);
    const manifestDigest = sha256Digest(manifest);
    const known = byDigest.get(manifestDigest);
    if (known) {
      for (const t of item.RepoTags) if (!known.names.includes(t)) known.names.push(t);
      continue;
    }
    const image: SourceImage = {
      names: [...item.RepoTags],
      manifest,
      manifestDigest,
      manifestMediaType: DOCKER_MANIFEST,
      config,
      configDigest,
      layers,
    };
    byDigest.set(manifestDigest, image);
    images.push(image);
  }
  return images;
}

// ---------------------------------------------------------------------------------------------------------------

async function decompressToTemp(file: string, kind: 'gzip' | 'zstd', opts: OpenImageArchiveOptions): Promise<{ tmp: string; tarFile: string }> {
  const tmp = await fsp.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'carrier-load-'));
  const tarFile = path.join(tmp, 'archive.tar');
  try {
    await pipeline(
      fs.createReadStream(file, { highWaterMark: 1 << 20 }),
      await decompressor(kind),
      fs.createWriteStream(tarFile, { mode: 0o600 }),
      opts.signal ? { signal: opts.signal } : {},
    );
    return { tmp, tarFile };
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    if (opts.signal?.aborted) throw abortError(opts.signal);
    throw compressionError(kind, err);
  }
}

/**
 * Opens a local image archive for `carrier load`:
 * - a directory with `oci-layout` and `index.json` (OCI image layout) → 'oci-dir';
 * - a tar with `manifest.json` (docker-archive, as `docker save` and `podman save` write; checked first, so a
 *   Docker ≥ 25 archive that carries both is read as docker-archive) → 'docker-archive';
 * - a tar with `oci-layout` and `index.json` (`podman save --format oci-archive`) → 'oci-archive';
 * - either tar gzip- or zstd-compressed: decompressed to a temp file under `opts.tmpDir` first.
 *
 * The tar is read in place: only headers are indexed, and layer streams are byte ranges of the file.
 *
 * docker-archive layers are exposed as containers/image exposes them: the uncompressed tar, `digest` = the DiffID,
 * `size` = its uncompressed length, and the manifest is the one containers/image generates (see
 * {@link dockerArchiveManifest}). For an uncompressed layer file the digest is taken from the config, not hashed
 * here; applyLayer's expectedDigest/expectedDiffID checks catch a file that does not match.
 *
 * OCI layouts: every image manifest referenced from index.json is an image (a nested index resolves to the
 * manifest for `opts.platform`, default the host); names come from the `io.containerd.image.name` annotation if
 * present, else `org.opencontainers.image.ref.name`, exactly as written. Manifest and config blobs are checked
 * against their descriptors here; layer blobs only for presence and size.
 */
export async function openImageArchive(file: string, opts: OpenImageArchiveOptions = {}): Promise<ImageArchive> {
  if (opts.signal?.aborted) throw abortError(opts.signal);
  const st = await fsp.stat(file);
  if (st.isDirectory()) {
    const src = await DirSource.create(file);
    const images = await readOciLayout(src, opts);
    return { format: 'oci-dir', images, close: () => src.close() };
  }
  if (!st.isFile()) throw invalidArchive(`'${file}' is neither a file nor a directory`, file);

  const head = Buffer.alloc(512);
  {
    const fh = await fsp.open(file, 'r');
    try {
      await fh.read(head, 0, 512, 0);
    } finally {
      await fh.close();
    }
  }
  const kind = sniffCompression(head);
  if (kind === 'xz' || kind === 'bzip2') {
    throw new CarrierError('CARRIER_BAD_COMPRESSION', `'${file}' is ${kind}-compressed; Carrier reads plain, gzip and zstd archives`, { path: file });
  }
  let tmp: string | undefined;
  let tarFile = file;
  if (kind !== 'none') ({ tmp, tarFile } = await decompressToTemp(file, kind, opts));
  const cleanupTmp = async (): Promise<void> => {
    if (tmp !== undefined) await fsp.rm(tmp, { recursive: true, force: true });
  };
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(tarFile, 'r');
    const first = Buffer.alloc(512);
    await fh.read(first, 0, 512, 0);
    if (!looksLikeTarHeader(first)) throw invalidArchive(`'${file}' is not a tar archive or an OCI layout directory`, file);
    const index = await TarIndex.build(fh, opts.signal ? { signal: opts.signal } : {});
    const src = new TarSource(tarFile, fh, index);
    let format: ArchiveFormat;
    let images: SourceImage[];
    if (src.has('manifest.json')) {
      format = 'docker-archive';
      images = await readDockerArchive(src, opts);
    } else if (src.has('oci-layout') && src.has('index.json')) {
      format = 'oci-archive';
      images = await readOciLayout(src, opts);
    } else {
      throw invalidArchive(`'${file}' has neither manifest.json (docker-archive) nor oci-layout + index.json (oci-archive)`, file);
    }
    let closed = false;
    return {
      format,
      images,
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          await src.close();
        } finally {
          await cleanupTmp();
        }
      },
    };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await cleanupTmp();
    throw err;
  }
}

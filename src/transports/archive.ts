// Opening a local image archive or layout as image sources: the format is sniffed (an OCI layout directory; a tar
// with manifest.json or with oci-layout + index.json; either tar gzip- or zstd-compressed), and the readers in
// oci-layout-source.ts and docker-archive-source.ts turn it into one ImageSource per image.
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError, abortError } from '../errors.js';
import type { PlatformWant } from '../oci/manifest.js';
import { TarIndex, looksLikeTarHeader } from '../load/tarindex.js';
import { compressionError, decompressor, sniffCompression } from '../load/compression.js';
import { DirSource, TarSource, invalidArchive } from './archive-files.js';
import { readOciLayout } from './oci-layout-source.js';
import { readDockerArchive } from './docker-archive-source.js';
import type { ImageSource } from './types.js';

export type ArchiveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface ImageArchive {
  format: ArchiveFormat;
  images: ImageSource[];
  /** Closes the archive and removes the temp file of a compressed archive. Layer streams cannot be opened after. */
  close(): Promise<void>;
}

export interface OpenImageArchiveOptions {
  signal?: AbortSignal;
  /** Where a compressed archive is decompressed to (default os.tmpdir()). */
  tmpDir?: string;
  /**
   * Most bytes a compressed archive may decompress to in `tmpDir` before it is refused (CARRIER_LIMIT_EXCEEDED).
   * Default: 64 times the compressed size (at least 4 GiB), and never more than the free space in `tmpDir` less a
   * tenth: a small hostile archive cannot fill the disk.
   */
  maxDecompressedBytes?: number;
  /** Platform picked from a multi-platform index inside an OCI layout (default: this host's). */
  platform?: PlatformWant;
}

const GiB = 1024 ** 3;
/** Default decompression cap: this many times the compressed size... */
const DEFAULT_RATIO = 64;
/** ...but at least this much (a small archive of a large image is fine)... */
const DEFAULT_FLOOR = 4 * GiB;

/** The cap on a compressed archive's decompressed bytes in `dir` (see maxDecompressedBytes), and what it is. */
async function decompressionCap(compressed: number, dir: string, opts: OpenImageArchiveOptions): Promise<{ cap: number; why: string }> {
  const asked = opts.maxDecompressedBytes;
  if (asked !== undefined) {
    if (!Number.isSafeInteger(asked) || asked <= 0) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', `maxDecompressedBytes must be a positive integer, got ${asked}`);
    }
    return { cap: asked, why: 'maxDecompressedBytes' };
  }
  const byRatio = Math.max(DEFAULT_FLOOR, DEFAULT_RATIO * compressed);
  const st = await fsp.statfs(dir);
  const free = Math.floor(Number(st.bavail) * Number(st.bsize) * 0.9);
  return free < byRatio
    ? { cap: free, why: `nine tenths of the free space in ${dir}` }
    : { cap: byRatio, why: `${DEFAULT_RATIO} times the archive's ${compressed} bytes, at least ${DEFAULT_FLOOR / GiB} GiB` };
}

/** Passes bytes through, failing once more than `cap` have gone by. */
function capped(cap: number, tooMuch: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      seen += chunk.length;
      if (seen > cap) callback(tooMuch());
      else callback(null, chunk);
    },
  });
}

async function decompressToTemp(file: string, kind: 'gzip' | 'zstd', opts: OpenImageArchiveOptions): Promise<{ tmp: string; tarFile: string }> {
  const dir = opts.tmpDir ?? os.tmpdir();
  const { cap, why } = await decompressionCap((await fsp.stat(file)).size, dir, opts);
  const tmp = await fsp.mkdtemp(path.join(dir, 'carrier-load-'));
  const tarFile = path.join(tmp, 'archive.tar');
  const tooMuch = (): Error =>
    new CarrierError(
      'CARRIER_LIMIT_EXCEEDED',
      `'${file}' decompresses to more than ${cap} bytes (${why}); refused before it fills ${dir} — if the archive is genuine, ` +
        'decompress it yourself or raise maxDecompressedBytes',
      { path: file },
    );
  try {
    await pipeline(
      fs.createReadStream(file, { highWaterMark: 1 << 20 }),
      decompressor(kind),
      capped(cap, tooMuch),
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
 * - either tar gzip- or zstd-compressed: decompressed to a temp file under `opts.tmpDir` first, within a cap
 *   (`opts.maxDecompressedBytes`).
 *
 * The tar is read in place: only headers are indexed, and layer streams are byte ranges of the file.
 *
 * docker-archive layers are exposed as containers/image exposes them: the uncompressed tar, `digest` = the DiffID,
 * `size` = its uncompressed length, and the manifest is the one containers/image generates (see
 * dockerArchiveManifest in docker-archive-source.ts). For an uncompressed layer file the digest is taken from the
 * config, not hashed here: the destination that consumes the layer checks it (the store's applyLayer, a writer).
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
    const images = await readOciLayout(src, { transport: 'oci', path: file }, opts);
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
    let images: ImageSource[];
    if (src.has('manifest.json')) {
      format = 'docker-archive';
      images = await readDockerArchive(src, file, opts);
    } else if (src.has('oci-layout') && src.has('index.json')) {
      format = 'oci-archive';
      images = await readOciLayout(src, { transport: 'oci-archive', path: file }, opts);
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

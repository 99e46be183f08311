// oci: and oci-archive: as destinations. A layout directory takes each new blob as its image is put (a blob the
// layout already has is written once) and its oci-layout and index.json at close(); an archive collects the blobs
// and writes the tar at close(), laid out as podman save writes it (blobs sorted, then index.json and oci-layout). An uncompressed layer
// is gzip-compressed (podman save does the same) unless compression is 'none'; compressed blobs are written as
// they are, and the source's OCI manifest is kept byte for byte when no layer changed.
import { readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError, abortError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST, layerCompression } from '../oci/mediatypes.js';
import { Spool, blobChunks, blobSize, hexOf, spoolGzip, writeTar, type ArchiveEntry, type PendingBlob } from './blob-files.js';
import { ociLayerType } from './store-source.js';
import type { ImageDestination, ImageSource, LayerBlob, PutImageOptions, PutImageResult, PutLayerResult } from './types.js';
import { makeDirs } from '../fs/batch.js';

export interface OciLayoutDestinationOptions {
  /** How a layer the source rebuilt (LayerBlob.rebuilt) is written: gzip-compressed (default, as podman save) or as it is. */
  compression?: 'gzip' | 'none';
  /** Where recompressed layers wait until their size is known (default the OS temp dir). */
  tmpDir?: string;
  signal?: AbortSignal;
}

const OCI_LAYOUT_FILE = Buffer.from('{"imageLayoutVersion": "1.0.0"}');
const REF_NAME = 'org.opencontainers.image.ref.name';

interface Written {
  blob: PendingBlob;
  digest: string;
}

export class OciLayoutDestination implements ImageDestination {
  readonly reference: string;
  private readonly blobs = new Map<string, PendingBlob>();
  private readonly entries: Record<string, unknown>[] = [];
  /** Layers already put, by diff_id: the blob and media type they were written as. */
  private readonly layerMemo = new Map<string, { written: Written; mediaType: string; state: PutLayerResult['state'] }>();
  private readonly spool: Spool;
  private existed = false;
  private writing = false;
  /** Bytes written (the tar's size, or the files' sizes). */
  bytes = 0;

  /**
   * `output`: for `oci`, a new or empty directory (CARRIER_EXISTS otherwise); for `oci-archive`, a file (replaced
   * once complete, as podman does; a FIFO or device written as it is; see archive-output.ts) or a writable stream.
   */
  private constructor(
    readonly transport: 'oci' | 'oci-archive',
    private readonly output: string | Writable,
    private readonly options: OciLayoutDestinationOptions,
  ) {
    this.reference = `${transport}:${typeof output === 'string' ? output : '(stream)'}`;
    this.spool = new Spool(options.tmpDir);
  }

  static async open(transport: 'oci' | 'oci-archive', output: string | Writable, options: OciLayoutDestinationOptions = {}): Promise<OciLayoutDestination> {
    const d = new OciLayoutDestination(transport, output, options);
    if (transport === 'oci') {
      if (typeof output !== 'string') throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'an OCI layout needs a directory path as output');
      d.existed = await stat(output).then(() => true, () => false);
      if (d.existed && (await readdir(output)).length > 0) {
        throw new CarrierError('CARRIER_EXISTS', `${output} is not empty; oci-dir needs a new or empty directory`, { path: output });
      }
    }
    return d;
  }

  /** Records a blob; a layout directory gets it at once (checked against its digest as it is written). */
  private async add(b: Written, signal?: AbortSignal): Promise<Written> {
    const known = this.blobs.get(b.digest);
    if (known) return { blob: known, digest: b.digest };
    this.blobs.set(b.digest, b.blob);
    if (this.transport === 'oci') await this.writeBlob(b, signal);
    return b;
  }

  private async writeBlob(b: Written, signal?: AbortSignal): Promise<void> {
    const blobDir = join(this.output as string, 'blobs', 'sha256');
    if (!this.writing) {
      this.writing = true;
      await makeDirs(blobDir, 0o755);
    }
    const final = join(blobDir, hexOf(b.digest));
    const tmp = `${final}.tmp`;
    await pipeline(Readable.from(blobChunks(b.blob, signal)), createWriteStream(tmp, { mode: 0o644, flags: 'wx' }));
    await rename(tmp, final);
    this.bytes += blobSize(b.blob);
  }

  private async putLayer(layer: LayerBlob, signal?: AbortSignal): Promise<{ written: Written; mediaType: string; state: PutLayerResult['state'] }> {
    const compression = layerCompression(layer.mediaType) ?? 'none';
    if (compression === 'none' && layer.rebuilt && (this.options.compression ?? 'gzip') === 'gzip') {
      const blob = await spoolGzip(layer, this.spool, signal);
      return { written: await this.add({ blob, digest: blob.digest }, signal), mediaType: ociLayerType('gzip'), state: 'recompressed' };
    }
    const blob: PendingBlob = { kind: 'stream', digest: layer.digest, size: layer.size, what: `layer blob ${layer.digest}`, open: (o) => layer.open(o) };
    return { written: await this.add({ blob, digest: layer.digest }, signal), mediaType: ociLayerType(compression), state: 'copied' };
  }

  async putImage(image: ImageSource, options: PutImageOptions): Promise<PutImageResult> {
    const signal = options.signal ?? this.options.signal;
    if (signal?.aborted) throw abortError(signal);
    const results: PutLayerResult[] = [];
    const descs: { mediaType: string; digest: string; size: number }[] = [];
    let changed = image.manifestMediaType !== OCI_MANIFEST;
    for (const [i, layer] of image.layers.entries()) {
      let memo = this.layerMemo.get(layer.diffID);
      if (!memo) {
        options.onLayer?.(layer, 'copying');
        memo = await this.putLayer(layer, signal);
        this.layerMemo.set(layer.diffID, memo);
        options.onLayer?.(layer, 'done');
      } else {
        options.onLayer?.(layer, 'exists');
      }
      const size = blobSize(memo.written.blob);
      results.push({ digest: memo.written.digest, size, diffID: layer.diffID, state: memo.state });
      descs.push({ mediaType: memo.mediaType, digest: memo.written.digest, size });
      const was = image.parsedManifest.layers[i];
      if (!was || was.digest !== memo.written.digest || was.mediaType !== memo.mediaType) changed = true;
    }
    await this.add({ blob: { kind: 'bytes', data: image.config }, digest: image.configDigest }, signal);
    const manifest = changed
      ? Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: OCI_CONFIG, digest: image.configDigest, size: image.config.length },
            layers: descs,
            ...(image.parsedManifest.annotations ? { annotations: image.parsedManifest.annotations } : {}),
          }),
        )
      : image.manifest;
    const manifestDigest = changed ? sha256Digest(manifest) : image.manifestDigest;
    await this.add({ blob: { kind: 'bytes', data: manifest }, digest: manifestDigest }, signal);
    const names = [...new Set(options.names)];
    const entry = { mediaType: OCI_MANIFEST, digest: manifestDigest, size: manifest.length };
    if (names.length === 0) this.entries.push(entry);
    for (const name of names) this.entries.push({ ...entry, annotations: { [REF_NAME]: name } });
    return { id: hexOf(image.configDigest), names, manifestDigest, manifestReused: !changed, layers: results };
  }

  private index(): Buffer {
    return Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: this.entries }));
  }

  /** Writes index.json and oci-layout (a directory), or the whole tar (an archive). */
  async close(): Promise<void> {
    try {
      if (this.transport === 'oci') await this.writeDir(this.output as string);
      else this.bytes = await writeTar(this.archiveEntries(), this.output, this.options.signal);
    } finally {
      await this.spool.remove();
    }
  }

  /** Removes the spool, and what a failed copy left of a layout directory (an archive removes its temporary file). */
  async abort(): Promise<void> {
    await this.spool.remove();
    if (this.transport !== 'oci' || !this.writing) return;
    const dir = this.output as string;
    if (this.existed) {
      for (const n of await readdir(dir).catch(() => [] as string[])) await rm(join(dir, n), { recursive: true, force: true });
    } else {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private archiveEntries(): ArchiveEntry[] {
    const mtime = Math.floor(Date.now() / 1000);
    const base = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime };
    const bytes = (name: string, data: Buffer): ArchiveEntry => ({
      header: { ...base, name, type: 'file', mode: 0o644, size: data.length },
      blob: { kind: 'bytes', data },
    });
    return [
      { header: { ...base, name: 'blobs/', type: 'dir', mode: 0o755 } },
      { header: { ...base, name: 'blobs/sha256/', type: 'dir', mode: 0o755 } },
      ...[...this.blobs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([digest, blob]) => ({
        header: { ...base, name: `blobs/sha256/${hexOf(digest)}`, type: 'file' as const, mode: 0o644, size: blobSize(blob) },
        blob,
      })),
      bytes('index.json', this.index()),
      bytes('oci-layout', OCI_LAYOUT_FILE),
    ];
  }

  private async writeDir(dir: string): Promise<void> {
    this.writing = true;
    await makeDirs(dir, 0o755);
    const index = this.index();
    await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT_FILE, { mode: 0o644 });
    await writeFile(join(dir, 'index.json'), index, { mode: 0o644 });
    this.bytes += OCI_LAYOUT_FILE.length + index.length;
  }
}

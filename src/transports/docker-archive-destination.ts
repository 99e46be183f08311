// docker-archive: as a destination, written as podman 4.3.1's `podman save` writes it: `<diff_id hex>.tar` (the
// uncompressed layer), `<id>.json` (the config), per layer the legacy `<v1 id>/{layer.tar -> ../<diff_id hex>.tar,
// VERSION, json}`, then `manifest.json` ([{Config, RepoTags, Layers}]) and `repositories`; every entry mode 0444
// (the link 0), uid/gid 0, mtime 0. Images are collected as they are put (one manifest.json entry per image id,
// names merged; a layer shared by several images written once) and the tar is written by close(). The legacy v1
// ids are Carrier's own: no loader reads them; manifest.json is what `podman load` and `docker load` use.
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { abortError } from '../errors.js';
import { layerCompression } from '../oci/mediatypes.js';
import { Spool, blobSize, hexOf, spoolTar, writeTar, type ArchiveEntry, type PendingBlob } from './blob-files.js';
import type { TarHeaderFields } from '../save/tar.js';
import { refuseNonEmptyFile } from './archive-output.js';
import type { ImageDestination, ImageSource, LayerBlob, PutImageOptions, PutImageResult, PutLayerResult } from './types.js';

export interface DockerArchiveDestinationOptions {
  /** Where layers that must be decompressed wait until their size is known (default the OS temp dir). */
  tmpDir?: string;
  signal?: AbortSignal;
}

const ARCHIVE_MODE = 0o444;
/** podman 4.3.1's refusal of an existing non-empty file as a docker-archive output. */
const NOT_EMPTY = "docker-archive doesn't support modifying existing images";

function sha256Hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
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

function file(name: string, size: number): TarHeaderFields {
  return { name, type: 'file', mode: ARCHIVE_MODE, size, mtime: 0 };
}

function bytesEntry(name: string, data: Buffer): ArchiveEntry {
  return { header: file(name, data.length), blob: { kind: 'bytes', data } };
}

export class DockerArchiveDestination implements ImageDestination {
  readonly transport = 'docker-archive' as const;
  readonly reference: string;
  private readonly spool: Spool;
  private readonly layerFiles: ArchiveEntry[] = [];
  private readonly configs: ArchiveEntry[] = [];
  private readonly legacy: ArchiveEntry[] = [];
  private readonly seen = new Set<string>();
  /** Sizes of the layer tars written, by file name. */
  private readonly layerSizes = new Map<string, number>();
  /** manifest.json, one entry per image id. */
  private readonly items = new Map<string, { Config: string; RepoTags: string[]; Layers: string[]; topV1: string }>();
  /** Bytes written by close(). */
  bytes = 0;

  /**
   * `output`: a file or a writable stream. A file must not be an existing non-empty regular file (CARRIER_EXISTS,
   * as podman); it is written beside and renamed into place when complete. A FIFO or device is written as it is.
   */
  constructor(
    private readonly output: string | Writable,
    private readonly options: DockerArchiveDestinationOptions = {},
  ) {
    this.reference = `docker-archive:${typeof output === 'string' ? output : '(stream)'}`;
    this.spool = new Spool(options.tmpDir);
  }

  /** The layer's uncompressed tar as a blob addressed by its diff_id. */
  private async tarBlob(layer: LayerBlob, signal?: AbortSignal): Promise<PendingBlob> {
    if (layer.openTar && layer.diffSize !== undefined) {
      return { kind: 'stream', digest: layer.diffID, size: layer.diffSize, what: `layer ${layer.diffID}`, open: (o) => layer.openTar!(o) };
    }
    if ((layerCompression(layer.mediaType) ?? 'none') === 'none') {
      return { kind: 'stream', digest: layer.diffID, size: layer.size, what: `layer ${layer.diffID}`, open: (o) => layer.open(o) };
    }
    return spoolTar(layer, this.spool, signal);
  }

  async putImage(image: ImageSource, options: PutImageOptions): Promise<PutImageResult> {
    const signal = options.signal ?? this.options.signal;
    if (signal?.aborted) throw abortError(signal);
    if (typeof this.output === 'string' && this.items.size === 0) await refuseNonEmptyFile(this.output, NOT_EMPTY);
    const id = hexOf(image.configDigest);
    const known = this.items.get(id);
    const results: PutLayerResult[] = [];
    const layers: string[] = [];
    let parentV1: string | undefined;
    let config: Record<string, unknown> | undefined;
    for (const [i, l] of image.layers.entries()) {
      const name = `${hexOf(l.diffID)}.tar`;
      layers.push(name);
      if (!this.seen.has(name)) {
        this.seen.add(name);
        options.onLayer?.(l, 'copying');
        const blob = await this.tarBlob(l, signal);
        this.layerFiles.push({ header: file(name, blobSize(blob)), blob });
        this.layerSizes.set(name, blobSize(blob));
        options.onLayer?.(l, 'done');
      } else {
        options.onLayer?.(l, 'exists');
      }
      results.push({ digest: l.diffID, size: this.layerSizes.get(name)!, diffID: l.diffID, state: 'copied' });
      // Legacy (docker < 1.10) metadata: a v1 id per layer, chained through the parent's.
      const last = i === image.layers.length - 1;
      const v1 = sha256Hex(`${parentV1 ?? ''}\n${l.diffID}\n${last ? id : ''}`);
      if (!this.seen.has(v1)) {
        this.seen.add(v1);
        const json: Record<string, unknown> = { id: v1, ...(parentV1 !== undefined ? { parent: parentV1 } : {}) };
        if (last) {
          try {
            config ??= JSON.parse(image.config.toString('utf8')) as Record<string, unknown>;
          } catch {
            config = {};
          }
          for (const k of ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os']) json[k] = config[k] ?? null;
        }
        this.legacy.push(
          { header: { name: `${v1}/layer.tar`, type: 'symlink', mode: 0, mtime: 0, linkname: `../${name}` } },
          bytesEntry(`${v1}/VERSION`, Buffer.from('1.0')),
          bytesEntry(`${v1}/json`, Buffer.from(sortedJson(json))),
        );
      }
      parentV1 = v1;
    }
    const configName = `${id}.json`;
    if (!this.seen.has(configName)) {
      this.seen.add(configName);
      this.configs.push(bytesEntry(configName, image.config));
    }
    const item = known ?? { Config: configName, RepoTags: [], Layers: layers, topV1: parentV1 ?? '' };
    for (const n of options.names) if (!item.RepoTags.includes(n)) item.RepoTags.push(n);
    this.items.set(id, item);
    return { id, names: [...item.RepoTags], manifestDigest: image.manifestDigest, manifestReused: false, layers: results };
  }

  /** The images written, one per id, with the names merged (as podman does when two names point at one image). */
  images(): { id: string; names: string[] }[] {
    return [...this.items.entries()].map(([id, item]) => ({ id, names: [...item.RepoTags] }));
  }

  async close(): Promise<void> {
    const manifest = [...this.items.values()].map(({ Config, RepoTags, Layers }) => ({ Config, RepoTags, Layers }));
    const repositories: Record<string, Record<string, string>> = {};
    for (const item of this.items.values()) {
      for (const t of item.RepoTags) {
        const colon = t.lastIndexOf(':');
        (repositories[t.slice(0, colon)] ??= {})[t.slice(colon + 1)] = item.topV1;
      }
    }
    try {
      this.bytes = await writeTar(
        [
          ...this.layerFiles,
          ...this.configs,
          ...this.legacy,
          bytesEntry('manifest.json', Buffer.from(JSON.stringify(manifest))),
          bytesEntry('repositories', Buffer.from(JSON.stringify(repositories))),
        ],
        this.output,
        this.options.signal,
        { refuseNonEmpty: NOT_EMPTY },
      );
    } finally {
      await this.spool.remove();
    }
  }

  /** Removes the spool (a failed close() has already removed its temporary file). */
  async abort(): Promise<void> {
    await this.spool.remove();
  }
}

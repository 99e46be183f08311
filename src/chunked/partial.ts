// A partial pull of one zstd:chunked layer: the TOC and tar-split are fetched together, the TOC alone decides whether a
// partial pull pays, and the tar-split is checked against it (toc.ts) before one is planned; each file's content is
// taken from the store when a file with its digest is there (file-index.ts) and fetched by HTTP range otherwise, and
// the layer's tar is rebuilt from the tar-split with those contents by the store's ordinary apply, on its native
// threads (the layer's bytes never pass through JS): every file is hashed against its TOC digest, and the tar against
// the config's diff_id. The result is the layer a full pull makes (same id, same tar-split, same export), and a TOC
// or tar-split that lies cannot change it, only make the pull fail.
import type { RebuiltTar } from '../layer/apply.js';
import type { NativeRebuildPlan } from '../native.js';
import type { ByteRange, FetchedRanges } from '../registry/ranges.js';
import { chunkedLocation } from './annotations.js';
import { choosePartial, estimateLink, type LinkEstimate } from './fetch-cost.js';
import type { IndexedFile, LocalFile } from './file-index.js';
import { readTarSplit, readToc, type ChunkedLayerIndex, type ContentEntry, type SplitEntry } from './toc.js';

/** What a partial pull needs of a layer: its descriptor and ranged reads of its blob. */
export interface RangedLayer {
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  fetchRanges?(ranges: readonly ByteRange[], options?: { signal?: AbortSignal }): Promise<FetchedRanges>;
}

export interface PartialLayer {
  /** The layer's tar, for the native apply to rebuild (applyLayer); its rebuild drives the fetches. */
  tar: RebuiltTar;
  /** Compressed bytes of file content still to fetch (ranges merged), and of content found in the store. */
  toFetch: number;
  skipped: number;
  /** Every file with content, for the layer's index once the layer is verified. */
  files: IndexedFile[];
  /** Files taken from the store, by tar name: reflinked where the filesystem can (ApplyLayerOptions.cloneFrom). */
  clones: Map<string, string>;
}

export interface PartialOptions {
  signal?: AbortSignal;
  /** Running count of bytes received from the registry for this layer (the TOC and tar-split included). */
  onFetched?: (bytes: number) => void;
  /** Without a measured link: a partial pull is chosen when it fetches at most this share of the blob (default 0.8). */
  maxShare?: number;
  /** The link to the registry; default: as the layer's TOC fetch measured it (fetch-cost.ts decides with it). */
  link?: LinkEstimate;
  /** Compressed bytes fetched (and held) at once (default 32 MiB); a larger file comes in pieces of this size. */
  batchBytes?: number;
  /** Every file taken from the store is offered to apply (to hard-link where allowed), however small. */
  hardlinks?: boolean;
  /** The layer's TOC, already fetched and checked (fetchChunkedToc). */
  toc?: ChunkedToc;
  /** The partial-or-full decision, when the caller has made it already (partialPays, on these files and options). */
  pays?: boolean;
}

/**
 * A layer's TOC, fetched and checked, and its tar-split's bytes as they came with it: checked (index()) only when the
 * layer is pulled partially, since a full pull never reads them.
 */
export interface ChunkedToc {
  /** The TOC's regular files with content, in its order: what the partial-or-full decision counts. */
  contents: ContentEntry[];
  /** Bytes received fetching the TOC and tar-split. */
  received: number;
  /** Seconds that fetch took (one request), and until its headers: what the partial-or-full decision knows of the link. */
  seconds?: number;
  firstByteSeconds?: number;
  /** The tar-split's uncompressed length (what checking it reads). */
  splitBytes: number;
  /**
   * The tar-split checked against the TOC (once, however often asked for); undefined when it has names the TOC cannot
   * spell (the layer is then fetched whole). Throws CARRIER_BAD_TOC when they disagree.
   */
  index(): Promise<ChunkedLayerIndex | undefined>;
}

/** Ranges closer than this are fetched as one (what lies between is a few tar headers). */
const MERGE_GAP = 16 << 10;
/** Files smaller than this are written rather than reflinked (a clone costs two opens and an ioctl). */
const CLONE_MIN = 64 << 10;
/** Compressed bytes fetched (and held) at once. */
const BATCH_BYTES = 32 << 20;
/** Ranges one request asks for (src/registry/ranges.ts sends at most this many per request). */
const RANGES_PER_REQUEST = 64;

/** Sorted, merged ranges covering `entries`. */
function mergeRanges(entries: readonly ContentEntry[]): ByteRange[] {
  const sorted = [...entries].sort((a, b) => a.offset - b.offset);
  const out: ByteRange[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.offset <= last.offset + last.length + MERGE_GAP) last.length = Math.max(last.length, e.endOffset - last.offset);
    else out.push({ offset: e.offset, length: e.endOffset - e.offset });
  }
  return out;
}

/** Remote contents in tar order, cut into batches of about `limit` bytes of ranges; a larger file alone. */
function batches(remote: readonly ContentEntry[], limit: number): ContentEntry[][] {
  const out: ContentEntry[][] = [];
  let cur: ContentEntry[] = [];
  let bytes = 0;
  for (const e of remote) {
    if (cur.length > 0 && bytes + (e.endOffset - e.offset) > limit) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += e.endOffset - e.offset;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The requests fetching `remote` takes (as produce() in planPartial makes them, one after another). */
function requestsFor(remote: readonly ContentEntry[], limit: number): number {
  let n = 0;
  for (const batch of batches(remote, limit)) {
    const first = batch[0]!;
    if (batch.length === 1 && first.endOffset - first.offset > limit) n += Math.ceil((first.endOffset - first.offset) / limit);
    else n += Math.ceil(mergeRanges(batch).length / RANGES_PER_REQUEST);
  }
  return n;
}

/**
 * Fetches a layer's TOC and tar-split (one request) and checks the TOC; undefined when the layer is not zstd:chunked
 * with a tar-split (the older form cannot be verified from parts), cannot be fetched by range, or the registry
 * ignores ranges. Throws CARRIER_BAD_TOC for a TOC that is malformed or disagrees with itself. The tar-split is
 * fetched here, not when a partial pull asks for it, so a partial pull waits one round trip, not two.
 */
export async function fetchChunkedToc(layer: RangedLayer, signal?: AbortSignal): Promise<ChunkedToc | undefined> {
  try {
    const where = chunkedLocation(layer.annotations, layer.size, layer.digest);
    const tarSplit = where?.tarSplit;
    if (!where || !tarSplit || !layer.fetchRanges) return undefined;
    const parts = [where.toc, tarSplit].sort((a, b) => a.offset - b.offset);
    const t0 = performance.now();
    const meta = await layer.fetchRanges(parts, signal ? { signal } : {});
    const seconds = (performance.now() - t0) / 1000;
    const [ctoc, csplit] = parts[0] === where.toc ? meta.parts : [meta.parts[1]!, meta.parts[0]!];
    const dataEnd = Math.min(where.toc.offset, tarSplit.offset) - 8;
    const toc = await readToc(ctoc!, { tocDigest: where.tocDigest, toc: where.toc, dataEnd }, layer.digest);
    let index: Promise<ChunkedLayerIndex | undefined> | undefined;
    const check = (): Promise<ChunkedLayerIndex | undefined> => readTarSplit(toc, csplit!, tarSplit, layer.digest).catch(unsupported);
    return {
      contents: toc.contents,
      received: meta.received,
      seconds,
      ...(meta.firstByteSeconds !== undefined ? { firstByteSeconds: meta.firstByteSeconds } : {}),
      splitBytes: tarSplit.uncompressedLength,
      index: () => (index ??= check()),
    };
  } catch (err) {
    // A TOC type not known, no ranges here: fetched whole.
    return unsupported(err);
  }
}

/** Undefined for CARRIER_UNSUPPORTED (what cannot be pulled partially is fetched whole); other errors thrown on. */
function unsupported(err: unknown): undefined {
  if ((err as { code?: string }).code === 'CARRIER_UNSUPPORTED') return undefined;
  throw err;
}

/** A store file holding `c`'s content (by digest, of its size). */
function localFor(local: ReadonlyMap<string, LocalFile>, c: ContentEntry): LocalFile | undefined {
  const f = local.get(c.digest);
  return f && f.size === c.size ? f : undefined;
}

/**
 * True when pulling `layer` partially against the files the store has is clearly cheaper than fetching it whole
 * (fetch-cost.ts), decided from its TOC alone: the tar-split is read only when this says yes. A TOC that lies here
 * can only choose the way the layer is verified: a partial pull checks the tar-split against it, a full one the
 * diff_id.
 */
export function partialPays(layer: RangedLayer, toc: ChunkedToc, local: ReadonlyMap<string, LocalFile>, options: Pick<PartialOptions, 'link' | 'maxShare' | 'batchBytes'> = {}): boolean {
  const remote: ContentEntry[] = [];
  let localBytes = 0;
  let localFiles = 0;
  for (const c of toc.contents) {
    if (!localFor(local, c)) remote.push(c);
    else {
      localBytes += c.size;
      localFiles++;
    }
  }
  if (localFiles === 0) return false;
  const costs = {
    blobBytes: layer.size,
    fetchBytes: mergeRanges(remote).reduce((n, r) => n + r.length, 0),
    requests: requestsFor(remote, options.batchBytes ?? BATCH_BYTES),
    localBytes,
    localFiles,
    splitBytes: toc.splitBytes,
  };
  const link = options.link ?? (toc.seconds !== undefined ? estimateLink([{ bytes: toc.received, seconds: toc.seconds, ...(toc.firstByteSeconds !== undefined ? { firstByteSeconds: toc.firstByteSeconds } : {}) }]) : undefined);
  return choosePartial(costs, link, options.maxShare);
}

/**
 * Plans a partial pull of `layer` against the files the store has (its TOC fetched here unless given); undefined when
 * the layer cannot be pulled partially (see fetchChunkedToc) or fetching whole is about as cheap (partialPays, decided
 * here unless given). Its tar-split is checked against its TOC before anything is planned.
 */
export async function planPartial(layer: RangedLayer, local: ReadonlyMap<string, LocalFile>, options: PartialOptions = {}): Promise<PartialLayer | undefined> {
  const { signal } = options;
  const toc = options.toc ?? (await fetchChunkedToc(layer, signal));
  if (!toc || !(options.pays ?? partialPays(layer, toc, local, options))) return undefined;
  const index = await toc.index();
  if (!index) return undefined;
  let fetched = toc.received;
  options.onFetched?.(fetched);

  const isLocal = (c: ContentEntry): LocalFile | undefined => localFor(local, c);
  const remote = index.contents.filter((c) => !isLocal(c));
  const toFetch = mergeRanges(remote).reduce((n, r) => n + r.length, 0);
  const skipped = mergeRanges(index.contents.filter((c) => isLocal(c))).reduce((n, r) => n + r.length, 0);
  const limit = options.batchBytes ?? BATCH_BYTES;

  const files = index.contents.map((c) => ({ name: c.name, size: c.size, digest: c.digest }));
  // Fetches the remote contents, in tar order, and writes their frames to the native apply, which decodes them as its
  // rebuild of the tar reaches each file (concatenated frames decode to the concatenated contents).
  const remoteFrames = async (write: (frames: Uint8Array) => Promise<void>, stop: AbortSignal): Promise<void> => {
    const fetchSignal = signal ? AbortSignal.any([signal, stop]) : stop;
    const fetchRanges = async (ranges: ByteRange[]): Promise<Buffer[]> => {
      const got = await layer.fetchRanges!(ranges, { signal: fetchSignal });
      fetched += got.received;
      options.onFetched?.(fetched);
      return got.parts;
    };
    for (const batch of batches(remote, limit)) {
      const first = batch[0]!;
      if (batch.length === 1 && first.endOffset - first.offset > limit) {
        // A file larger than a batch comes in pieces, so memory stays bounded whatever its size.
        for (let at = first.offset; at < first.endOffset; at += limit) {
          const [piece] = await fetchRanges([{ offset: at, length: Math.min(limit, first.endOffset - at) }]);
          await write(piece!);
        }
        continue;
      }
      const ranges = mergeRanges(batch);
      const parts = await fetchRanges(ranges);
      for (const c of batch) {
        const i = ranges.findIndex((r) => r.offset <= c.offset && c.endOffset <= r.offset + r.length);
        const at = c.offset - ranges[i]!.offset;
        await write(parts[i]!.subarray(at, at + (c.endOffset - c.offset)));
      }
    }
  };
  const tar: RebuiltTar = { plan: rebuildPlan(index.split, index.contents, isLocal, layer.digest), remote: remoteFrames };
  const clones = new Map<string, string>();
  for (const c of index.contents) {
    const f = isLocal(c);
    if (f && (options.hardlinks || c.size >= CLONE_MIN)) clones.set(c.name, f.path);
  }
  return { tar, toFetch, skipped, files, clones };
}

/**
 * The native apply's plan of the tar (NativeRebuildPlan): the tar-split's segments in order, and each file with content
 * read from the store file holding it or (no path) decoded from the remote frames, hashed against its TOC digest.
 */
function rebuildPlan(split: readonly SplitEntry[], contents: readonly ContentEntry[], isLocal: (c: ContentEntry) => LocalFile | undefined, digest: string): NativeRebuildPlan {
  const byName = new Map(contents.map((c) => [c.name, c]));
  const segments: Buffer[] = [];
  let segmentBytes = 0;
  const steps: number[] = [];
  const names: string[] = [];
  const paths: string[] = [];
  const digests: string[] = [];
  const sizes: number[] = [];
  const claimed: number[] = [];
  for (const e of split) {
    if (e.type === 'segment') {
      if (e.payload.length === 0) continue;
      segments.push(e.payload);
      segmentBytes += e.payload.length;
      steps.push(-1, e.payload.length);
      continue;
    }
    const c = e.size > 0 ? byName.get(e.name) : undefined;
    if (!c) continue;
    const from = isLocal(c);
    steps.push(names.length, c.size);
    names.push(c.name);
    paths.push(from?.path ?? '');
    digests.push(c.digest);
    sizes.push(c.size);
    claimed.push(from?.claimed ? 1 : 0);
  }
  return {
    layer: digest,
    segments: Buffer.concat(segments, segmentBytes),
    steps: Float64Array.from(steps),
    names: names.join('\0'),
    paths: paths.join('\0'),
    digests: digests.join('\0'),
    sizes: Float64Array.from(sizes),
    claimed: Uint8Array.from(claimed),
  };
}

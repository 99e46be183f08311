// A partial pull of one zstd:chunked layer: the TOC and tar-split are fetched and checked (toc.ts), each file's content
// is taken from the store when a file with its digest is there (file-index.ts) and fetched by HTTP range otherwise,
// and the layer's tar is rebuilt from the tar-split with those contents. That tar goes to the store's ordinary apply,
// which hashes it and requires the config's diff_id: the result is the layer a full pull makes (same id, same
// tar-split, same export), and a TOC or tar-split that lies cannot change it, only make the pull fail.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, type Duplex } from 'node:stream';
import { CarrierError } from '../errors.js';
import { decompressor } from '../load/compression.js';
import type { ByteRange, FetchedRanges } from '../registry/ranges.js';
import { chunkedLocation } from './annotations.js';
import { choosePartial, estimateLink, type LinkEstimate } from './fetch-cost.js';
import { BATCHED_FILE_MAX, LocalReads } from './local-reads.js';
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
  /** The layer's tar, rebuilt; reading it drives the fetches. */
  stream: Readable;
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
  /** Seconds that fetch took (one request): what the partial-or-full decision knows of the link. */
  seconds?: number;
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
  const link = options.link ?? (toc.seconds !== undefined ? estimateLink([{ bytes: toc.received, seconds: toc.seconds }]) : undefined);
  return choosePartial(costs, link, options.maxShare);
}

/**
 * Plans a partial pull of `layer` against the files the store has (its TOC fetched here unless given); undefined when
 * the layer cannot be pulled partially (see fetchChunkedToc) or fetching whole is about as cheap (partialPays). Its
 * tar-split is checked against its TOC before anything is planned.
 */
export async function planPartial(layer: RangedLayer, local: ReadonlyMap<string, LocalFile>, options: PartialOptions = {}): Promise<PartialLayer | undefined> {
  const { signal } = options;
  const sig = signal ? { signal } : {};
  const toc = options.toc ?? (await fetchChunkedToc(layer, signal));
  if (!toc || !partialPays(layer, toc, local, options)) return undefined;
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
  const inflate = decompressor('zstd');
  // Feeds the frames of the remote contents, in tar order, to one decoder: concatenated frames decode to the
  // concatenated contents, which the tar below takes file by file.
  const write = async (bytes: Buffer): Promise<void> => {
    if (inflate.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        inflate.off('drain', done);
        inflate.off('close', done);
        if (inflate.destroyed) reject(new CarrierError('ABORT_ERR', 'the layer stream was closed'));
        else resolve();
      };
      inflate.once('drain', done);
      inflate.once('close', done);
    });
  };
  const fetchRanges = async (ranges: ByteRange[]): Promise<Buffer[]> => {
    const got = await layer.fetchRanges!(ranges, sig);
    fetched += got.received;
    options.onFetched?.(fetched);
    return got.parts;
  };
  const produce = async (): Promise<void> => {
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
    inflate.end();
  };
  const tar = Readable.from(rebuild(index.split, index.contents, isLocal, inflate, produce, layer.digest));
  const clones = new Map<string, string>();
  for (const c of index.contents) {
    const f = isLocal(c);
    if (f && (options.hardlinks || c.size >= CLONE_MIN)) clones.set(c.name, f.path);
  }
  return { stream: tar, toFetch, skipped, files, clones };
}

/** Reads exactly `n` bytes from `source`, chunk by chunk. */
async function* take(source: AsyncIterator<Buffer>, rest: { buf: Buffer }, n: number): AsyncGenerator<Buffer> {
  while (n > 0) {
    if (rest.buf.length === 0) {
      const r = await source.next();
      if (r.done) return;
      rest.buf = r.value;
    }
    const k = Math.min(n, rest.buf.length);
    yield rest.buf.subarray(0, k);
    rest.buf = rest.buf.subarray(k);
    n -= k;
  }
}

/** Rebuilt tar bytes are handed on in pieces of at least this size (fewer, larger pushes to the native apply). */
const OUT_BYTES = 1 << 20;

async function* rebuild(
  split: readonly SplitEntry[],
  contents: readonly ContentEntry[],
  isLocal: (c: ContentEntry) => LocalFile | undefined,
  inflate: Duplex,
  produce: () => Promise<void>,
  digest: string,
): AsyncGenerator<Buffer> {
  const byName = new Map(contents.map((c) => [c.name, c]));
  const decoded = (inflate as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const rest = { buf: Buffer.alloc(0) };
  // Store files up to BATCHED_FILE_MAX, in tar order, read and hashed in batches on native threads ahead of the tar.
  const batched = new Map<ContentEntry, number>();
  const smallFiles: LocalFile[] = [];
  for (const e of split) {
    const c = e.type === 'file' && e.size > 0 ? byName.get(e.name) : undefined;
    const from = c ? isLocal(c) : undefined;
    if (c && from && c.size <= BATCHED_FILE_MAX && !batched.has(c)) {
      batched.set(c, smallFiles.length);
      smallFiles.push(from);
    }
  }
  const reads = new LocalReads(smallFiles);
  let out: Buffer[] = [];
  let outBytes = 0;
  const add = (b: Buffer): boolean => {
    out.push(b);
    outBytes += b.length;
    return outBytes >= OUT_BYTES;
  };
  const flush = (): Buffer => {
    const b = out.length === 1 ? out[0]! : Buffer.concat(out, outBytes);
    out = [];
    outBytes = 0;
    return b;
  };
  let producing: Promise<void> | undefined;
  try {
    for (const e of split) {
      if (e.type === 'segment') {
        if (e.payload.length > 0 && add(e.payload)) yield flush();
        continue;
      }
      const c = e.size > 0 ? byName.get(e.name) : undefined;
      if (!c) continue;
      const from = isLocal(c);
      let n: number;
      let got: string;
      const at = batched.get(c);
      if (from && at !== undefined) {
        const r = await reads.get(at);
        n = r.bytes.length;
        got = r.digest;
        if (add(r.bytes)) yield flush();
      } else {
        const h = createHash('sha256');
        n = 0;
        if (!from) producing ??= produce().catch((err: unknown) => void inflate.destroy(err as Error));
        const chunks = from ? (createReadStream(from.path, { highWaterMark: OUT_BYTES }) as AsyncIterable<Buffer>) : take(decoded, rest, c.size);
        for await (const chunk of chunks) {
          n += chunk.length;
          if (n > c.size) break;
          h.update(chunk);
          if (add(chunk)) yield flush();
        }
        got = `sha256:${h.digest('hex')}`;
      }
      if ((n !== c.size || got !== c.digest) && from?.claimed) {
        throw new CarrierError('CARRIER_STALE_INDEX', `zstd:chunked layer ${digest}: '${c.name}' read from the store at ${from.path} does not hold what an earlier layer's TOC claimed (${c.digest}); the layer is fetched whole`);
      }
      if (n !== c.size || got !== c.digest) {
        throw new CarrierError('CARRIER_DIGEST_MISMATCH', `zstd:chunked layer ${digest}: '${c.name}' ${from ? `read from the store at ${from.path}` : 'as fetched'} does not match its TOC digest ${c.digest} (${n} bytes, ${got || 'not a regular file of its size'}); the layer is refused`);
      }
    }
    if (outBytes > 0) yield flush();
    if (producing) {
      await producing;
      if (rest.buf.length > 0 || !(await decoded.next()).done) {
        throw new CarrierError('CARRIER_BAD_TOC', `zstd:chunked layer ${digest}: the TOC's ranges decode to more bytes than its files hold; the layer is refused`);
      }
    }
  } finally {
    inflate.destroy();
  }
}

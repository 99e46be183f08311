// A zstd:chunked layer's TOC and tar-split, read as hostile input: both are checked against their digests (the TOC's
// against the manifest annotation, the tar-split's against the TOC), decompressed under the lengths the annotations
// give, parsed strictly, and checked against each other. The TOC alone is read first: it is all a puller needs to
// decide between a partial and a full pull, and a full pull never reads the tar-split (its diff_id is checked against
// the tar the blob decompresses to). A partial pull then checks the tar-split against the TOC before anything is
// kept, takes the tar's bytes from it and each file's content from where the TOC says; the layer's diff_id,
// recomputed from what is written, is the last word.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { decompressor } from '../load/compression.js';
import type { BlobPart } from './annotations.js';

/** One tar-split line: raw bytes of the tar (headers, padding), or a file entry whose content comes from elsewhere. */
export type SplitEntry = { type: 'segment'; payload: Buffer } | { type: 'file'; name: string; size: number; rawName?: boolean };

/** A TOC entry for a file with content: the compressed range of its frames and the digest of its content. */
export interface ContentEntry {
  name: string;
  size: number;
  digest: string;
  offset: number;
  endOffset: number;
}

/** A layer's TOC and tar-split, checked against each other: what a partial pull rebuilds the tar from. */
export interface ChunkedLayerIndex {
  /** The tar, in order. */
  split: SplitEntry[];
  /** Content of the tar-split's file entries with content, in the tar's order. */
  contents: ContentEntry[];
}

const TOC_TYPES = new Set(['reg', 'hardlink', 'symlink', 'char', 'block', 'dir', 'fifo', 'chunk']);
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function bad(digest: string, what: string): CarrierError {
  return new CarrierError('CARRIER_BAD_TOC', `zstd:chunked layer ${digest}: ${what}; the layer is refused`);
}

/** zstd-decompresses `bytes`, refusing output other than exactly `expected` bytes. */
export async function unzstdExact(bytes: Buffer, expected: number, what: string, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > expected) return cb(bad(digest, `the ${what} decompresses to more than the ${expected} bytes its annotation says`));
      chunks.push(chunk);
      cb();
    },
  });
  const d = decompressor('zstd');
  d.end(bytes);
  try {
    await pipeline(d, sink);
  } catch (err) {
    if (err instanceof CarrierError && err.code === 'CARRIER_BAD_TOC') throw err;
    throw bad(digest, `the ${what} is not valid zstd (${(err as Error).message})`);
  }
  if (total !== expected) throw bad(digest, `the ${what} decompresses to ${total} bytes, not the ${expected} its annotation says`);
  return Buffer.concat(chunks, total);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses the tar-split's JSON lines (vbatts/tar-split's format) strictly. */
export function parseTarSplit(text: string, digest: string): SplitEntry[] {
  const out: SplitEntry[] = [];
  let position = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw bad(digest, `tar-split line ${position} is not JSON`);
    }
    if (typeof j !== 'object' || j === null || j.position !== position) throw bad(digest, `tar-split line ${position} is out of order`);
    position++;
    if (j.type === 2) {
      if (typeof j.payload !== 'string') throw bad(digest, `tar-split segment ${position - 1} has no payload`);
      out.push({ type: 'segment', payload: Buffer.from(j.payload, 'base64') });
    } else if (j.type === 1) {
      const name = typeof j.name === 'string' ? j.name : typeof j.name_raw === 'string' ? Buffer.from(j.name_raw, 'base64').toString('latin1') : undefined;
      const size = j.size === undefined ? 0 : j.size;
      if (name === undefined || !isCount(size)) throw bad(digest, `tar-split file entry ${position - 1} has no name or a bad size`);
      out.push({ type: 'file', name, size, ...(typeof j.name !== 'string' ? { rawName: true } : {}) });
    } else {
      throw bad(digest, `tar-split line ${position - 1} has unknown type ${String(j.type)}`);
    }
  }
  return out;
}

export interface TocEntry {
  type: string;
  name: string;
  size?: number;
  digest?: string;
  offset?: number;
  endOffset?: number;
}

/** A TOC checked on its own (its digest, its JSON, every entry): enough to decide how to pull the layer. */
export interface CheckedToc {
  /** Every entry but chunks, by name. */
  entries: ReadonlyMap<string, TocEntry>;
  /** The regular files with content, in the TOC's order. */
  contents: ContentEntry[];
  tarSplitDigest: string;
}

/**
 * Checks a TOC (compressed bytes as fetched) against its manifest-checksum and parses it strictly: known types, no
 * name twice, content only in regular files, with a sha256 digest and a range inside the blob's data. `dataEnd`: where
 * the content frames must end (the first skippable frame).
 */
export async function readToc(ctoc: Buffer, where: { tocDigest: string; toc: BlobPart; dataEnd: number }, digest: string): Promise<CheckedToc> {
  if (sha256Digest(ctoc) !== where.tocDigest) throw bad(digest, `the TOC does not match its manifest-checksum ${where.tocDigest}`);
  const tocText = (await unzstdExact(ctoc, where.toc.uncompressedLength, 'TOC', digest)).toString('utf8');
  let toc: { version?: unknown; entries?: unknown; tarSplitDigest?: unknown };
  try {
    toc = JSON.parse(tocText) as typeof toc;
  } catch {
    throw bad(digest, 'the TOC is not JSON');
  }
  if (toc.version !== 1 || !Array.isArray(toc.entries)) throw bad(digest, 'the TOC is not version 1 with entries');
  if (typeof toc.tarSplitDigest !== 'string' || !DIGEST.test(toc.tarSplitDigest)) throw bad(digest, 'the TOC has no tarSplitDigest');

  const entries = new Map<string, TocEntry>();
  const contents: ContentEntry[] = [];
  let last: TocEntry | undefined;
  for (const raw of toc.entries as unknown[]) {
    const e = raw as TocEntry;
    if (typeof e !== 'object' || e === null || typeof e.type !== 'string' || !TOC_TYPES.has(e.type) || typeof e.name !== 'string') {
      throw bad(digest, 'a TOC entry has no known type or no name');
    }
    if (e.type === 'chunk') {
      // A chunk of the file before it: its content is inside that file's range, which is what is fetched.
      if (!last || last.name !== e.name) throw bad(digest, `TOC chunk of '${e.name}' does not follow its file`);
      continue;
    }
    if (entries.has(e.name)) throw bad(digest, `the TOC names '${e.name}' twice`);
    const size = e.size ?? 0;
    if (!isCount(size)) throw bad(digest, `TOC entry '${e.name}' has a bad size`);
    if (size > 0) {
      if (e.type !== 'reg') throw bad(digest, `TOC entry '${e.name}' of type ${e.type} has content`);
      if (typeof e.digest !== 'string' || !DIGEST.test(e.digest)) throw bad(digest, `TOC entry '${e.name}' has no sha256 digest`);
      if (!isCount(e.offset) || !isCount(e.endOffset) || e.offset <= 0 || e.endOffset <= e.offset || e.endOffset > where.dataEnd) {
        throw bad(digest, `TOC entry '${e.name}' has content at ${String(e.offset)}..${String(e.endOffset)}, outside the blob's data (0..${where.dataEnd})`);
      }
      contents.push({ name: e.name, size, digest: e.digest, offset: e.offset, endOffset: e.endOffset });
    }
    entries.set(e.name, e);
    last = e;
  }
  return { entries, contents, tarSplitDigest: toc.tarSplitDigest };
}

/**
 * Checks a tar-split (compressed bytes as fetched) against a checked TOC: its digest is the TOC's tarSplitDigest, it
 * parses strictly, and it names exactly the TOC's entries, once each, with the TOC's sizes. Returns the layer as the
 * puller rebuilds it.
 */
export async function readTarSplit(toc: CheckedToc, csplit: Buffer, tarSplit: BlobPart, digest: string): Promise<ChunkedLayerIndex> {
  if (sha256Digest(csplit) !== toc.tarSplitDigest) throw bad(digest, `the tar-split does not match the TOC's tarSplitDigest ${toc.tarSplitDigest}`);
  const split = parseTarSplit((await unzstdExact(csplit, tarSplit.uncompressedLength, 'tar-split', digest)).toString('utf8'), digest);
  // A name that is not UTF-8 is spelled differently in the TOC (JSON), so names cannot be matched: fetched whole.
  if (split.some((s) => s.type === 'file' && s.rawName)) {
    throw new CarrierError('CARRIER_UNSUPPORTED', `zstd:chunked layer ${digest} has file names that are not UTF-8`);
  }
  const seen = new Set<string>();
  const contents: ContentEntry[] = [];
  for (const s of split) {
    if (s.type !== 'file') continue;
    if (seen.has(s.name)) throw bad(digest, `the tar-split names '${s.name}' twice`);
    seen.add(s.name);
    const e = toc.entries.get(s.name);
    if (!e) throw bad(digest, `the tar-split names '${s.name}', which the TOC does not`);
    if ((e.size ?? 0) !== s.size) throw bad(digest, `'${s.name}' is ${s.size} bytes in the tar-split but ${e.size ?? 0} in the TOC`);
    if (s.size > 0) contents.push({ name: s.name, size: s.size, digest: e.digest!, offset: e.offset!, endOffset: e.endOffset! });
  }
  for (const name of toc.entries.keys()) if (!seen.has(name)) throw bad(digest, `the TOC names '${name}', which the tar-split does not`);
  return { split, contents };
}

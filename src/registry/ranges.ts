// Parts of a blob by HTTP Range: several ranges in one request (`Range: bytes=a-b,c-d`), answered as
// multipart/byteranges (the CNCF registry's filesystem storage does, through Go's http.ServeContent) or as a single
// range (then each range is asked for alone). Each range asked for is cut out of the answer, and an answer that does
// not cover a range is refused: nothing here trusts the registry's framing. A registry that ignores Range (answers
// the whole blob) fails with CARRIER_UNSUPPORTED, so the caller fetches the blob whole its usual way.
import { CarrierError } from '../errors.js';
import type { ImageReference } from '../reference.js';
import { parseDigest } from '../oci/digest.js';
import { discard, header, readCapped, type Response } from './http.js';

export interface ByteRange {
  offset: number;
  length: number;
}

/** What ranged fetching needs from a client; RegistryClient is the real one. */
export interface RangeClient {
  requestBlob(ref: ImageReference | string, digest: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response>;
}

export interface FetchedRanges {
  /** The bytes of each range asked for, in order. */
  parts: Buffer[];
  /** Body bytes received (what the link carried). */
  received: number;
  /** Requests made. */
  requests: number;
  /** Seconds from sending the first request to its response's headers: at most one round trip plus the server's time. */
  firstByteSeconds?: number;
}

/** Ranges per request: keeps the Range header short (proxies cap header sizes). */
const MAX_RANGES_PER_REQUEST = 64;

function rangeError(digest: string, what: string): CarrierError {
  return new CarrierError('CARRIER_REGISTRY_ERROR', `blob ${digest}: the registry answered a range request with ${what}`);
}

/**
 * Fetches `ranges` (sorted, not overlapping, inside the blob of `size` bytes) of blob `digest`, several per request.
 * The bytes are not verified here: the caller checks what they decode to.
 */
export async function fetchBlobRanges(client: RangeClient, ref: ImageReference | string, digest: string, size: number, ranges: readonly ByteRange[], signal?: AbortSignal): Promise<FetchedRanges> {
  parseDigest(digest);
  signal?.throwIfAborted();
  let prev = 0;
  for (const r of ranges) {
    if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.length <= 0 || r.offset < prev || r.offset + r.length > size) {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', `blob ${digest}: range ${r.offset}+${r.length} is not sorted, empty, or outside its ${size} bytes`);
    }
    prev = r.offset + r.length;
  }
  const out: FetchedRanges = { parts: [], received: 0, requests: 0 };
  for (let i = 0; i < ranges.length; i += MAX_RANGES_PER_REQUEST) {
    const group = ranges.slice(i, i + MAX_RANGES_PER_REQUEST);
    const got = await fetchGroup(client, ref, digest, size, group, signal);
    out.parts.push(...got.parts);
    out.received += got.received;
    out.requests += got.requests;
    out.firstByteSeconds ??= got.firstByteSeconds;
  }
  return out;
}

async function fetchGroup(client: RangeClient, ref: ImageReference | string, digest: string, size: number, group: readonly ByteRange[], signal?: AbortSignal): Promise<FetchedRanges> {
  const spec = group.map((r) => `${r.offset}-${r.offset + r.length - 1}`).join(',');
  const t0 = performance.now();
  const res = await client.requestBlob(ref, digest, { range: `bytes=${spec}` }, signal);
  const firstByteSeconds = (performance.now() - t0) / 1000;
  const wanted = group.reduce((n, r) => n + r.length, 0);
  if (res.statusCode === 200) {
    // The whole blob: reading it to cut parts out would be a full pull held in memory.
    discard(res.body);
    throw new CarrierError('CARRIER_UNSUPPORTED', `blob ${digest}: the registry ignores Range requests (answered the whole blob)`);
  }
  const type = header(res, 'content-type') ?? '';
  const boundary = /^multipart\/byteranges;\s*boundary="?([^";]+)"?/i.exec(type)?.[1];
  // Multipart headers are small: a few hundred bytes per part.
  const body = await readCapped(res, boundary ? wanted + 512 * group.length + 1024 : wanted, `ranges of blob ${digest}`);
  const pieces = boundary ? parseMultipart(body, boundary, digest) : [single(header(res, 'content-range'), body, digest)];
  const parts = group.map((r) => {
    const p = pieces.find((q) => q.start <= r.offset && r.offset + r.length <= q.start + q.data.length);
    if (!p) return undefined;
    return p.data.subarray(r.offset - p.start, r.offset - p.start + r.length);
  });
  if (parts.every((p): p is Buffer => p !== undefined)) return { parts, received: body.length, requests: 1, firstByteSeconds };
  if (group.length === 1) throw rangeError(digest, `bytes that do not cover ${spec}`);
  // A registry that answers one range of several: ask for each alone.
  const out: FetchedRanges = { parts: [], received: body.length, requests: 1, firstByteSeconds };
  for (const r of group) {
    const one = await fetchGroup(client, ref, digest, size, [r], signal);
    out.parts.push(...one.parts);
    out.received += one.received;
    out.requests += one.requests;
  }
  return out;
}

interface Piece {
  start: number;
  data: Buffer;
}

function contentRange(value: string | undefined, digest: string): { start: number; end: number } {
  const m = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/.exec((value ?? '').trim());
  if (!m || Number(m[2]) < Number(m[1])) throw rangeError(digest, `Content-Range "${value ?? '(none)'}"`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

function single(value: string | undefined, body: Buffer, digest: string): Piece {
  const { start, end } = contentRange(value, digest);
  if (end - start + 1 !== body.length) throw rangeError(digest, `${body.length} bytes for Content-Range "${value}"`);
  return { start, data: body };
}

/** The parts of a multipart/byteranges body: each a Content-Range header and exactly that many bytes. */
function parseMultipart(body: Buffer, boundary: string, digest: string): Piece[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const pieces: Piece[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw rangeError(digest, 'a multipart body without its boundary');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString('latin1') === '--') return pieces;
    const headEnd = body.indexOf('\r\n\r\n', at);
    if (headEnd < 0) throw rangeError(digest, 'a multipart part without the end of its headers');
    const headers = body.subarray(at, headEnd).toString('latin1').split('\r\n');
    const cr = headers.find((h) => /^content-range:/i.test(h))?.replace(/^content-range:/i, '');
    const { start, end } = contentRange(cr, digest);
    const dataStart = headEnd + 4;
    const dataEnd = dataStart + (end - start + 1);
    if (dataEnd > body.length) throw rangeError(digest, 'a multipart part shorter than its Content-Range');
    pieces.push({ start, data: body.subarray(dataStart, dataEnd) });
    if (body.subarray(dataEnd, dataEnd + 2).toString('latin1') !== '\r\n' || !body.subarray(dataEnd + 2, dataEnd + 2 + delimiter.length).equals(delimiter)) {
      throw rangeError(digest, 'a multipart part longer than its Content-Range');
    }
    at = dataEnd + 2;
  }
}

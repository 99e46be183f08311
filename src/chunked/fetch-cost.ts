// Whether a zstd:chunked layer is cheaper to pull partially or whole, from the bytes each way moves, the round trips
// a partial pull makes, and the link as the layer's own TOC fetch measured it. A partial pull is taken only when its
// estimated time is clearly below a full pull's, so on any link it is never the slower choice by more than the
// estimate's error; a layer none of whose files the store has is always fetched whole.

/** The link to the registry, as measured: one round trip, and the bytes per second a response body arrives at. */
export interface LinkEstimate {
  rttSeconds: number;
  bytesPerSecond: number;
}

/** One timed request: body bytes received, and the seconds from sending it to its last byte. */
export interface LinkSample {
  bytes: number;
  seconds: number;
}

/** What each way costs, for one layer. */
export interface FetchCosts {
  /** The layer blob's size (what a full pull fetches, in one request). */
  blobBytes: number;
  /** Compressed bytes a partial pull fetches (merged ranges), and the sequential requests it needs for them. */
  fetchBytes: number;
  requests: number;
  /** Uncompressed bytes a partial pull takes from the store's files (read and hashed, not fetched or decompressed). */
  localBytes: number;
}

/**
 * Rates of the work on this machine that differs between the two ways, in uncompressed bytes per second: taking a
 * file's content from the store (read, hashed, compared with its reflink) and decompressing zstd (which a full pull
 * does for the whole layer, a partial pull only for what it fetched). Conservative: the store read is taken as fast as
 * decompression, so content found locally earns a partial pull no CPU credit, only the bytes it does not fetch.
 */
export const LOCAL_BYTES_PER_SECOND = 1e9;
export const DECOMPRESS_BYTES_PER_SECOND = 1e9;

/** A partial pull is chosen only when its estimate is below this share of a full pull's. */
export const PARTIAL_MARGIN = 0.9;

/**
 * The link from timed requests (the TOC and tar-split fetch of each layer): the round trip is at most the quickest
 * request's time (an upper bound, so round trips are never underestimated), and the throughput at least the best
 * bytes per second any request saw (a lower bound). Undefined without a sample.
 */
export function estimateLink(samples: readonly LinkSample[]): LinkEstimate | undefined {
  const usable = samples.filter((s) => s.seconds > 0 && Number.isFinite(s.seconds) && s.bytes >= 0);
  if (usable.length === 0) return undefined;
  const rttSeconds = Math.min(...usable.map((s) => s.seconds));
  const bytesPerSecond = Math.max(1, ...usable.map((s) => s.bytes / s.seconds));
  return { rttSeconds, bytesPerSecond };
}

/** Estimated seconds of a full fetch and of a partial one (the TOC already fetched: it is paid either way). */
export function fetchSeconds(c: FetchCosts, link: LinkEstimate): { full: number; partial: number } {
  const full = link.rttSeconds + c.blobBytes / link.bytesPerSecond;
  // The store's content replaces decompressing it: both sides rebuild, hash and write the same tar otherwise.
  const partial = c.requests * link.rttSeconds + c.fetchBytes / link.bytesPerSecond + c.localBytes / LOCAL_BYTES_PER_SECOND - c.localBytes / DECOMPRESS_BYTES_PER_SECOND;
  return { full, partial };
}

/**
 * True when pulling the layer partially is clearly cheaper than fetching it whole on `link` (without a measured
 * link, bytes alone decide: at most `maxShare` of the blob fetched). Nothing local, or a fetch of about the whole blob,
 * is always a full fetch.
 */
export function choosePartial(c: FetchCosts, link: LinkEstimate | undefined, maxShare = 0.8): boolean {
  if (c.localBytes === 0 || c.fetchBytes >= PARTIAL_MARGIN * c.blobBytes) return false;
  if (!link) return c.fetchBytes <= maxShare * c.blobBytes;
  const t = fetchSeconds(c, link);
  return t.partial < PARTIAL_MARGIN * t.full;
}

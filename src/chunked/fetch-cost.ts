// Whether a zstd:chunked layer is cheaper to pull partially or whole, from the bytes each way moves, the round trips
// a partial pull makes, the local work each way does, and the link as the layer's own TOC fetch measured it. A partial
// pull is taken only when its estimated time is clearly below a full pull's, and every guess leans towards the full
// pull: on a fast link (loopback, a LAN) the partial's local work (reading and hashing every reused byte, opening
// every reused file) costs about what fetching and decompressing the blob does, so it must be counted, and a small
// TOC fetch cannot show how fast a link is, so it is not taken to say the link is slow.

/**
 * The link to the registry, as measured: one round trip, and the bytes per second a response body arrives at.
 * `bandwidthUnknown`: the sample was too small to show the link's throughput (its time was round trips, not bytes):
 * `bytesPerSecond` is then only a floor, and a fetch is taken to run as fast as a fast link allows once TCP's window
 * has grown (a round trip per doubling from its initial size), which on a near link is almost free.
 */
export interface LinkEstimate {
  rttSeconds: number;
  bytesPerSecond: number;
  bandwidthUnknown?: boolean;
}

/**
 * One timed request: body bytes received, the seconds from sending it to its last byte, and (where known) to its
 * response's headers.
 */
export interface LinkSample {
  bytes: number;
  seconds: number;
  firstByteSeconds?: number;
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
  /** Files a partial pull takes from the store (each opened and read; default: none counted). */
  localFiles?: number;
  /** Uncompressed bytes of the tar-split a partial pull checks and parses (a full pull never reads it). */
  splitBytes?: number;
}

/**
 * Rates of the work on this machine that differs between the two ways. Measured (2 AMD EPYC cores, Node 20): zstd
 * decompresses about 0.93 GB/s of content; sha256 hashes 1.7 GB/s. The native rebuild (native/partial_rebuild.cc)
 * takes a reused byte (read from the page cache, hashed against its TOC digest, copied into the tar) at 1.2 GB/s of
 * its thread's CPU time on the pull suite's distro layer (200 MiB of tar, 4106 regular files), each file's open
 * counted, about 1.45 GB/s without it, where a full apply's decode thread yields 0.8 GB/s of that tar
 * (bench/rebuild-rate.js, on a loaded machine: lower bounds). Taken at face value a reused byte costs less than
 * decompressing it, and this sum, which does not see a fast link's fetch overlap the decompression and the
 * extraction, would pull partially on loopback. At that rate the update suite's partial and full pulls of one changed
 * file on loopback took about the same time, the partial 4-7% less CPU: within the noise of its control (both
 * pulling whole), not the clear gain PARTIAL_MARGIN asks for. So the rate stays conservative, as when the rebuild
 * ran in JS and the partial pull took 5% longer: a reused byte is taken at 0.6 GB/s, and each reused file costs
 * 10 µs (its open and read; 4-11 µs measured), against decompression at 1 GB/s.
 */
export const LOCAL_BYTES_PER_SECOND = 0.6e9;
export const LOCAL_SECONDS_PER_FILE = 10e-6;
export const DECOMPRESS_BYTES_PER_SECOND = 1e9;
/**
 * Checking a tar-split against its TOC (hash, decompress, parse its JSON lines and base64, match every name): measured
 * 47 ms of main-thread CPU for a 5.9 MB tar-split and its 4911-file TOC, about 0.15 GB/s.
 */
export const SPLIT_BYTES_PER_SECOND = 0.15e9;

/** A partial pull is chosen only when its estimate is below this share of a full pull's. */
export const PARTIAL_MARGIN = 0.9;

/** A sample smaller than this cannot show a link's throughput (its time is round trips and server time). */
export const MIN_BANDWIDTH_SAMPLE = 4 << 20;
/** A fast link's throughput, taken when the sample cannot show it (10 Gbit/s: about loopback through a registry). */
export const FAST_LINK_BYTES_PER_SECOND = 1.25e9;
/** TCP's initial window (10 segments): a fetch's window doubles from it every round trip. */
const INITIAL_WINDOW = 10 * 1460;

/** Round trips a request of `bytes` needs while TCP's window doubles from its initial size (slow start). */
function rounds(bytes: number): number {
  return 1 + Math.log2(1 + bytes / INITIAL_WINDOW);
}

/**
 * The link from timed requests (the TOC and tar-split fetch of each layer), the throughput at least the best bytes per
 * second any request saw (a lower bound). When a request was large enough to show the throughput, the round trip is
 * at most the quickest request's time (an upper bound, so round trips are never underestimated); when none was, the
 * bandwidth is unknown (see LinkEstimate) and the requests' times are taken as slow-start round trips, so the round
 * trip is the quickest time divided by the round trips its bytes needed (on a link faster than that, the estimate of
 * a full fetch only gets smaller). Undefined without a sample.
 */
export function estimateLink(samples: readonly LinkSample[]): LinkEstimate | undefined {
  const usable = samples.filter((s) => s.seconds > 0 && Number.isFinite(s.seconds) && s.bytes >= 0);
  if (usable.length === 0) return undefined;
  const bytesPerSecond = Math.max(1, ...usable.map((s) => s.bytes / s.seconds));
  if (usable.some((s) => s.bytes >= MIN_BANDWIDTH_SAMPLE)) return { rttSeconds: Math.min(...usable.map((s) => s.seconds)), bytesPerSecond };
  return { rttSeconds: Math.min(...usable.map(slowStartRtt)), bytesPerSecond, bandwidthUnknown: true };
}

/**
 * The round trip a small request shows. Its time over the round trips slow start needs for its bytes is a floor: a
 * connection whose window has grown already (the manifest and config came on it) needs fewer, so on a far link that
 * floor can be several times too small and a far link look near. The wait for its headers is at least one round trip
 * on a far link; on a near, loaded machine it is mostly the server's and this process's time, so it is trusted only up
 * to half of the request's whole time.
 */
function slowStartRtt(s: LinkSample): number {
  const floor = s.seconds / rounds(s.bytes);
  const headers = s.firstByteSeconds !== undefined && s.firstByteSeconds > 0 ? Math.min(s.firstByteSeconds, s.seconds / 2) : 0;
  return Math.max(floor, headers);
}

/** Seconds one request of `bytes` takes on `link`. */
function requestSeconds(bytes: number, link: LinkEstimate): number {
  if (!link.bandwidthUnknown) return link.rttSeconds + bytes / link.bytesPerSecond;
  // Slow start: the window doubles each round trip, so `bytes` need about log2(bytes / window) of them; past that,
  // the link is taken as fast as a fast one can be.
  return rounds(bytes) * link.rttSeconds + bytes / Math.max(link.bytesPerSecond, FAST_LINK_BYTES_PER_SECOND);
}

/**
 * Estimated seconds of a full fetch and of a partial one (the TOC already fetched and checked: it is paid either way;
 * the tar-split is checked only by a partial pull).
 */
export function fetchSeconds(c: FetchCosts, link: LinkEstimate): { full: number; partial: number } {
  const full = requestSeconds(c.blobBytes, link);
  const perRequest = c.requests > 0 ? c.fetchBytes / c.requests : 0;
  // The store's content replaces decompressing it: both sides rebuild, hash and write the same tar otherwise.
  const local = c.localBytes / LOCAL_BYTES_PER_SECOND + (c.localFiles ?? 0) * LOCAL_SECONDS_PER_FILE - c.localBytes / DECOMPRESS_BYTES_PER_SECOND + (c.splitBytes ?? 0) / SPLIT_BYTES_PER_SECOND;
  const partial = c.requests * requestSeconds(perRequest, link) + local;
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

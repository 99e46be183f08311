// The partial-or-full decision for a zstd:chunked layer (src/chunked/fetch-cost.ts): bytes, round trips and the link
// as measured decide, with the partial's local work counted; a layer whose files all changed is fetched whole on every
// link, and a small TOC fetch is not taken to show a slow link.
import { describe, it, expect } from 'vitest';
import { choosePartial, estimateLink, fetchSeconds, type LinkEstimate } from '../src/chunked/fetch-cost.js';

const MB = 1e6;
const loopback: LinkEstimate = { rttSeconds: 0.0005, bytesPerSecond: 1000 * MB };
const wan: LinkEstimate = { rttSeconds: 0.05, bytesPerSecond: 12.5 * MB }; // 100 Mbit/s, 50 ms
const farFast: LinkEstimate = { rttSeconds: 0.3, bytesPerSecond: 125 * MB }; // 1 Gbit/s, 300 ms

describe('choosePartial', () => {
  const layer = 100 * MB;

  it('pulls partially when one small file changed on a slow link, whole on loopback (reading the store costs what fetching does)', () => {
    const oneFile = { blobBytes: layer, fetchBytes: 20_000, requests: 1, localBytes: 250 * MB, localFiles: 5000 };
    expect(choosePartial(oneFile, wan)).toBe(true);
    expect(choosePartial(oneFile, undefined)).toBe(true);
    expect(choosePartial(oneFile, loopback)).toBe(false);
    const t = fetchSeconds(oneFile, loopback);
    expect(t.partial).toBeGreaterThan(t.full);
  });

  // The update suite's layer (bench/RESULTS.md): 63.7 MiB blob, 200 MiB of tar in 4911 files, one of 472 bytes changed;
  // its tar-split, which a partial pull checks, is 5.9 MB.
  const bench = { blobBytes: 63.7 * 2 ** 20, fetchBytes: 472, requests: 1, localBytes: 200 * 2 ** 20, localFiles: 4910, splitBytes: 5.9 * MB };
  // Its TOC and tar-split: about 600 kB in one request.
  const tocBytes = 600_000;

  it('fetches whole on a loopback-like link measured by a small TOC fetch, even on a loaded machine', () => {
    for (const seconds of [0.003, 0.03]) {
      const link = estimateLink([{ bytes: tocBytes, seconds }]);
      expect(link?.bandwidthUnknown).toBe(true);
      expect(choosePartial(bench, link)).toBe(false);
    }
  });

  it('pulls partially for one changed file on 100 Mbit/s with 50 ms round trips, as its TOC fetch measured it', () => {
    // Slow start: about six round trips for the TOC's bytes, then their transfer.
    const link = estimateLink([{ bytes: tocBytes, seconds: 6 * 0.05 + tocBytes / (12.5 * MB) }]);
    expect(choosePartial(bench, link)).toBe(true);
    expect(choosePartial(bench, wan)).toBe(true);
    const all = { ...bench, fetchBytes: bench.blobBytes - 50_000, requests: 4, localBytes: 0, localFiles: 0 };
    expect(choosePartial(all, link)).toBe(false);
  });

  it('pulls partially on 100 Mbit/s with 50 ms round trips when the TOC came on a warm connection: its headers waited a round trip', () => {
    // One round trip, then the transfer: a connection the manifest and config widened needs no slow start. Taken as
    // slow-start round trips alone, that time reads as a 15 ms link, where a full fetch looks cheap.
    const seconds = 0.05 + tocBytes / (12.5 * MB);
    expect(choosePartial(bench, estimateLink([{ bytes: tocBytes, seconds }]))).toBe(false);
    expect(choosePartial(bench, estimateLink([{ bytes: tocBytes, seconds, firstByteSeconds: 0.05 }]))).toBe(true);
  });

  it('fetches whole on loopback whatever the wait for the headers, quiet or loaded', () => {
    for (const [seconds, firstByteSeconds] of [[0.003, 0.002], [0.03, 0.028], [0.03, 0.003]] as const) {
      expect(choosePartial(bench, estimateLink([{ bytes: tocBytes, seconds, firstByteSeconds }]))).toBe(false);
    }
  });

  it('counts checking the tar-split, which only a partial pull does: a large one for little saved is a full fetch', () => {
    const half = { blobBytes: 10 * MB, fetchBytes: 5 * MB, requests: 1, localBytes: 5 * MB, localFiles: 10 };
    expect(choosePartial(half, wan)).toBe(true);
    expect(choosePartial({ ...half, splitBytes: 100 * MB }, wan)).toBe(false);
  });

  it('fetches whole when every file changed, whatever the link', () => {
    const all = { blobBytes: layer, fetchBytes: layer - 50_000, requests: 4, localBytes: 0 };
    for (const link of [loopback, wan, farFast, undefined]) expect(choosePartial(all, link)).toBe(false);
  });

  it('fetches whole when the partial fetch is about the whole blob, even with a few files local', () => {
    const most = { blobBytes: layer, fetchBytes: 0.92 * layer, requests: 3, localBytes: 1 * MB };
    for (const link of [loopback, wan, undefined]) expect(choosePartial(most, link)).toBe(false);
  });

  it('counts round trips: many requests to save some bytes is a full fetch on a far link, a partial one on a near slow one', () => {
    const scattered = { blobBytes: 20 * MB, fetchBytes: 12 * MB, requests: 40, localBytes: 20 * MB };
    const nearSlow: LinkEstimate = { rttSeconds: 0.005, bytesPerSecond: 1.25 * MB }; // 10 Mbit/s, 5 ms
    expect(choosePartial(scattered, farFast)).toBe(false);
    expect(choosePartial(scattered, nearSlow)).toBe(true);
    const t = fetchSeconds(scattered, farFast);
    expect(t.partial).toBeGreaterThan(t.full);
  });

  it('without a measured link, decides by the share of the blob fetched', () => {
    const half = { blobBytes: layer, fetchBytes: 0.5 * layer, requests: 2, localBytes: 60 * MB };
    const most = { blobBytes: layer, fetchBytes: 0.85 * layer, requests: 2, localBytes: 10 * MB };
    expect(choosePartial(half, undefined)).toBe(true);
    expect(choosePartial(most, undefined)).toBe(false);
  });
});

describe('estimateLink', () => {
  it('takes the quickest request as the round trip and the best rate as the throughput when a request was large', () => {
    expect(estimateLink([{ bytes: 50_000, seconds: 0.06 }, { bytes: 8 * MB, seconds: 0.8 }])).toEqual({ rttSeconds: 0.06, bytesPerSecond: 10 * MB });
  });

  it('takes the bandwidth as unknown from small requests, whose time is round trips, so a fast link does not look slow', () => {
    const link = estimateLink([{ bytes: 2 * MB, seconds: 0.2 }])!;
    expect(link.bandwidthUnknown).toBe(true);
    expect(link.bytesPerSecond).toBe(10 * MB);
    expect(link.rttSeconds).toBeLessThan(0.2 / 5);
    // A 100 MB fetch is not estimated at the 10 MB/s the small request happened to show.
    expect(fetchSeconds({ blobBytes: 100 * MB, fetchBytes: 0, requests: 0, localBytes: 0 }, link).full).toBeLessThan(2);
  });

  it('knows nothing without a timed request', () => {
    expect(estimateLink([])).toBeUndefined();
    expect(estimateLink([{ bytes: 10, seconds: 0 }])).toBeUndefined();
  });
});

// The partial-or-full decision for a zstd:chunked layer (src/chunked/fetch-cost.ts): bytes, round trips and the link
// as measured decide; a layer whose files all changed is fetched whole on every link.
import { describe, it, expect } from 'vitest';
import { choosePartial, estimateLink, fetchSeconds, type LinkEstimate } from '../src/chunked/fetch-cost.js';

const MB = 1e6;
const loopback: LinkEstimate = { rttSeconds: 0.0005, bytesPerSecond: 1000 * MB };
const wan: LinkEstimate = { rttSeconds: 0.05, bytesPerSecond: 12.5 * MB }; // 100 Mbit/s, 50 ms
const farFast: LinkEstimate = { rttSeconds: 0.3, bytesPerSecond: 125 * MB }; // 1 Gbit/s, 300 ms

describe('choosePartial', () => {
  const layer = 100 * MB;

  it('pulls partially when one small file changed, on loopback and on a slow link', () => {
    const oneFile = { blobBytes: layer, fetchBytes: 20_000, requests: 1, localBytes: 250 * MB };
    expect(choosePartial(oneFile, loopback)).toBe(true);
    expect(choosePartial(oneFile, wan)).toBe(true);
    expect(choosePartial(oneFile, undefined)).toBe(true);
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
  it('takes the quickest request as the round trip and the best rate as the throughput', () => {
    expect(estimateLink([{ bytes: 50_000, seconds: 0.06 }, { bytes: 2 * MB, seconds: 0.2 }])).toEqual({ rttSeconds: 0.06, bytesPerSecond: 10 * MB });
  });

  it('knows nothing without a timed request', () => {
    expect(estimateLink([])).toBeUndefined();
    expect(estimateLink([{ bytes: 10, seconds: 0 }])).toBeUndefined();
  });
});

// fetchBlobRanges against registries that answer a multi-range request in each way HTTP allows: multipart/byteranges,
// or one range only (then each range is asked for alone); the whole blob is not read (the caller fetches it its own
// way); framing that does not add up is refused.
import { Readable } from 'node:stream';
import { describe, it, expect } from 'vitest';
import { fetchBlobRanges, type RangeClient } from '../src/registry/ranges.js';
import { prng } from './support/fixtures.js';

const blob = prng(10_000, 'ranges');
const digest = `sha256:${'a'.repeat(64)}`;

type Answer = (ranges: [number, number][]) => { status: number; headers: Record<string, string>; body: Buffer };

function client(answer: Answer): RangeClient & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    requestBlob: async (_ref, _digest, headers) => {
      asked.push(headers.range!);
      const ranges = headers.range!.replace('bytes=', '').split(',').map((r) => r.split('-').map(Number) as [number, number]);
      const a = answer(ranges);
      return { statusCode: a.status, headers: { ...a.headers, 'content-length': String(a.body.length) }, body: Readable.from([a.body]) } as never;
    },
  };
}

function multipart(ranges: [number, number][], tamper = 0): { status: number; headers: Record<string, string>; body: Buffer } {
  const parts = ranges.map(([s, e]) =>
    Buffer.concat([Buffer.from(`--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${s}-${e}/${blob.length}\r\n\r\n`), blob.subarray(s, e + 1 + tamper), Buffer.from('\r\n')]),
  );
  return { status: 206, headers: { 'content-type': 'multipart/byteranges; boundary=XYZ' }, body: Buffer.concat([...parts, Buffer.from('--XYZ--\r\n')]) };
}

const want = [
  { offset: 10, length: 100 },
  { offset: 5000, length: 20 },
  { offset: 9990, length: 10 },
];
const expected = want.map((r) => blob.subarray(r.offset, r.offset + r.length));

describe('fetchBlobRanges', () => {
  it('reads a multipart/byteranges answer: every range in one request', async () => {
    const c = client((r) => multipart(r));
    const got = await fetchBlobRanges(c, 'h/r', digest, blob.length, want);
    expect(got.parts).toEqual(expected);
    expect(c.asked).toEqual(['bytes=10-109,5000-5019,9990-9999']);
  });

  it('asks for each range alone when the registry answers only one of several', async () => {
    const c = client((r) => ({ status: 206, headers: { 'content-range': `bytes ${r[0]![0]}-${r[0]![1]}/${blob.length}` }, body: blob.subarray(r[0]![0], r[0]![1] + 1) }));
    const got = await fetchBlobRanges(c, 'h/r', digest, blob.length, want);
    expect(got.parts).toEqual(expected);
    expect(got.requests).toBe(4);
  });

  it('fails with CARRIER_UNSUPPORTED, without reading it, when the registry ignores Range and answers the whole blob', async () => {
    const c = client(() => ({ status: 200, headers: {}, body: blob }));
    await expect(fetchBlobRanges(c, 'h/r', digest, blob.length, want)).rejects.toMatchObject({ code: 'CARRIER_UNSUPPORTED' });
  });

  it('refuses a multipart part longer than its Content-Range, and ranges outside the blob', async () => {
    await expect(fetchBlobRanges(client((r) => multipart(r, 3)), 'h/r', digest, blob.length, want)).rejects.toMatchObject({ code: 'CARRIER_REGISTRY_ERROR' });
    await expect(fetchBlobRanges(client((r) => multipart(r)), 'h/r', digest, blob.length, [{ offset: 9990, length: 20 }])).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
  });
});

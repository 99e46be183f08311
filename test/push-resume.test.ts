// A streamed upload reset mid-PATCH resumes from the offset the registry reports. The CNCF registry cancels an upload
// whose Location state is older than its data (so after a drop it restarts the blob, which push-faults.test.ts
// covers); a registry that keeps the bytes it received is played here by a small upload endpoint, the one place a
// fault (a reset after part of the body) must be injected inside a request.
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, it, expect } from 'vitest';
import { RegistryClient } from '../src/index.js';
import { BlobPusher } from '../src/registry/upload.js';
import { parseReference } from '../src/reference.js';

interface Seen {
  method: string;
  contentRange?: string;
  contentLength?: string;
}

/** An upload endpoint that keeps what it received; the first PATCH is reset after `cut` bytes. */
async function uploadEndpoint(cut: number): Promise<{ port: number; stored: () => Buffer; seen: Seen[]; close: () => Promise<void> }> {
  let data = Buffer.alloc(0);
  let patches = 0;
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: Seen = { method: req.method ?? '' };
    if (req.headers['content-range'] !== undefined) entry.contentRange = req.headers['content-range'];
    if (req.headers['content-length'] !== undefined) entry.contentLength = req.headers['content-length'];
    if (url.pathname.includes('/blobs/uploads/')) seen.push(entry);
    const range = (): Record<string, string> => ({ range: `0-${Math.max(0, data.length - 1)}`, location: '/v2/r/blob/blobs/uploads/u1' });
    if (url.pathname === '/v2/') return res.writeHead(200).end();
    if (req.method === 'POST') return res.writeHead(202, { location: '/v2/r/blob/blobs/uploads/u1', 'content-length': '0' }).end();
    if (req.method === 'GET') return res.writeHead(204, range()).end();
    if (req.method === 'PATCH') {
      const first = ++patches === 1;
      const parts: Buffer[] = [];
      let got = 0;
      req.on('data', (c: Buffer) => {
        if (first && got + c.length >= cut) {
          parts.push(c.subarray(0, cut - got));
          data = Buffer.concat([data, ...parts]);
          req.socket.resetAndDestroy();
          return;
        }
        parts.push(c);
        got += c.length;
      });
      req.on('end', () => {
        data = Buffer.concat([data, ...parts]);
        res.writeHead(202, { ...range(), 'content-length': '0' }).end();
      });
      return;
    }
    if (req.method === 'PUT') {
      req.resume();
      const digest = `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
      if (url.searchParams.get('digest') !== digest) return res.writeHead(400).end();
      return res.writeHead(201, { 'docker-content-digest': digest, 'content-length': '0' }).end();
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    port: (server.address() as AddressInfo).port,
    stored: () => data,
    seen,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

describe('streamed blob upload', () => {
  it('resumes a PATCH reset mid-stream from the offset the registry reports, and the registry ends with the right bytes', async () => {
    const blob = crypto.randomBytes(3 << 20);
    const digest = `sha256:${crypto.createHash('sha256').update(blob).digest('hex')}`;
    const cut = 1_000_003;
    const ep = await uploadEndpoint(cut);
    const client = new RegistryClient({ tlsVerify: false, retryBaseMs: 10 });
    try {
      const pusher = new BlobPusher(client, parseReference(`127.0.0.1:${ep.port}/r/blob:1`), { chunkSize: 256 << 10 });
      const open = async (): Promise<AsyncIterable<Buffer>> =>
        (async function* () {
          for (let i = 0; i < blob.length; i += 64 << 10) yield blob.subarray(i, i + (64 << 10));
        })();
      const r = await pusher.upload({ open, digest, size: blob.length, what: 'a test blob' });
      expect(r).toEqual({ digest, size: blob.length });
      expect(ep.stored().equals(blob)).toBe(true);
      expect(ep.seen.map((s) => [s.method, s.contentRange ?? null, s.contentLength ?? null])).toEqual([
        ['POST', null, '0'],
        ['PATCH', `0-${blob.length - 1}`, String(blob.length)],
        ['GET', null, null],
        ['PATCH', `${cut}-${blob.length - 1}`, String(blob.length - cut)],
        ['PUT', null, '0'],
      ]);
    } finally {
      await client.close();
      await ep.close();
    }
  });
});

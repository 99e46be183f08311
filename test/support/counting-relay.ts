/**
 * A small HTTP relay in front of a plain-http test registry that counts blob GETs per digest, can slow blob bodies
 * down (so that several pulls surely overlap), and can corrupt the next blob body it relays (one flipped byte).
 */
import http from 'node:http';
import net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export interface CountingRelay {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Blob GETs seen, by digest (`sha256:…`). */
  blobGets: Map<string, number>;
  /** Blob bodies relayed to their end, by digest. */
  blobsDone: Map<string, number>;
  /** Bytes per second each blob body is relayed at (0: as fast as it comes). */
  rate: number;
  /** Flip one byte in the body of the next blob GET of this digest. */
  corruptNext?: string;
  /** Resolves once `blobGets` holds `n` GETs in total. */
  waitForBlobGets(n: number): Promise<void>;
  stop(): Promise<void>;
}

/** Passes bytes on at `rate()` bytes per second (in slices of 16 KiB); flips the first byte when `flip`. */
function throttle(rate: () => number, flip: boolean): Transform {
  let flipped = !flip;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (!flipped && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] = chunk[0]! ^ 0xff;
        flipped = true;
      }
      const r = rate();
      if (r <= 0) return done(null, chunk);
      const push = (off: number): void => {
        if (off >= chunk.length) return done();
        const slice = chunk.subarray(off, off + 16 * 1024);
        this.push(slice);
        setTimeout(() => push(off + slice.length), (slice.length / r) * 1000);
      };
      push(0);
    },
  });
}

export async function startCountingRelay(upstream: string): Promise<CountingRelay> {
  const up = new URL(upstream);
  const waiters: { n: number; resolve: () => void }[] = [];
  const total = (): number => [...relay.blobGets.values()].reduce((a, b) => a + b, 0);
  const sockets = new Set<net.Socket>();
  const relay: CountingRelay = {
    host: '',
    blobGets: new Map(),
    blobsDone: new Map(),
    rate: 0,
    waitForBlobGets(n) {
      if (total() >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const m = req.method === 'GET' ? /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '') : null;
    let flip = false;
    if (m) {
      const digest = m[1]!;
      relay.blobGets.set(digest, (relay.blobGets.get(digest) ?? 0) + 1);
      for (const w of waiters.filter((x) => total() >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      if (relay.corruptNext === digest) {
        flip = true;
        relay.corruptNext = undefined;
      }
    }
    const fwd = http.request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (m && (r.statusCode === 200 || r.statusCode === 206)) {
        const digest = m[1]!;
        res.on('finish', () => relay.blobsDone.set(digest, (relay.blobsDone.get(digest) ?? 0) + 1));
        r.pipe(throttle(() => relay.rate, flip)).pipe(res);
      }
      else r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    res.on('close', () => fwd.destroy());
    req.pipe(fwd);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return relay;
}

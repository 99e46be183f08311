/**
 * An in-process HTTP proxy between a registry client and a test registry that injects faults per request: reset
 * the connection after N body bytes, answer an error status N times (with Retry-After), drip bytes slowly, flip a
 * byte, truncate, rewrite response headers, answer with a synthetic response, never answer, or redirect blob GETs to a second
 * listener (another origin, standing in for object storage) that records whether Authorization reached it.
 * Every request is logged.
 */
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  authorization: boolean;
  /** Index of the rule that fired, if any. */
  fault?: string;
}

export type Fault =
  /** Forward the response, then reset (RST) the connection after `afterBytes` body bytes. */
  | { kind: 'reset'; afterBytes: number }
  /** Forward the response, then close the connection (FIN) after `afterBytes` body bytes. */
  | { kind: 'truncate'; afterBytes: number }
  /** Answer `status` without contacting the registry. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward the response, writing `chunk` bytes every `intervalMs`. */
  | { kind: 'drip'; chunk: number; intervalMs: number }
  /** Forward the response with the byte at `at` inverted. */
  | { kind: 'flip'; at: number }
  /** Forward the response with these headers replaced (a null value removes the header). */
  | { kind: 'headers'; set: Record<string, string | null> }
  /**
   * Answer with this response (a Readable body is streamed as is, without Content-Length unless given); headers and
   * body may be made from the request (to answer a `Range` where it asks).
   */
  | {
      kind: 'respond';
      status: number;
      headers?: Record<string, string> | ((req: http.IncomingMessage) => Record<string, string>);
      body: Buffer | ((req: http.IncomingMessage) => Readable);
    }
  /** Never answer: the status line and headers never come (the connection stays open until stop()). */
  | { kind: 'hang' }
  /** Forward the request, then reset the client's connection instead of answering (the registry acted on it). */
  | { kind: 'drop' }
  /** Fetch the response from the registry (with the client's headers), then answer 307 to the second listener. */
  | { kind: 'redirect'; status?: 301 | 302 | 303 | 307 | 308 };

export interface FaultRule {
  /** Which requests the rule applies to (default: all). */
  match?: (req: { method: string; path: string; headers: http.IncomingHttpHeaders }) => boolean;
  fault: Fault;
  /** How many times it fires (default: once). Infinity for always. */
  times?: number;
  name?: string;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT` of the proxy. */
  host: string;
  url: string;
  requests: LoggedRequest[];
  /** The second origin that redirected requests land on. */
  other: { host: string; requests: LoggedRequest[] };
  addRule(rule: FaultRule): void;
  clearRules(): void;
  /** Rules that have not fired their `times` yet. */
  pending(): number;
  stop(): Promise<void>;
}

/** Convenience matchers. */
export const isBlobGet = (req: { method: string; path: string }): boolean => req.method === 'GET' && /\/blobs\/sha256:/.test(req.path);
export const isManifestGet = (req: { method: string; path: string }): boolean =>
  (req.method === 'GET' || req.method === 'HEAD') && /\/manifests\//.test(req.path);

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

export interface FaultProxyOptions {
  /**
   * Forward the client's Host header (default: the upstream's): the registry then writes upload Locations naming the
   * proxy, so a push's PATCH and PUT requests pass through it too.
   */
  keepHost?: boolean;
}

/** Starts the proxy in front of `upstream` (`http://127.0.0.1:PORT` of a plain-http registry). */
export async function startFaultProxy(upstream: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  const rules: (FaultRule & { left: number })[] = [];
  const requests: LoggedRequest[] = [];
  const otherRequests: LoggedRequest[] = [];
  const stored = new Map<string, { status: number; headers: http.IncomingHttpHeaders; body: Buffer }>();
  let otherHost = '';

  function forward(req: http.IncomingMessage, body: Buffer, path = req.url ?? '/'): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: options.keepHost ? (req.headers.host ?? up.host) : up.host };
      const r = http.request({ hostname: up.hostname, port: up.port, method: req.method, path, headers }, resolve);
      r.on('error', reject);
      r.end(body);
    });
  }

  function copyHeaders(res: http.ServerResponse, headers: http.IncomingHttpHeaders, set: Record<string, string | null> = {}): void {
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined || HOP_BY_HOP.has(k) || Object.hasOwn(set, k)) continue;
      res.setHeader(k, v);
    }
    for (const [k, v] of Object.entries(set)) if (v !== null) res.setHeader(k, v);
  }

  async function readBody(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  const server = http.createServer(async (req, res) => {
    const entry: LoggedRequest = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization !== undefined };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    requests.push(entry);
    const body = await readBody(req);
    const rule = rules.find((r) => r.left > 0 && (r.match ? r.match({ method: entry.method, path: entry.path, headers: req.headers }) : true));
    try {
      if (!rule) {
        const upRes = await forward(req, body);
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, stripHop(upRes.headers));
        upRes.pipe(res);
        return;
      }
      rule.left--;
      entry.fault = rule.name ?? rule.fault.kind;
      const f = rule.fault;
      switch (f.kind) {
        case 'status': {
          res.writeHead(f.status, { 'content-type': 'application/json', ...(f.headers ?? {}) });
          res.end(f.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${f.status}` }] }));
          return;
        }
        case 'respond': {
          res.writeHead(f.status, typeof f.headers === 'function' ? f.headers(req) : (f.headers ?? {}));
          if (Buffer.isBuffer(f.body)) res.end(f.body);
          else {
            const s = f.body(req);
            s.on('error', () => res.destroy());
            res.on('close', () => s.destroy());
            s.pipe(res);
          }
          return;
        }
        case 'hang':
          return;
        case 'drop': {
          const upRes = await forward(req, body);
          upRes.resume();
          res.socket?.resetAndDestroy();
          return;
        }
        case 'redirect': {
          const upRes = await forward(req, body);
          const chunks: Buffer[] = [];
          for await (const c of upRes) chunks.push(c as Buffer);
          const token = crypto.randomBytes(8).toString('hex');
          stored.set(token, { status: upRes.statusCode ?? 200, headers: upRes.headers, body: Buffer.concat(chunks) });
          res.writeHead(f.status ?? 307, { location: `http://${otherHost}/object/${token}`, 'content-length': '0' });
          res.end();
          return;
        }
        default: {
          const upRes = await forward(req, body);
          await transform(upRes, res, f);
          return;
        }
      }
    } catch {
      res.destroy();
    }
  });

  function stripHop(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
    return out;
  }

  async function transform(upRes: http.IncomingMessage, res: http.ServerResponse, f: Fault): Promise<void> {
    copyHeaders(res, upRes.headers, f.kind === 'headers' ? f.set : {});
    res.statusCode = upRes.statusCode ?? 502;
    res.flushHeaders();
    let sent = 0;
    for await (const c of upRes) {
      let chunk = c as Buffer;
      if (f.kind === 'reset' || f.kind === 'truncate') {
        const room = f.afterBytes - sent;
        if (chunk.length >= room) {
          if (room > 0) await write(res, chunk.subarray(0, room));
          await new Promise((r) => setTimeout(r, 20));
          if (f.kind === 'reset') res.socket?.resetAndDestroy();
          else res.socket?.destroySoon();
          upRes.destroy();
          return;
        }
      }
      if (f.kind === 'flip' && f.at >= sent && f.at < sent + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[f.at - sent] = chunk[f.at - sent]! ^ 0xff;
      }
      if (f.kind === 'drip') {
        for (let i = 0; i < chunk.length; i += f.chunk) {
          if (res.destroyed) return;
          await write(res, chunk.subarray(i, i + f.chunk));
          await new Promise((r) => setTimeout(r, f.intervalMs));
        }
      } else {
        await write(res, chunk);
      }
      sent += chunk.length;
    }
    res.end();
  }

  function write(res: http.ServerResponse, b: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (res.destroyed) return resolve();
      if (res.write(b)) return resolve();
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  // The second origin: serves what a redirect stored, honouring Range, and records what arrived.
  const other = http.createServer((req, res) => {
    const entry: LoggedRequest = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization !== undefined };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    otherRequests.push(entry);
    const token = /^\/object\/([0-9a-f]+)$/.exec(req.url ?? '')?.[1];
    const obj = token === undefined ? undefined : stored.get(token);
    if (!obj) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const type = String(obj.headers['content-type'] ?? 'application/octet-stream');
    if (m) {
      const start = Number(m[1]);
      res.writeHead(206, { 'content-type': type, 'content-range': `bytes ${start}-${obj.body.length - 1}/${obj.body.length}`, 'content-length': obj.body.length - start });
      res.end(obj.body.subarray(start));
      return;
    }
    res.writeHead(obj.status, { 'content-type': type, 'content-length': obj.body.length });
    res.end(obj.body);
  });

  const port = await listen(server);
  const otherPort = await listen(other);
  otherHost = `127.0.0.1:${otherPort}`;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    other: { host: otherHost, requests: otherRequests },
    addRule(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    clearRules() {
      rules.length = 0;
    },
    pending() {
      return rules.filter((r) => r.left > 0 && r.left !== Infinity).length;
    },
    async stop() {
      for (const s of [server, other]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}

/** Between tests: the proxy forgets its rules and the requests it logged (its other origin's too). */
export function resetProxy(proxy: FaultProxy): void {
  proxy.clearRules();
  proxy.requests.length = 0;
  proxy.other.requests.length = 0;
}

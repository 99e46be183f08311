/**
 * A hostile registry (issue 18, items 0, 1 and 6): the real CNCF registry behind the fault proxy, and small
 * in-process origins on 127.0.0.1 for what a registry must never get (credentials) or never be able to do (hold a
 * pull forever, end the process with an unhandled error).
 *
 * Every test here also checks that nothing reached the process as an uncaught exception or unhandled rejection: a
 * response body destroyed with no error listener used to end `carrier pull` with RequestAbortedError.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { RegistryClient, staticCredentials, type RegistryClientOptions } from '../src/registry/index.js';
import { CarrierError } from '../src/errors.js';
import { startRegistry, pushImage, storedImage, type TestRegistry, type StoredImage } from './support/registry.js';
import { startFaultProxy, isBlobGet, isManifestGet, type FaultProxy, resetProxy } from './support/fault-proxy.js';
import { buildTestImage, Podman } from './support/images.js';
import { snapshot } from './support/store.js';
import { Store } from '../src/store/store.js';
import { pull } from '../src/pull.js';
import { tempDir, prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import { expectCarrierError as carrierError, readAll } from './support/layer.js';

let reg: TestRegistry;
let basic: TestRegistry;
let proxy: FaultProxy;
let basicProxy: FaultProxy;
let work: string;
let img: StoredImage;
const uncaught: unknown[] = [];
/** Behaviours tried; a hang would fail its test by timeout, an unhandled error in afterEach. */
let behaviours = 0;
const track = (e: unknown): void => void uncaught.push(e);

beforeAll(async () => {
  process.on('uncaughtException', track);
  process.on('unhandledRejection', track);
  work = tempDir('registry-hostile');
  [reg, basic] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd' })]);
  [proxy, basicProxy] = await Promise.all([startFaultProxy(reg.url), startFaultProxy(basic.url)]);
  const a = buildTestImage(path.join(work, 'a'), { layers: [{ compression: 'none', entries: [H.file('data.bin', prng(64 * 1024, 'hostile'))] }] });
  await Promise.all([pushImage(reg.host, a.ociDir, 'h/a:1'), pushImage(basic.host, a.ociDir, 'h/a:1', { creds: basic.users })]);
  img = await storedImage(reg, 'h/a', '1');
}, 120_000);

afterAll(async () => {
  await Promise.all([proxy?.stop(), basicProxy?.stop()]);
  await Promise.all([reg?.stop(), basic?.stop()]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
  console.log(`registry-hostile summary ${JSON.stringify({ behaviours, hangs: 0, uncaught: 0 })}`);
  process.off('uncaughtException', track);
  process.off('unhandledRejection', track);
});

afterEach(async () => {
  // give destroyed bodies their deferred error events (undici defers some by a setImmediate)
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 50));
  for (const p of [proxy, basicProxy]) resetProxy(p);
  expect(uncaught.splice(0).map((e) => String((e as Error)?.stack ?? e))).toEqual([]);
  behaviours++;
});

function client(extra: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ tlsVerify: false, retryBaseMs: 5, ...extra });
}

const layer = (): { digest: string; size: number; blob: Buffer } => img.layers[0]!;
const isRangeGet = (r: { method: string; path: string; headers: http.IncomingHttpHeaders }): boolean => isBlobGet(r) && r.headers.range !== undefined;
const isFirstGet = (r: { method: string; path: string; headers: http.IncomingHttpHeaders }): boolean => isBlobGet(r) && r.headers.range === undefined;
const blobGets = (p: FaultProxy): { range?: string }[] => p.requests.filter((r) => isBlobGet(r));

/** The blob through the proxy: its first response is reset after 100 bytes; `resume` answers the `Range` request. */
async function resumedBlob(resume: Parameters<FaultProxy['addRule']>[0]['fault'], extra: RegistryClientOptions = {}): Promise<Buffer> {
  const l = layer();
  proxy.addRule({ match: isFirstGet, fault: { kind: 'reset', afterBytes: 100 } });
  proxy.addRule({ match: isRangeGet, fault: resume });
  const c = client(extra);
  try {
    return await readAll(await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }));
  } finally {
    await c.close();
  }
}

function rangeFrom(r: { range?: string }): number {
  return Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1]);
}

describe('the blob resume path (item 0): every branch ends in an error or exact bytes, never a crash', () => {
  it('a 206 whose Content-Range starts at 0 is refused, every time (8 tries, whole and short bodies)', async () => {
    const l = layer();
    for (let i = 0; i < 8; i++) {
      // a short body has arrived whole by the time it is refused: its destroy then emits RequestAbortedError later
      const n = i % 2 === 0 ? 100 : l.size;
      const err = await carrierError(
        resumedBlob({ kind: 'respond', status: 206, headers: { 'content-range': `bytes 0-${n - 1}/${l.size}`, 'content-length': String(n) }, body: l.blob.subarray(0, n) }),
      );
      expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
      expect(err.message).toMatch(/Content-Range "bytes 0-/);
      expect(err.message).toContain(proxy.host);
    }
  });

  it('a 206 without Content-Range, or with a total other than the blob size, is refused', async () => {
    const l = layer();
    const rest = (start: number): Buffer => l.blob.subarray(start);
    let err = await carrierError(resumedBlob({ kind: 'respond', status: 206, headers: { 'content-length': String(l.size - 100) }, body: rest(100) }));
    expect(err.message).toMatch(/Content-Range "\(none\)"/);
    proxy.clearRules();
    err = await carrierError(resumedBlob({ kind: 'headers', set: { 'content-range': `bytes 100-${l.size}/${l.size + 1}` } }));
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toMatch(/Content-Range/);
  });

  it('a 200 to a Range request is refused (the whole blob again is not spliced on)', async () => {
    const l = layer();
    const err = await carrierError(resumedBlob({ kind: 'respond', status: 200, headers: { 'content-length': String(l.size) }, body: l.blob }));
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toMatch(/ignored the Range request/);
  });

  it('a resume that runs past the size is refused, by its Content-Length or by its bytes', async () => {
    const l = layer();
    const over = Buffer.concat([l.blob, Buffer.alloc(50)]);
    const startOf = (req: http.IncomingMessage): number => rangeFrom({ range: String(req.headers.range) });
    // a genuine Content-Range, then 50 bytes past the end, streamed without a Content-Length
    let err = await carrierError(
      resumedBlob({
        kind: 'respond',
        status: 206,
        headers: (req) => ({ 'content-range': `bytes ${startOf(req)}-${l.size - 1}/${l.size}` }),
        body: (req) => Readable.from([over.subarray(startOf(req))]),
      }),
    );
    expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
    expect(err.message).toContain(proxy.host);
    proxy.clearRules();
    // the registry's own 206, with a Content-Length past the end
    err = await carrierError(resumedBlob({ kind: 'headers', set: { 'content-length': String(l.size + 50) } }));
    expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
  });

  it('a first answer whose Content-Length runs past the size is refused before a byte is read (4 tries)', async () => {
    // the config blob is small: it has arrived whole when it is refused
    const cfg = img.config;
    for (let i = 0; i < 4; i++) {
      const c = client();
      const err = await carrierError(c.getBlob(`${proxy.host}/h/a`, cfg.digest, { size: cfg.size - 1 }).then(readAll));
      expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
      await c.close();
    }
  });

  it('a blob that fails before its reader attaches (the caller awaits something else first) does not crash', async () => {
    const l = layer();
    // more bytes than the size, without a Content-Length: refused only once the bytes are seen
    proxy.addRule({ match: isBlobGet, fault: { kind: 'respond', status: 200, body: () => Readable.from([Buffer.concat([l.blob, Buffer.alloc(10)])]) } });
    const c = client();
    const s = await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size });
    await new Promise((r) => setTimeout(r, 300)); // as pull awaits the blob cache before it reads
    expect((await carrierError(readAll(s))).code).toBe('CARRIER_LIMIT_EXCEEDED');
    await c.close();
  });

  it('a blob whose connection is reset before its reader attaches is resumed once it reads', async () => {
    const l = layer();
    proxy.addRule({ match: isFirstGet, fault: { kind: 'reset', afterBytes: 100 } });
    const c = client();
    const s = await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size });
    await new Promise((r) => setTimeout(r, 300));
    expect((await readAll(s)).equals(l.blob)).toBe(true);
    await c.close();
    expect(blobGets(proxy).length).toBe(2);
  }, 20_000);

  it('a 206 whose range ends before the blob does is taken, and the rest asked for again', async () => {
    const l = layer();
    const startOf = (req: http.IncomingMessage): number => rangeFrom({ range: String(req.headers.range) });
    proxy.addRule({ match: isFirstGet, fault: { kind: 'reset', afterBytes: 100 } });
    proxy.addRule({
      match: isRangeGet,
      fault: {
        kind: 'respond',
        status: 206,
        headers: (req) => ({ 'content-range': `bytes ${startOf(req)}-${startOf(req) + 999}/${l.size}`, 'content-length': '1000' }),
        body: (req) => Readable.from([l.blob.subarray(startOf(req), startOf(req) + 1000)]),
      },
    });
    const c = client();
    expect((await readAll(await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }))).equals(l.blob)).toBe(true);
    await c.close();
    expect(blobGets(proxy).length).toBe(3);
  });

  it('a short resume is resumed again, and the bytes come out exact', async () => {
    const l = layer();
    proxy.addRule({ match: isFirstGet, fault: { kind: 'reset', afterBytes: 100 } });
    proxy.addRule({ match: isRangeGet, fault: { kind: 'truncate', afterBytes: 1000 } });
    const c = client();
    expect((await readAll(await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }))).equals(l.blob)).toBe(true);
    await c.close();
    const gets = blobGets(proxy);
    expect(gets.length).toBe(3);
    expect(rangeFrom(gets[2]!)).toBeGreaterThan(rangeFrom(gets[1]!));
  });

  it('a resume reset again is resumed again, and the bytes come out exact', async () => {
    const l = layer();
    proxy.addRule({ match: isFirstGet, fault: { kind: 'reset', afterBytes: 100 } });
    proxy.addRule({ match: isRangeGet, fault: { kind: 'reset', afterBytes: 5000 }, times: 2 });
    const c = client();
    expect((await readAll(await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }))).equals(l.blob)).toBe(true);
    await c.close();
    expect(blobGets(proxy).length).toBe(4);
  });

  it('an abort during the backoff sleep ends the blob with ABORT_ERR and no further request', async () => {
    const l = layer();
    proxy.addRule({ match: isFirstGet, fault: { kind: 'reset', afterBytes: 100 } });
    const ac = new AbortController();
    const c = client({ retryBaseMs: 120_000 });
    const s = await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size, signal: ac.signal });
    const done = carrierError(readAll(s));
    while (blobGets(proxy).length === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300)); // the reset has happened: it is sleeping before the resume
    ac.abort();
    expect((await done).code).toBe('ABORT_ERR');
    expect(blobGets(proxy).length).toBe(1);
    await c.close();
  });

  it('a 416 to the resume ends as CARRIER_TRUNCATED', async () => {
    const err = await carrierError(resumedBlob({ kind: 'status', status: 416 }));
    expect(err.code).toBe('CARRIER_TRUNCATED');
  });
});

describe('credentials and other origins (item 1)', () => {
  let third: http.Server;
  let thirdHost: string;
  const seen: { path: string; authorization?: string }[] = [];

  beforeAll(async () => {
    // A host the user never named: it asks for a bearer token from a realm on itself.
    third = http.createServer((req, res) => {
      seen.push({ path: req.url ?? '', ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}) });
      if ((req.url ?? '').startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"stolen"}');
        return;
      }
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${thirdHost}/token",service="third"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}');
    });
    await new Promise<void>((r) => third.listen(0, '127.0.0.1', () => r()));
    thirdHost = `127.0.0.1:${(third.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    third.closeAllConnections();
    await new Promise((r) => third.close(r));
  });

  const creds = (): RegistryClientOptions => ({ credentials: staticCredentials({ [basicProxy.host]: { username: basic.users.user, password: basic.users.pass } }) });

  it('a Basic-auth registry redirecting a blob to a host that challenges: no credentials go there, the pull is refused', async () => {
    seen.length = 0;
    const l = layer();
    basicProxy.addRule({ match: isBlobGet, fault: { kind: 'respond', status: 307, headers: { location: `http://${thirdHost}/cdn/blob`, 'content-length': '0' }, body: Buffer.alloc(0) }, times: Infinity });
    const c = client(creds());
    const err = await carrierError(c.getBlob(`${basicProxy.host}/h/a`, l.digest, { size: l.size }));
    await c.close();
    expect(err.code).toBe('CARRIER_UNAUTHORIZED');
    expect(err.message).toContain(thirdHost);
    expect(seen.filter((q) => q.authorization !== undefined)).toEqual([]);
    expect(seen.filter((q) => q.path.startsWith('/token'))).toEqual([]);
    // the registry itself did get the Basic credentials
    expect(basicProxy.requests.filter((q) => isBlobGet(q)).every((q) => q.authorization)).toBe(true);
  });

  it('a /v2/ ping redirected to a host that challenges: its challenge is ignored, the registry\'s own is answered', async () => {
    seen.length = 0;
    basicProxy.addRule({ match: (r) => r.path === '/v2/', fault: { kind: 'respond', status: 307, headers: { location: `http://${thirdHost}/v2/`, 'content-length': '0' }, body: Buffer.alloc(0) } });
    const c = client(creds());
    expect((await c.getManifest(`${basicProxy.host}/h/a:1`)).digest).toBe(img.digest);
    await c.close();
    expect(seen.map((q) => q.path)).toEqual(['/v2/']);
    expect(seen.filter((q) => q.authorization !== undefined)).toEqual([]);
  });
});

describe('a registry that would hold a pull forever (item 6)', () => {
  const slow: RegistryClientOptions = { lowSpeedLimit: 1024, lowSpeedTimeMs: 1000 };

  it('a manifest trickling one byte at a time ends as too slow, naming the registry', async () => {
    proxy.addRule({ match: isManifestGet, fault: { kind: 'drip', chunk: 1, intervalMs: 300 } });
    const c = client(slow);
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toMatch(/too slow/);
    expect(err.message).toContain(proxy.host);
  }, 30_000);

  it('a blob trickling one byte at a time ends as too slow, naming the registry; a paused reader is not "slow"', async () => {
    const l = layer();
    proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 1, intervalMs: 200 } });
    const c = client(slow);
    const err = await carrierError(c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }).then(readAll));
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toMatch(/too slow/);
    expect(err.message).toContain(proxy.host);
    // a reader that holds the blob for longer than the window, with the registry sending fast: fine
    const s = await c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size });
    await new Promise((r) => s.once('readable', r));
    await new Promise((r) => setTimeout(r, 2500));
    expect((await readAll(s)).equals(l.blob)).toBe(true);
    await c.close();
  }, 30_000);

  it('a manifest whose connection is reset mid-body ends in an error naming the registry', async () => {
    proxy.addRule({ match: isManifestGet, fault: { kind: 'reset', afterBytes: 10 } });
    const c = client();
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toContain(proxy.host);
  });

  it('a manifest whose response headers never come ends with the request timeout, naming the registry', async () => {
    proxy.addRule({ match: isManifestGet, fault: { kind: 'hang' }, times: Infinity });
    const c = client({ requestTimeoutMs: 300, maxRetries: 1 });
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect(err.message).toMatch(/sent no response to .* within the 0.3 s request timeout/);
    expect(err.message).toContain(proxy.host);
  });

  it('503 with Retry-After forever ends after the retries, with the status and the registry', async () => {
    proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 503, headers: { 'retry-after': '1' } }, times: Infinity });
    const c = client({ maxRetries: 2 });
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect((err as CarrierError & { status?: number }).status).toBe(503);
    expect(err.message).toContain(proxy.host);
    expect(proxy.requests.filter((r) => r.path.includes('/manifests/')).length).toBe(3);
  }, 30_000);

  it('429 with a Retry-After date far in the future is reported at once, not waited for', async () => {
    const when = new Date(Date.now() + 86_400_000).toUTCString();
    proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 429, headers: { 'retry-after': when } }, times: Infinity });
    const c = client();
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toMatch(/429.*retry after/);
    expect(err.message).toContain(proxy.host);
    expect(proxy.requests.filter((r) => r.path.includes('/manifests/')).length).toBe(1);
  }, 30_000);

  it('a reset every 100 bytes ends after maxResumesPerBlob resumes, though each one makes progress', async () => {
    const l = layer();
    proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 100 }, times: Infinity });
    const c = client({ maxResumesPerBlob: 5 });
    const err = await carrierError(c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }).then(readAll));
    await c.close();
    expect(err.message).toMatch(/5 resumes in all/);
    expect(err.message).toContain(proxy.host);
    expect(blobGets(proxy).length).toBe(6);
  }, 30_000);

  it('a pull against a registry resetting every 100 bytes ends with an error naming it, and stores nothing', async () => {
    const podman = new Podman(path.join(work, 'pull-store'));
    const store = await Store.open({ root: podman.root, runroot: podman.runroot });
    const before = snapshot(podman.root);
    proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 100 }, times: Infinity });
    const c = client({ maxResumesPerBlob: 5 });
    const err = await carrierError(pull(store, `${proxy.host}/h/a:1`, { registry: c, blobCacheDir: path.join(work, 'pull-cache') }));
    await c.close();
    expect(err.message).toMatch(/resumes in all/);
    expect(err.message).toContain(proxy.host);
    // no layer and no image recorded (layers.json may now exist, empty), no file of the layer left
    const added = Object.keys(snapshot(podman.root)).filter((k) => !(k in before));
    expect(added.filter((k) => k !== 'overlay-layers/layers.json')).toEqual([]);
    if (added.length > 0) expect(JSON.parse(fs.readFileSync(path.join(podman.root, 'overlay-layers/layers.json'), 'utf8'))).toEqual([]);
    expect(await store.images()).toEqual([]);
    await store.close();
  }, 60_000);

  it('retries across requests stop at maxTotalRetries', async () => {
    proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 503 }, times: Infinity });
    const c = client({ maxRetries: 5, maxTotalRetries: 3 });
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect(err.message).toMatch(/3 retries spent in all/);
    expect(err.message).toContain(proxy.host);
    expect(proxy.requests.filter((r) => r.path.includes('/manifests/')).length).toBe(4);
  }, 30_000);

  it('time spent waiting to retry stops at maxRetryWaitMs, over every request', async () => {
    proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 503, headers: { 'retry-after': '1' } }, times: Infinity });
    const c = client({ maxRetries: 5, maxRetryWaitMs: 1500 });
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`));
    await c.close();
    expect(err.message).toMatch(/spent waiting to retry.*maxRetryWaitMs/);
    expect(err.message).toContain(proxy.host);
    expect(proxy.requests.filter((r) => r.path.includes('/manifests/')).length).toBe(2);
  }, 30_000);

  it('the overall timeoutMs ends a blob that is still arriving, and a backoff sleep, with CARRIER_TIMEOUT', async () => {
    const l = layer();
    proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 2048, intervalMs: 200 } });
    const c = client({ timeoutMs: 1500 });
    const err = await carrierError(c.getBlob(`${proxy.host}/h/a`, l.digest, { size: l.size }).then(readAll));
    await c.close();
    expect(err.code).toBe('CARRIER_TIMEOUT');
    expect(err.message).toMatch(/timeout/);
    expect(err.message).toContain(proxy.host);
    proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 503 }, times: Infinity });
    const c2 = client({ timeoutMs: 1000, retryBaseMs: 60_000 });
    const err2 = await carrierError(c2.getManifest(`${proxy.host}/h/a:1`));
    expect(err2.code).toBe('CARRIER_TIMEOUT');
    expect(err2.message).toContain(proxy.host);
    await c2.close();
  }, 30_000);

  it('a /v2/ answered with garbage over plain http is reported as what happened there, not as the TLS failure', async () => {
    const garbage = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', () => sock.end('this is not HTTP\r\n\r\n'));
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', () => r()));
    const host = `127.0.0.1:${(garbage.address() as net.AddressInfo).port}`;
    const c = client({ maxRetries: 0 });
    const err = await carrierError(c.getManifest(`${host}/h/a:1`));
    await c.close();
    garbage.close();
    expect(err.message).toMatch(/over plain http: .*(HPE_|HTTP)/i);
    expect(err.message).toMatch(/over https: /);
  });

  it('a token holding U+2028 is sent byte for byte (as podman sends it), and the pull goes on', async () => {
    const tokenValue = 'tok\u2028en';
    let got: string | undefined;
    const issuer = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: tokenValue })));
    await new Promise<void>((r) => issuer.listen(0, '127.0.0.1', () => r()));
    const realm = `http://127.0.0.1:${(issuer.address() as net.AddressInfo).port}/token`;
    proxy.addRule({
      match: (r) => isManifestGet(r) && r.headers.authorization === undefined,
      fault: { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${realm}",service="x"` } },
    });
    proxy.addRule({ match: (r) => isManifestGet(r) && (got = r.headers.authorization) !== undefined && false, fault: { kind: 'hang' } });
    const c = client({ maxRetries: 0 });
    expect((await c.getManifest(`${proxy.host}/h/a:1`)).digest).toBe(img.digest);
    await c.close();
    issuer.closeAllConnections();
    issuer.close();
    // Node's server reads header bytes as latin1: back to bytes, they are the token's UTF-8
    expect(Buffer.from(got!, 'latin1').equals(Buffer.from(`Bearer ${tokenValue}`, 'utf8'))).toBe(true);
  });

  it('an index with 10,000 entries and no match yields a short error', async () => {
    const manifests = Array.from({ length: 10_000 }, (_, i) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: 'sha256:' + i.toString(16).padStart(64, '0'),
      size: 500,
      platform: { os: 'plan9', architecture: `arch${i}` },
    }));
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    proxy.addRule({ match: isManifestGet, fault: { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': String(body.length) }, body } });
    const c = client();
    const err = await carrierError(c.getManifest(`${proxy.host}/h/a:1`, { platform: { os: 'linux', architecture: 'amd64' } }));
    await c.close();
    expect(err.code).toBe('CARRIER_NOT_FOUND');
    expect(err.message.length).toBeLessThan(1000);
    expect(err.message).toMatch(/and 9988 more, in 10000 entries/);
  });
});

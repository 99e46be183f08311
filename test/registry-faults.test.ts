// Registry faults beyond test/pull.test.ts: bodies that drip slower than the client's timeout, a registry process
// that dies in the middle of a blob and comes back on the same port, and blob GETs redirected to another host while
// the registry wants a bearer token (the other host must never see Authorization: asserted at that host).
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Store } from '../src/store/store.js';
import { pull, type PullEvent } from '../src/pull.js';
import { RegistryClient } from '../src/registry/index.js';
import { CarrierError } from '../src/errors.js';
import { startRegistry, pushImage, type TestRegistry } from './support/registry.js';
import { startRestartableRegistry, type RestartableRegistry } from './support/restartable-registry.js';
import { startFaultProxy, isBlobGet, type FaultProxy } from './support/fault-proxy.js';
import { Podman, type TestImage } from './support/images.js';
import { snapshot } from './support/store.js';
import { prng, sha256 } from './support/fixtures.js';
import * as H from './support/hostile.js';
import { exportChain, pacedBody, sleep, startStallFront } from './support/reliability.js';
import { registryRig } from './support/registry-rig.js';

let small: TestImage;
let base: TestImage;
const o = { mtime: 1_700_000_000 };

const rig = registryRig('crf', { proxy: true, resetProxy: true }, async () => {
  base = rig.build('base', { layers: [{ compression: 'gzip', entries: [H.file('base.txt', 'base\n', o)] }], label: 'rf-base' });
  small = rig.build('small', {
    layers: [
      { compression: 'gzip', entries: [H.file('one', prng(24 * 1024, 'rf-one'), o)] },
      { compression: 'none', entries: [H.dir('two/', o), H.file('two/two', 'two\n', o)] },
    ],
    label: 'rf-small',
  });
  await rig.push(base, 'rf/base:1');
  await rig.push(small, 'rf/small:1');
});

let n = 0;
function newStore(): { podman: Podman; cache: string; open: () => Promise<Store> } {
  const dir = path.join(rig.work, `s${n++}`);
  const podman = new Podman(dir);
  return { podman, cache: path.join(dir, 'cache'), open: () => Store.open({ root: podman.root, runroot: podman.runroot }) };
}

/** Everything under a blob cache, temp files included. */
function cacheFiles(dir: string): string[] {
  const sub = path.join(dir, 'sha256');
  return fs.existsSync(sub) ? fs.readdirSync(sub).sort() : [];
}

const figures: Record<string, unknown> = {};

describe('slow-drip bodies against a short requestTimeoutMs', () => {
  it('a blob response whose headers never complete fails with a timeout and stores nothing', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.reg.host}/rf/base:1`, { tlsVerify: false, blobCacheDir: s.cache });
    const before = snapshot(s.podman.root);
    const cacheBefore = cacheFiles(s.cache);
    const layer = small.layers[0]!;
    rig.proxy.addRule({
      match: (r) => isBlobGet(r) && r.path.endsWith(layer.digest),
      fault: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(layer.size), 'docker-content-digest': layer.digest },
        body: pacedBody(layer.blob, { chunk: 64, intervalMs: 2000, firstDelayMs: 2000 }),
      },
      times: Infinity,
    });
    const client = new RegistryClient({ tlsVerify: false, requestTimeoutMs: 300, retryBaseMs: 10, maxRetries: 2 });
    const t0 = Date.now();
    const err = await pull(store, `${rig.proxy.host}/rf/small:1`, { registry: client, blobCacheDir: s.cache }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = Date.now() - t0;
    await client.close();
    expect(err).toBeInstanceOf(CarrierError);
    expect((err as CarrierError).message).toMatch(/timeout|timed out/i);
    // 1 request + 2 resumes, each ended by the 300 ms header timeout (the stalled front would send its first byte after 2 s)
    const gets = rig.proxy.requests.filter((r) => isBlobGet(r) && r.path.endsWith(layer.digest));
    expect(gets).toHaveLength(3);
    expect(snapshot(s.podman.root)).toEqual(before);
    // no temp file is left in the cache; a blob that did arrive whole (the other layer) may stay, verified
    const cached = cacheFiles(s.cache);
    expect(cached.filter((f) => !cacheBefore.includes(f)).every((f) => /^[0-9a-f]{64}$/.test(f))).toBe(true);
    for (const f of cached) expect(sha256(fs.readFileSync(path.join(s.cache, 'sha256', f))), f).toBe(`sha256:${f}`);
    expect(cached).not.toContain(layer.digest.slice(7));
    expect((await store.images()).map((i) => i.names)).toEqual([[`${rig.reg.host}/rf/base:1`]]);
    await store.close();
    figures.headersStall = { code: (err as CarrierError).code, message: (err as CarrierError).message, requests: gets.length, ms };
  });

  it('a body that stops mid-way (and resumes that get headers but no byte) fails with a timeout and stores nothing', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.reg.host}/rf/base:1`, { tlsVerify: false, blobCacheDir: s.cache });
    const before = snapshot(s.podman.root);
    const layer = small.layers[0]!;
    const front = await startStallFront(rig.reg.url, layer.digest, layer.blob, 4096);
    const client = new RegistryClient({ tlsVerify: false, requestTimeoutMs: 300, retryBaseMs: 10, maxRetries: 2 });
    const t0 = Date.now();
    const err = await pull(store, `${front.host}/rf/small:1`, { registry: client, blobCacheDir: s.cache }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = Date.now() - t0;
    await client.close();
    await front.stop();
    expect(err).toBeInstanceOf(CarrierError);
    expect((err as CarrierError).message).toMatch(/timeout|timed out/i);
    const gets = front.requests.filter((r) => r.path.endsWith(layer.digest));
    // the first request got 4 KiB, then 2 resumes from byte 4096 got nothing
    expect(gets.map((g) => g.range ?? 'none')).toEqual(['none', 'bytes=4096-', 'bytes=4096-']);
    expect(snapshot(s.podman.root)).toEqual(before);
    expect(cacheFiles(s.cache).filter((f) => !/^[0-9a-f]{64}$/.test(f))).toEqual([]);
    expect(cacheFiles(s.cache)).not.toContain(layer.digest.slice(7));
    await store.close();
    figures.bodyStall = { code: (err as CarrierError).code, message: (err as CarrierError).message, requests: gets.length, ms };
  });

  it('a body that pauses just under the timeout between chunks is not cut: the timeout is per pause', async () => {
    const s = newStore();
    const store = await s.open();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 8192, intervalMs: 150 }, times: Infinity });
    const client = new RegistryClient({ tlsVerify: false, requestTimeoutMs: 600, retryBaseMs: 10, maxRetries: 0 });
    const r = await pull(store, `${rig.proxy.host}/rf/small:1`, { registry: client, blobCacheDir: s.cache });
    await client.close();
    expect(r.id).toBe(small.configDigest.slice(7));
    expect(rig.proxy.requests.filter((q) => isBlobGet(q) && q.range !== undefined)).toEqual([]); // no resume needed
    expect((await exportChain(store, `${rig.proxy.host}/rf/small:1`)).map((c) => c.exported)).toEqual(small.diffIDs);
    await store.close();
  });

  it('a trickle (one chunk, then a pause longer than the timeout, on every request) resumes with Range until whole', async () => {
    const s = newStore();
    const store = await s.open();
    const layer = small.layers[0]!;
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.path.endsWith(layer.digest), fault: { kind: 'drip', chunk: 8192, intervalMs: 1500 }, times: Infinity });
    const client = new RegistryClient({ tlsVerify: false, requestTimeoutMs: 250, retryBaseMs: 10, maxRetries: 1 });
    const r = await pull(store, `${rig.proxy.host}/rf/small:1`, { registry: client, blobCacheDir: s.cache });
    await client.close();
    expect(r.id).toBe(small.configDigest.slice(7));
    const ranges = rig.proxy.requests.filter((q) => isBlobGet(q) && q.path.endsWith(layer.digest)).map((q) => q.range ?? 'none');
    // each request yields one 8 KiB chunk, then stalls; every resume starts where the last left off (the proxy
    // drips each chunk it gets from the registry, so a request yields up to 8 KiB before it stalls). On a loaded
    // machine the client can be descheduled past a stall and take a second chunk on one request, so the count of
    // requests is not fixed: what is asserted is that it resumed, each time further on, until whole.
    expect(ranges.length).toBeGreaterThanOrEqual(2);
    expect(ranges[0]).toBe('none');
    const starts = ranges.slice(1).map((x) => Number(/^bytes=(\d+)-$/.exec(x)?.[1]));
    for (let i = 0; i < starts.length; i++) expect(starts[i]).toBeGreaterThan(i === 0 ? 0 : starts[i - 1]!);
    expect(starts[starts.length - 1]).toBeLessThan(layer.size);
    expect((await exportChain(store, `${rig.proxy.host}/rf/small:1`)).map((c) => c.exported)).toEqual(small.diffIDs);
    await store.close();
    figures.trickle = { blobBytes: layer.size, requests: ranges.length };
  });
});

describe('a registry that dies mid-pull and comes back on the same port', () => {
  let rr: RestartableRegistry;
  let rproxy: FaultProxy;
  let big: TestImage;
  // big enough that the registry is still blocked writing it (socket buffers hold several MiB) when it is killed
  const BIG = 24 * 1024 * 1024 + 123;

  beforeAll(async () => {
    rr = await startRestartableRegistry();
    rproxy = await startFaultProxy(rr.url);
    big = rig.build('big', {
      layers: [
        { compression: 'gzip', entries: [H.file('small', 'small\n', o)] },
        { compression: 'none', entries: [H.file('big.bin', prng(BIG, 'rf-big'), o)] },
      ],
      label: 'rf-big',
    });
    await pushImage(rr.host, big.ociDir, 'rf/big:1');
  }, 120_000);

  afterAll(async () => {
    await rproxy?.stop();
    await rr?.stop();
  });

  it('the pull resumes from where the blob broke off and stores exact content', async () => {
    const s = newStore();
    const store = await s.open();
    // skopeo may recompress the uncompressed layer on push: the blob to break is the biggest the manifest names
    const layer = { digest: '', size: 0 };
    const client = new RegistryClient({ tlsVerify: false, retryBaseMs: 50, maxRetries: 10 });
    let bytes = 0;
    let killedAt = -1;
    let requestsAtKill = 0;
    let requestsAtRestart = 0;
    let done = false;
    const outage = (async () => {
      while (bytes < 256 * 1024 && !done) await sleep(10);
      if (done) return;
      killedAt = bytes;
      await rr.kill();
      requestsAtKill = rproxy.requests.length;
      // the proxy first drains what the kernel had buffered from the dead registry; the registry stays down until
      // the client has come back for the rest at least twice (and found nobody), then for another 300 ms
      const deadline = Date.now() + 20_000;
      while (rproxy.requests.length < requestsAtKill + 2 && Date.now() < deadline) await sleep(20);
      await sleep(300);
      requestsAtRestart = rproxy.requests.length;
      await rr.start();
    })();
    const r = await pull(store, `${rproxy.host}/rf/big:1`, {
      registry: client,
      blobCacheDir: s.cache,
      onProgress: (e: PullEvent) => {
        if (e.type === 'resolved') {
          Object.assign(layer, [...e.layers].sort((a, b) => b.size - a.size)[0]!);
          // it drips (first request only), so the registry is still sending it when it is killed
          rproxy.addRule({ match: (q) => isBlobGet(q) && q.path.endsWith(layer.digest), fault: { kind: 'drip', chunk: 16384, intervalMs: 10 }, times: 1 });
        }
        if (e.type === 'progress' && e.digest === layer.digest) bytes = Math.max(bytes, e.bytes);
      },
    }).finally(() => (done = true));
    await outage;
    await client.close();
    expect(r.id).toBe(big.configDigest.slice(7));
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(layer.size);
    const gets = rproxy.requests.filter((q) => isBlobGet(q) && q.path.endsWith(layer.digest));
    // requests went out while the registry was down (and failed), and the one that worked resumed mid-blob
    expect(requestsAtRestart - requestsAtKill).toBeGreaterThanOrEqual(2);
    const resumed = gets.map((q) => /^bytes=(\d+)-$/.exec(q.range ?? '')?.[1]).filter((x): x is string => x !== undefined).map(Number);
    expect(resumed.length).toBeGreaterThan(0);
    expect(Math.max(...resumed)).toBeGreaterThan(0);
    expect(Math.max(...resumed)).toBeLessThan(layer.size);
    expect((await exportChain(store, `${rproxy.host}/rf/big:1`)).map((c) => c.exported)).toEqual(big.diffIDs);
    await store.close();
    figures.restart = { killedAtBytes: killedAt, blobBytes: layer.size, requestsWhileDown: requestsAtRestart - requestsAtKill, resumedAt: resumed };
  }, 60_000);
});

describe('blob GETs redirected to another host under token auth', () => {
  let treg: TestRegistry;
  let tproxy: FaultProxy;

  beforeAll(async () => {
    treg = await startRegistry({ auth: 'token' });
    tproxy = await startFaultProxy(treg.url);
    await pushImage(treg.host, small.ociDir, 'rf/private:1', { creds: treg.users });
  }, 120_000);

  afterAll(async () => {
    await tproxy?.stop();
    await treg?.stop();
  });

  it('the other host never sees Authorization, and the pull succeeds', async () => {
    const s = newStore();
    const store = await s.open();
    tproxy.addRule({ match: isBlobGet, fault: { kind: 'redirect', status: 307 }, times: Infinity });
    const r = await pull(store, `${tproxy.host}/rf/private:1`, {
      tlsVerify: false,
      creds: `${treg.users.user}:${treg.users.pass}`,
      blobCacheDir: s.cache,
    });
    expect(r.id).toBe(small.configDigest.slice(7));
    // the registry's origin got the bearer token on every blob GET ...
    const blobGets = tproxy.requests.filter(isBlobGet);
    expect(blobGets.length).toBe(1 + small.layers.length); // config + layers
    expect(blobGets.every((q) => q.authorization)).toBe(true);
    expect(treg.tokenIssuer!.requests.some((q) => q.user === treg.users.user && !q.rejected)).toBe(true);
    // ... and the host it was redirected to got every blob, never with Authorization
    const other = tproxy.other.requests;
    expect(other.length).toBe(blobGets.length);
    expect(other.filter((q) => q.authorization)).toEqual([]);
    expect((await exportChain(store, `${tproxy.host}/rf/private:1`)).map((c) => c.exported)).toEqual(small.diffIDs);
    await store.close();
    figures.redirect = { redirectedGets: other.length, withAuthorizationAtOtherHost: 0 };
    console.log(`registry-faults summary ${JSON.stringify(figures)}`);
  });
});


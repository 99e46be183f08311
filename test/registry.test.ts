/**
 * The registry client against the real CNCF registry (docker-registry, anonymous, plain http), with faults injected
 * by the proxy in test/support/fault-proxy.ts: manifests (OCI, Docker schema 2, index with platforms), the size
 * cap and media-type checks, and blob downloads that resume, retry, honour Retry-After and follow redirects.
 */
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it, expect } from 'vitest';
import { RegistryClient } from '../src/registry/index.js';
import { CarrierError } from '../src/errors.js';
import { parseManifest } from '../src/oci/manifest.js';
import { buildMultiArchLayout, storedImage, type MultiArchImage, type StoredImage } from './support/registry.js';
import { isBlobGet, isManifestGet } from './support/fault-proxy.js';
import { sha256 } from './support/images.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import { expectCarrierError as carrierError, readAll } from './support/layer.js';
import { registryRig } from './support/registry-rig.js';

let img: StoredImage;
let big: StoredImage;
let multi: MultiArchImage;
const BIG = 3 * 1024 * 1024 + 123;

function client(extra: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  return new RegistryClient({ tlsVerify: false, retryBaseMs: 5, ...extra });
}

const rig = registryRig('registry-test', { proxy: true, resetProxy: true, requireTools: false, timeout: 60_000 }, async () => {
  const a = rig.build('a');
  const v2 = rig.build('v2', { layers: [{ compression: 'gzip', entries: [H.file('v2', 'docker schema 2\n')] }] });
  const b = rig.build('big', { layers: [{ compression: 'none', entries: [H.file('big.bin', prng(BIG, 'registry-big'))] }] });
  multi = buildMultiArchLayout(path.join(rig.work, 'multi'), [
    { architecture: 'amd64' },
    { architecture: 'arm64', variant: 'v8' },
    { architecture: 'arm', variant: 'v7' },
  ]);
  await Promise.all([
    rig.push(a, 'lib/a:v1'),
    rig.push(v2, 'lib/v2:latest', { format: 'v2s2' }),
    rig.push(b, 'lib/big:latest'),
    rig.push(multi, 'lib/multi:latest', { multiArch: true }),
  ]);
  img = await storedImage(rig.reg, 'lib/a', 'v1');
  big = await storedImage(rig.reg, 'lib/big', 'latest');
});

describe('manifests', () => {
  it('fetches an OCI manifest by tag and by digest, exactly as pushed', async () => {
    const c = client();
    const byTag = await c.getManifest(`${rig.reg.host}/lib/a:v1`);
    expect(byTag.digest).toBe(img.digest);
    expect(byTag.bytes.equals(img.manifest)).toBe(true);
    expect(byTag.mediaType).toBe(img.mediaType);
    expect(byTag.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    expect(byTag.list).toBeUndefined();
    expect(byTag.source).toMatchObject({ registry: rig.reg.host, repository: 'lib/a', mirror: false, origin: `http://${rig.reg.host}` });
    const byDigest = await c.getManifest(`${rig.reg.host}/lib/a@${img.digest}`);
    expect(byDigest.bytes.equals(img.manifest)).toBe(true);
    await c.close();
  });

  it('fetches a Docker schema 2 manifest written by skopeo --format v2s2', async () => {
    const c = client();
    const m = await c.getManifest(`${rig.reg.host}/lib/v2`);
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(m.manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(m.digest).toBe(sha256(m.bytes));
    await c.close();
  });

  it('chooses the platform from an index: this machine by default, or the one asked for', async () => {
    const c = client();
    const host = await c.getManifest(`${rig.reg.host}/lib/multi:latest`);
    const want = process.arch === 'arm64' ? 'arm64' : 'amd64';
    const expected = multi.images.find((i) => i.platform.architecture === want)!.image;
    expect(host.digest).toBe(expected.manifestDigest);
    expect(host.list?.digest).toBe(multi.indexDigest);
    expect(host.list?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(host.list?.bytes.equals(multi.index)).toBe(true);

    const arm64 = await c.getManifest(`${rig.reg.host}/lib/multi:latest`, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(arm64.digest).toBe(multi.images[1]!.image.manifestDigest);
    const armv7 = await c.getManifest(`${rig.reg.host}/lib/multi@${multi.indexDigest}`, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    expect(armv7.digest).toBe(multi.images[2]!.image.manifestDigest);

    const none = await carrierError(c.getManifest(`${rig.reg.host}/lib/multi:latest`, { platform: { os: 'linux', architecture: 's390x' } }));
    expect(none.code).toBe('CARRIER_NOT_FOUND');
    expect(none.message).toContain('linux/arm64');
    await c.close();
  });

  it('reports unknown tags and repositories as CARRIER_NOT_FOUND', async () => {
    const c = client();
    expect((await carrierError(c.getManifest(`${rig.reg.host}/lib/a:nope`))).code).toBe('CARRIER_NOT_FOUND');
    expect((await carrierError(c.getManifest(`${rig.reg.host}/lib/none:v1`))).code).toBe('CARRIER_NOT_FOUND');
    await c.close();
  });

  it('refuses an endless manifest body while it streams (4 MiB cap)', async () => {
    let produced = 0;
    rig.proxy.addRule({
      match: isManifestGet,
      fault: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: () =>
          new Readable({
            read() {
              produced += 65536;
              this.push(Buffer.alloc(65536, 0x20));
            },
          }),
      },
    });
    const c = client({ maxRetries: 0 });
    const err = await carrierError(c.getManifest(`${rig.proxy.host}/lib/a:v1`));
    expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
    expect(produced).toBeLessThan(16 * 1024 * 1024);
    // A declared Content-Length over the cap is refused before reading.
    rig.proxy.addRule({
      match: isManifestGet,
      fault: { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(5 << 20) }, body: Buffer.alloc(5 << 20, 0x20) },
    });
    expect((await carrierError(c.getManifest(`${rig.proxy.host}/lib/a:v1`))).code).toBe('CARRIER_LIMIT_EXCEEDED');
    await c.close();
  });

  it('refuses a manifest whose Content-Type contradicts its body', async () => {
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'headers', set: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' } } });
    const c = client({ maxRetries: 0 });
    const err = await carrierError(c.getManifest(`${rig.proxy.host}/lib/a:v1`));
    expect(err.code).toBe('CARRIER_INVALID_MANIFEST');
    // An index served with a manifest type, and an index carrying layers.
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'headers', set: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } } });
    expect((await carrierError(c.getManifest(`${rig.proxy.host}/lib/multi:latest`))).code).toBe('CARRIER_INVALID_MANIFEST');
    const bad = Buffer.from(JSON.stringify({ ...JSON.parse(multi.index.toString()), layers: [] }));
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: bad } });
    expect((await carrierError(c.getManifest(`${rig.proxy.host}/lib/multi:latest`))).code).toBe('CARRIER_INVALID_MANIFEST');
    // A generic content type: the body decides.
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'headers', set: { 'content-type': 'application/json' } } });
    expect((await c.getManifest(`${rig.proxy.host}/lib/a:v1`)).digest).toBe(img.digest);
    await c.close();
  });

  it('verifies a manifest fetched by digest and refuses Docker schema 1', async () => {
    const c = client({ maxRetries: 0 });
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'flip', at: 40 } });
    expect((await carrierError(c.getManifest(`${rig.proxy.host}/lib/a@${img.digest}`))).code).toBe('CARRIER_DIGEST_MISMATCH');
    const v1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'lib/a', tag: 'v1', fsLayers: [], history: [] }));
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: v1 } });
    const err = await carrierError(c.getManifest(`${rig.proxy.host}/lib/a:v1`));
    expect(err.code).toBe('CARRIER_UNSUPPORTED');
    expect(err.message).toMatch(/schema 1/);
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'respond', status: 200, headers: { 'content-type': 'application/json' }, body: v1 } });
    expect((await carrierError(c.getManifest(`${rig.proxy.host}/lib/a:v1`))).code).toBe('CARRIER_UNSUPPORTED');
    await c.close();
  });

  it('retries 500/503 and honours 429 Retry-After', async () => {
    const c = client();
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 500 } });
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 503 } });
    expect((await c.getManifest(`${rig.proxy.host}/lib/a:v1`)).digest).toBe(img.digest);
    expect(rig.proxy.requests.filter((r) => r.path.includes('/manifests/')).map((r) => r.fault ?? 'ok')).toEqual(['status', 'status', 'ok']);

    // Retry-After is what the client waits, not its own 5 ms backoff: every wait is charged to maxRetryWaitMs, so
    // with 1.5 s to spend one `Retry-After: 1` fits and a second does not (ignored, two backoffs would fit easily).
    const patient = client({ maxRetryWaitMs: 1500 });
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    expect((await patient.getManifest(`${rig.proxy.host}/lib/a:v1`)).digest).toBe(img.digest);
    const impatient = client({ maxRetryWaitMs: 1500 });
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, times: 2 });
    expect((await carrierError(impatient.getManifest(`${rig.proxy.host}/lib/a:v1`))).message).toMatch(/maxRetryWaitMs.*status 429/);
    rig.proxy.clearRules();
    await patient.close();
    await impatient.close();

    // Out of retries: the status is reported.
    const few = client({ maxRetries: 1 });
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 503 }, times: 5 });
    const err = await carrierError(few.getManifest(`${rig.proxy.host}/lib/a:v1`));
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect((err as CarrierError & { status?: number }).status).toBe(503);
    await c.close();
    await few.close();
  });
});

describe('blobs', () => {
  const bigLayer = (): { digest: string; size: number; blob: Buffer } => big.layers[0]!;

  it('streams a blob exactly', async () => {
    const c = client();
    const l = bigLayer();
    let progress = 0;
    const s = await c.getBlob(`${rig.reg.host}/lib/big`, l.digest, { size: l.size, onProgress: (n) => (progress = n) });
    const got = await readAll(s);
    expect(sha256(got)).toBe(l.digest);
    expect(progress).toBe(l.size);
    await c.close();
  });

  it('resumes with Range after a connection reset and after a truncated body', async () => {
    const c = client();
    const l = bigLayer();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 1_000_000 } });
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'truncate', afterBytes: 500_000 } });
    const got = await readAll(await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size }));
    expect(got.length).toBe(l.size);
    expect(got.equals(l.blob)).toBe(true);
    const blobReqs = rig.proxy.requests.filter((r) => isBlobGet(r));
    expect(blobReqs.length).toBe(3);
    expect(blobReqs[0]!.range).toBeUndefined();
    const starts = blobReqs.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1]));
    expect(starts[0]).toBeGreaterThan(0);
    expect(starts[0]).toBeLessThanOrEqual(1_000_000);
    expect(starts[1]).toBeGreaterThan(starts[0]!);
    await c.close();
  });

  it('resumes a blob without a known size only on connection errors', async () => {
    const c = client();
    const l = bigLayer();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 700_000 } });
    const got = await readAll(await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest));
    expect(got.equals(l.blob)).toBe(true);
    expect(rig.proxy.requests.some((r) => r.range !== undefined)).toBe(true);
    await c.close();
  });

  it('fails when a resumed request answers 200 or a Content-Range that does not start where it stopped', async () => {
    const c = client();
    const l = bigLayer();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 300_000 } });
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.headers.range !== undefined, fault: { kind: 'headers', set: {} } });
    // The second rule forwards the registry's genuine 206: prove that path works first.
    expect((await readAll(await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size }))).equals(l.blob)).toBe(true);

    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 300_000 } });
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.headers.range !== undefined, fault: { kind: 'respond', status: 200, body: l.blob } });
    const s1 = await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size });
    expect((await carrierError(readAll(s1))).code).toBe('CARRIER_REGISTRY_ERROR');

    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 300_000 } });
    rig.proxy.addRule({
      match: (r) => isBlobGet(r) && r.headers.range !== undefined,
      fault: { kind: 'respond', status: 206, headers: { 'content-range': `bytes 0-${l.size - 1}/${l.size}` }, body: l.blob },
    });
    const s2 = await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size });
    const err = await carrierError(readAll(s2));
    expect(err.code).toBe('CARRIER_REGISTRY_ERROR');
    expect(err.message).toMatch(/Content-Range/);
    await c.close();
  });

  it('refuses more bytes than the size, and gives up after maxRetries resumes without progress', async () => {
    const c = client({ maxRetries: 2 });
    const l = bigLayer();
    const err = await carrierError(c.getBlob(`${rig.reg.host}/lib/big`, l.digest, { size: l.size - 1 }).then(readAll));
    expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
    // Every resume dies at once: no progress, so it stops.
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'reset', afterBytes: 200_000 } });
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.headers.range !== undefined, fault: { kind: 'reset', afterBytes: 0 }, times: Infinity });
    const s = await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size });
    expect((await carrierError(readAll(s))).code).toBe('CARRIER_REGISTRY_ERROR');
    await c.close();
  });

  it('retries 500/503 and 429 with Retry-After on blobs; 404 is CARRIER_NOT_FOUND', async () => {
    const c = client();
    const l = img.layers[0]!;
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'status', status: 500 } });
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'status', status: 503 } });
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    expect((await readAll(await c.getBlob(`${rig.proxy.host}/lib/a`, l.digest, { size: l.size }))).equals(l.blob)).toBe(true);
    expect(rig.proxy.requests.filter((r) => isBlobGet(r)).length).toBe(4);
    // the blob's 429 wait is Retry-After's second, charged to maxRetryWaitMs: a 0.5 s budget cannot pay it
    const impatient = client({ maxRetryWaitMs: 500 });
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    expect((await carrierError(impatient.getBlob(`${rig.proxy.host}/lib/a`, l.digest, { size: l.size }))).message).toMatch(/maxRetryWaitMs.*status 429/);
    rig.proxy.clearRules();
    await impatient.close();
    const missing = 'sha256:' + 'ab'.repeat(32);
    expect((await carrierError(c.getBlob(`${rig.proxy.host}/lib/a`, missing))).code).toBe('CARRIER_NOT_FOUND');
    await c.close();
  });

  it('validates the digest before it reaches a URL', async () => {
    const c = client();
    for (const bad of ['sha256:../../x', 'sha256:' + 'A'.repeat(64), 'md5:abc', `sha256:${'a'.repeat(64)}/../x`]) {
      expect((await carrierError(c.getBlob(`${rig.proxy.host}/lib/a`, bad))).code).toBe('CARRIER_INVALID_DIGEST');
    }
    expect(rig.proxy.requests.length).toBe(0);
    await c.close();
  });

  it('follows a redirect to another host (anonymous registry) and resumes there', async () => {
    const c = client();
    const l = bigLayer();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'redirect' }, times: Infinity });
    const got = await readAll(await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size }));
    expect(got.equals(l.blob)).toBe(true);
    expect(rig.proxy.other.requests.length).toBe(1);
    expect(rig.proxy.other.requests[0]!.authorization).toBe(false);
    await c.close();
  });

  it('stops with ABORT_ERR when the signal fires mid-blob', async () => {
    const c = client();
    const l = bigLayer();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 16384, intervalMs: 20 } });
    const ac = new AbortController();
    const s = await c.getBlob(`${rig.proxy.host}/lib/big`, l.digest, { size: l.size, signal: ac.signal, onProgress: (n) => n > 50_000 && ac.abort() });
    const err = await carrierError(readAll(s));
    expect(err.code).toBe('ABORT_ERR');
    await c.close();
  });
});

describe('manifest parsing of what the registry served', () => {
  it('the index bytes parse as an index with three platforms', () => {
    const idx = parseManifest(multi.index);
    expect(idx.kind).toBe('index');
  });
});

/**
 * Authentication and transport against the real registry: htpasswd basic auth, token auth through the test token
 * issuer (scopes, token reuse, insufficient_scope, wrong passwords), credentials from every kind of auth file, a
 * self-signed https registry, and registries.conf mirrors (a pull-through cache), fallback and blocking.
 */
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { RegistryClient, loadCredentials, staticCredentials } from '../src/registry/index.js';
import { parseRegistriesConf } from '../src/registries-conf.js';
import { startRegistry, pushImage, storedImage, freePort, selfSignedCert, type TestRegistry, type StoredImage } from './support/registry.js';
import { startFaultProxy, isBlobGet, isManifestGet, type FaultProxy } from './support/fault-proxy.js';
import { buildTestImage, sha256 } from './support/images.js';
import { tempDir } from './support/fixtures.js';
import { expectCarrierError as carrierError } from './support/layer.js';

let work: string;
let plain: TestRegistry;
let basic: TestRegistry;
let token: TestRegistry;
let tls: TestRegistry;
let tokenProxy: FaultProxy;
let truth: StoredImage;

async function blobBytes(c: RegistryClient, ref: string, digest: string, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const ch of await c.getBlob(ref, digest, { size })) chunks.push(ch as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  work = tempDir('registry-auth');
  [plain, basic, token, tls] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'token' }),
    startRegistry({ tls: true, auth: 'htpasswd' }),
  ]);
  tokenProxy = await startFaultProxy(token.url);
  const img = buildTestImage(path.join(work, 'img'));
  await Promise.all([
    pushImage(plain.host, img.ociDir, 'team/app:v1'),
    pushImage(basic.host, img.ociDir, 'team/app:v1', { creds: basic.users }),
    pushImage(token.host, img.ociDir, 'team/app:v1', { creds: token.users }),
    pushImage(tls.host, img.ociDir, 'team/app:v1', { creds: tls.users }),
  ]);
  truth = await storedImage(plain, 'team/app', 'v1');
}, 60_000);

afterAll(async () => {
  await tokenProxy?.stop();
  await Promise.all([plain, basic, token, tls].filter(Boolean).map((r) => r.stop()));
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const opts = { tlsVerify: false, retryBaseMs: 5 };

describe('basic auth (htpasswd)', () => {
  it('needs credentials, refuses wrong ones, works with right ones', async () => {
    const anon = new RegistryClient(opts);
    expect((await carrierError(anon.getManifest(`${basic.host}/team/app:v1`))).code).toBe('CARRIER_UNAUTHORIZED');
    const wrong = new RegistryClient({ ...opts, credentials: staticCredentials({ [basic.host]: { username: basic.users.user, password: 'nope' } }) });
    expect((await carrierError(wrong.getManifest(`${basic.host}/team/app:v1`))).code).toBe('CARRIER_UNAUTHORIZED');
    const good = new RegistryClient({ ...opts, credentials: staticCredentials({ [basic.host]: { username: basic.users.user, password: basic.users.pass } }) });
    const m = await good.getManifest(`${basic.host}/team/app:v1`);
    expect(m.digest).toBe(truth.digest);
    const l = truth.layers[0]!;
    expect(sha256(await blobBytes(good, `${basic.host}/team/app`, l.digest, l.size))).toBe(l.digest);
    await Promise.all([anon.close(), wrong.close(), good.close()]);
  });
});

describe('token auth', () => {
  it('gets a token for the repository scope with the credentials, and reuses it', async () => {
    const issued = token.tokenIssuer!.requests;
    issued.length = 0;
    const c = new RegistryClient({ ...opts, credentials: staticCredentials({ [token.host]: { username: token.users.user, password: token.users.pass } }) });
    const m = await c.getManifest(`${token.host}/team/app:v1`);
    expect(m.digest).toBe(truth.digest);
    for (const l of truth.layers) expect(sha256(await blobBytes(c, `${token.host}/team/app`, l.digest, l.size))).toBe(l.digest);
    await c.getManifest(`${token.host}/team/app@${truth.digest}`);
    expect(issued.length).toBe(1);
    expect(issued[0]).toMatchObject({ scopes: ['repository:team/app:pull'], service: token.tokenIssuer!.service, user: token.users.user, rejected: false });
    await c.close();
  });

  it('anonymous without pull rights and a wrong password are CARRIER_UNAUTHORIZED', async () => {
    const anon = new RegistryClient(opts);
    expect((await carrierError(anon.getManifest(`${token.host}/team/app:v1`))).code).toBe('CARRIER_UNAUTHORIZED');
    const wrong = new RegistryClient({ ...opts, credentials: staticCredentials({ [token.host]: { username: token.users.user, password: 'wrong' } }) });
    const err = await carrierError(wrong.getManifest(`${token.host}/team/app:v1`));
    expect(err.code).toBe('CARRIER_UNAUTHORIZED');
    expect(err.message).not.toContain('wrong');
    expect(token.tokenIssuer!.requests.some((r) => r.rejected)).toBe(true);
    await Promise.all([anon.close(), wrong.close()]);
  });

  it('asks again with the scope an insufficient_scope challenge names', async () => {
    const issued = token.tokenIssuer!.requests;
    issued.length = 0;
    const c = new RegistryClient({ ...opts, credentials: staticCredentials({ [tokenProxy.host]: { username: token.users.user, password: token.users.pass } }) });
    const challenge = `Bearer realm="${token.tokenIssuer!.url}",service="${token.tokenIssuer!.service}",scope="repository:team/app:pull repository:team/base:pull",error="insufficient_scope"`;
    tokenProxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 401, headers: { 'www-authenticate': challenge }, body: '{"errors":[{"code":"DENIED","message":"insufficient scope"}]}' } });
    expect((await c.getManifest(`${tokenProxy.host}/team/app:v1`)).digest).toBe(truth.digest);
    expect(issued.map((r) => r.scopes)).toEqual([['repository:team/app:pull'], ['repository:team/app:pull', 'repository:team/base:pull']]);
    await c.close();
  });

  it('never sends Authorization to the host a blob is redirected to', async () => {
    const c = new RegistryClient({ ...opts, credentials: staticCredentials({ [tokenProxy.host]: { username: token.users.user, password: token.users.pass } }) });
    tokenProxy.requests.length = 0;
    tokenProxy.addRule({ match: isBlobGet, fault: { kind: 'redirect' }, times: Infinity });
    const l = truth.layers[0]!;
    expect(sha256(await blobBytes(c, `${tokenProxy.host}/team/app`, l.digest, l.size))).toBe(l.digest);
    tokenProxy.clearRules();
    const blobReq = tokenProxy.requests.filter((r) => isBlobGet(r));
    expect(blobReq.length).toBeGreaterThan(0);
    expect(blobReq.every((r) => r.authorization)).toBe(true);
    expect(tokenProxy.other.requests.length).toBe(1);
    expect(tokenProxy.other.requests[0]!.authorization).toBe(false);
    await c.close();
  });
});

describe('credentials from files', () => {
  const auth = (u: string, p: string): string => Buffer.from(`${u}:${p}`).toString('base64');
  const write = (file: string, doc: unknown): string => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(doc));
    return file;
  };

  it('finds credentials in each auth file kind, most specific key first', async () => {
    const home = path.join(work, 'home');
    const run = path.join(work, 'run');
    const good = { auth: auth(basic.users.user, basic.users.pass) };
    const bad = { auth: auth(basic.users.user, 'stale') };
    const cases: { name: string; setup: () => Parameters<typeof loadCredentials>[0] }[] = [
      { name: '--creds', setup: () => ({ creds: `${basic.users.user}:${basic.users.pass}`, env: {} }) },
      { name: '--authfile', setup: () => ({ authfile: write(path.join(work, 'authfile.json'), { auths: { [basic.host]: good } }), env: {}, home }) },
      { name: 'REGISTRY_AUTH_FILE', setup: () => ({ env: { REGISTRY_AUTH_FILE: write(path.join(work, 'raf.json'), { auths: { [basic.host]: good } }) }, home }) },
      { name: 'XDG_RUNTIME_DIR', setup: () => (write(path.join(run, 'containers/auth.json'), { auths: { [basic.host]: good } }), { env: { XDG_RUNTIME_DIR: run }, home: path.join(work, 'nohome') }) },
      { name: '~/.config/containers', setup: () => (write(path.join(home, '.config/containers/auth.json'), { auths: { [basic.host]: good } }), { env: { XDG_RUNTIME_DIR: path.join(work, 'norun') }, home }) },
      { name: '~/.docker/config.json', setup: () => (write(path.join(work, 'dh/.docker/config.json'), { auths: { [`http://${basic.host}/v2/`]: good } }), { env: { XDG_RUNTIME_DIR: path.join(work, 'norun') }, home: path.join(work, 'dh') }) },
      {
        name: 'repository-scoped key wins over the host key',
        setup: () => ({ authfile: write(path.join(work, 'scoped.json'), { auths: { [basic.host]: bad, [`${basic.host}/team`]: good } }), env: {}, home: path.join(work, 'nohome') }),
      },
    ];
    for (const k of cases) {
      const c = new RegistryClient({ ...opts, credentials: await loadCredentials(k.setup()) });
      const m = await c.getManifest(`${basic.host}/team/app:v1`).catch((e: Error) => {
        throw new Error(`${k.name}: ${e.message}`);
      });
      expect(m.digest, k.name).toBe(truth.digest);
      await c.close();
    }
  });

  it('maps Docker Hub legacy keys and warns about credential helpers', async () => {
    const warnings: string[] = [];
    const file = write(path.join(work, 'hub.json'), { auths: { 'https://index.docker.io/v1/': { auth: auth('hubuser', 'p:w') } }, credHelpers: { 'gcr.io': 'gcloud' } });
    const store = await loadCredentials({ authfile: file, env: {}, home: path.join(work, 'nohome'), onWarning: (w) => warnings.push(w) });
    expect(store.lookup('docker.io', 'library/alpine')).toEqual({ username: 'hubuser', password: 'p:w' });
    expect(store.lookup('quay.io', 'x/y')).toBeUndefined();
    expect(warnings.join('\n')).toMatch(/credential helpers/);
  });
});

describe('TLS and insecure registries', () => {
  it('reaches a self-signed https registry only with tlsVerify=false, and never falls back to http when verifying', async () => {
    const creds = staticCredentials({ [tls.host]: { username: tls.users.user, password: tls.users.pass } });
    const insecure = new RegistryClient({ ...opts, credentials: creds });
    const m = await insecure.getManifest(`${tls.host}/team/app:v1`);
    expect(m.source.origin).toBe(`https://${tls.host}`);
    const strict = new RegistryClient({ retryBaseMs: 5, credentials: creds });
    expect((await carrierError(strict.getManifest(`${tls.host}/team/app:v1`))).code).toBe('CARRIER_REGISTRY_ERROR');
    const strictPlain = new RegistryClient({ retryBaseMs: 5 });
    expect((await carrierError(strictPlain.getManifest(`${plain.host}/team/app:v1`))).code).toBe('CARRIER_REGISTRY_ERROR');
    // registries.conf marks the plain registry insecure: http is allowed for it alone.
    const conf = parseRegistriesConf(`[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`);
    const perHost = new RegistryClient({ retryBaseMs: 5, registriesConf: conf });
    expect((await perHost.getManifest(`${plain.host}/team/app:v1`)).source.origin).toBe(`http://${plain.host}`);
    await Promise.all([insecure.close(), strict.close(), strictPlain.close(), perHost.close()]);
  });
});

describe('the first request to a verified https registry', () => {
  it('is the manifest itself, not a /v2/ ping: its 401 names the challenge, answered once, later requests carry the credentials, all on one connection', async () => {
    const certDir = path.join(work, 'tls-certs');
    fs.mkdirSync(certDir, { recursive: true });
    fs.writeFileSync(path.join(certDir, 'ca.crt'), tls.caCert!);
    const sent: { path: string; auth: boolean }[] = [];
    const onCreate = ({ request }: { request: { path: string; headers: string | string[] } }): void => {
      // (undici hands the headers over as [name, value, …] or as raw header lines)
      const h = request.headers;
      const auth = Array.isArray(h) ? h.some((x, i) => i % 2 === 0 && /^authorization$/i.test(String(x))) : /^authorization:/im.test(h);
      sent.push({ path: request.path, auth });
    };
    let connections = 0;
    const onConnected = (): void => void connections++;
    diagnostics.subscribe('undici:request:create', onCreate as (m: unknown) => void);
    diagnostics.subscribe('undici:client:connected', onConnected);
    try {
      const creds = staticCredentials({ [tls.host]: { username: tls.users.user, password: tls.users.pass } });
      const c = new RegistryClient({ retryBaseMs: 5, certDir, credentials: creds });
      const m = await c.getManifest(`${tls.host}/team/app:v1`);
      expect(m.digest).toBe(truth.digest);
      const l = truth.layers[0]!;
      expect(sha256(await blobBytes(c, `${tls.host}/team/app`, l.digest, l.size))).toBe(l.digest);
      await c.close();
      expect(sent).toEqual([
        { path: '/v2/team/app/manifests/v1', auth: false },
        { path: '/v2/team/app/manifests/v1', auth: true },
        { path: `/v2/team/app/blobs/${l.digest}`, auth: true },
      ]);
      // one after the other, on one connection: one TLS handshake
      expect(connections).toBe(1);
      // an unknown tag asked first is still not found
      const fresh = new RegistryClient({ retryBaseMs: 5, certDir, credentials: creds });
      expect((await carrierError(fresh.getManifest(`${tls.host}/team/app:nope`))).code).toBe('CARRIER_NOT_FOUND');
      await fresh.close();
    } finally {
      diagnostics.unsubscribe('undici:request:create', onCreate as (m: unknown) => void);
      diagnostics.unsubscribe('undici:client:connected', onConnected);
    }
  });
  it('answered 403 (not 401) without credentials, asks /v2/ for the challenge and sends the manifest request again with them', async () => {
    // A registry variant (some answer an anonymous client 403): an https front in this process, fault-injecting only
    // that answer, before the real htpasswd registry.
    const certs = path.join(work, 'front-403');
    fs.mkdirSync(certs, { recursive: true });
    const c = selfSignedCert(certs, 'front');
    fs.copyFileSync(c.cert, path.join(certs, 'ca.crt'));
    const seen: { path: string; auth: boolean }[] = [];
    const front = https.createServer({ cert: c.certPem, key: c.keyPem }, (req, res) => {
      const auth = req.headers.authorization !== undefined;
      seen.push({ path: req.url!, auth });
      if (!auth && req.url!.includes('/manifests/')) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
        return;
      }
      const up = http.request(`${basic.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: basic.host } }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(front.address() as { port: number }).port}`;
    try {
      const creds = staticCredentials({ [host]: { username: basic.users.user, password: basic.users.pass } });
      const client = new RegistryClient({ retryBaseMs: 5, certDir: certs, credentials: creds });
      const m = await client.getManifest(`${host}/team/app:v1`);
      expect(m.digest).toBe(truth.digest);
      await client.close();
      expect(seen.map((r) => `${r.path} ${r.auth ? 'with' : 'without'} credentials`)).toEqual([
        '/v2/team/app/manifests/v1 without credentials',
        '/v2/ without credentials',
        '/v2/team/app/manifests/v1 with credentials',
      ]);
    } finally {
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });
});

describe('registries.conf mirrors', () => {
  it('pulls through a pull-through-cache mirror, falls back to the primary when the mirror fails, refuses blocked registries', async () => {
    const mirror = await startRegistry({ proxyRemote: plain.url });
    try {
      const conf = parseRegistriesConf(
        `[[registry]]\nprefix = "example.test/team"\nlocation = "${plain.host}/team"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}/team"\ninsecure = true\n`,
      );
      const c = new RegistryClient({ retryBaseMs: 5, registriesConf: conf });
      const m = await c.getManifest('example.test/team/app:v1');
      expect(m.digest).toBe(truth.digest);
      expect(m.source).toMatchObject({ registry: mirror.host, repository: 'team/app', mirror: true });
      const l = truth.layers[0]!;
      expect(sha256(await blobBytes(c, 'example.test/team/app', l.digest, l.size))).toBe(l.digest);
      // The mirror now holds the blob itself (the cache writes it while streaming: poll briefly).
      let cached = 0;
      for (let i = 0; i < 60 && cached !== 200; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 50));
        cached = (await fetch(`${mirror.url}/v2/team/app/blobs/${l.digest}`, { method: 'HEAD' })).status;
      }
      expect(cached).toBe(200);
      await c.close();

      const dead = await freePort();
      const conf2 = parseRegistriesConf(
        `[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "127.0.0.1:${dead}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}/nothing-here"\ninsecure = true\n`,
      );
      const c2 = new RegistryClient({ retryBaseMs: 5, maxRetries: 1, registriesConf: conf2 });
      const m2 = await c2.getManifest(`${plain.host}/team/app:v1`);
      expect(m2.source).toMatchObject({ registry: plain.host, mirror: false });
      expect(sha256(await blobBytes(c2, `${plain.host}/team/app`, l.digest, l.size))).toBe(l.digest);
      await c2.close();

      const conf3 = parseRegistriesConf(`[[registry]]\nlocation = "${plain.host}"\nblocked = true\n`);
      const c3 = new RegistryClient({ ...opts, registriesConf: conf3 });
      expect((await carrierError(c3.getManifest(`${plain.host}/team/app:v1`))).code).toBe('CARRIER_BLOCKED');
      expect((await carrierError(c3.getBlob(`${plain.host}/team/app`, l.digest))).code).toBe('CARRIER_BLOCKED');
      await c3.close();
    } finally {
      await mirror.stop();
    }
  }, 30_000);
});

// Push against registries that fail: 5xx and 429 storms, a registry killed mid-upload and started again, wrong
// credentials (htpasswd and token auth), a registry that answers an upload with another digest, a cancelled push,
// a blocked registry. A push that fails leaves no tag naming a partial image; one that succeeds is pulled by podman
// with the same image id.
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it, expect, afterAll } from 'vitest';
import { Store, RegistryClient, pull, push, CarrierError } from '../src/index.js';
import { startRegistry } from './support/registry.js';
import { startRestartableRegistry, type RestartableRegistry } from './support/restartable-registry.js';
import { registryRig } from './support/registry-rig.js';
import { Podman, type TestImage } from './support/images.js';
import { snapshot } from './support/store.js';
import * as H from './support/hostile.js';
import { prng } from './support/fixtures.js';

let img: TestImage;
let store: Store;
const NAME = () => `${rig.reg.host}/lib/big:1`;
const rig = registryRig('push-faults-test', { proxy: { keepHost: true }, resetProxy: true }, async () => {
  img = await rig.buildAndPush('img', 'lib/big:1', {
    label: 'faults',
    layers: [
      { compression: 'gzip', entries: [H.file('big.bin', prng(2 << 20, 'push-faults'))] },
      { compression: 'gzip', entries: [H.file('small', 'small\n')] },
    ],
  });
  store = await Store.open({ root: path.join(rig.work, 'store/root'), runroot: path.join(rig.work, 'store/run'), driver: 'vfs' });
  await pull(store, NAME(), { tlsVerify: false });
});

afterAll(async () => {
  await store?.close();
});

let n = 0;
/** podman pull, run asynchronously: a token issuer in this process must answer it. */
async function podmanId(ref: string, creds?: string): Promise<string> {
  const podman = new Podman(path.join(rig.work, `podman-${n++}`), 'vfs');
  const args = ['--root', podman.root, '--runroot', podman.runroot, '--storage-driver', 'vfs', 'pull', '-q', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), ref];
  await new Promise<void>((resolve, reject) => {
    execFile('podman', args, { env: podman.env, timeout: 60_000 }, (err, _out, stderr) => (err ? reject(new Error(`podman pull ${ref}: ${stderr}`)) : resolve()));
  });
  return podman.inspect(ref).Id;
}

async function manifestStatus(url: string, repo: string, tag: string): Promise<number> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return res.status;
}

const quickClient = (): RegistryClient => new RegistryClient({ tlsVerify: false, retryBaseMs: 20 });

describe('push through registry faults', () => {
  it('rides out 5xx and 429 storms on every kind of request', async () => {
    const upload = (m: string) => (q: { method: string; path: string }) => q.method === m && q.path.includes('/blobs/uploads/');
    rig.proxy.addRule({ match: (q) => q.method === 'HEAD' && q.path.includes('/blobs/'), fault: { kind: 'status', status: 502 }, times: 2 });
    rig.proxy.addRule({ match: upload('POST'), fault: { kind: 'status', status: 429, headers: { 'retry-after': '0' } }, times: 3 });
    rig.proxy.addRule({ match: upload('PATCH'), fault: { kind: 'status', status: 503 }, times: 3 });
    rig.proxy.addRule({ match: upload('PUT'), fault: { kind: 'status', status: 500 }, times: 2 });
    rig.proxy.addRule({ match: (q) => q.method === 'PUT' && q.path.includes('/manifests/'), fault: { kind: 'status', status: 504 }, times: 2 });
    const client = quickClient();
    try {
      const r = await push(store, NAME(), `${rig.proxy.host}/storm/big:1`, { registry: client, chunkSize: 256 << 10 });
      expect(rig.proxy.pending()).toBe(0);
      expect(r.manifestDigest).toBe(img.manifestDigest);
      expect(await podmanId(`${rig.reg.host}/storm/big:1`)).toBe(img.configDigest.slice(7));
    } finally {
      await client.close();
    }
  });

  it('finishes a push whose registry was killed mid-upload and started again', async () => {
    const rreg: RestartableRegistry = await startRestartableRegistry();
    const client = new RegistryClient({ tlsVerify: false, retryBaseMs: 100 });
    try {
      let restarted: Promise<void> | undefined;
      const r = await push(store, NAME(), `${rreg.host}/killed/big:1`, {
        registry: client,
        chunkSize: 128 << 10,
        concurrency: 1,
        onProgress: (e) => {
          if (e.type === 'progress' && e.bytes > 0 && e.bytes < e.size && !restarted) {
            restarted = rreg.kill().then(() => new Promise((res) => setTimeout(res, 300))).then(() => rreg.start());
          }
        },
      });
      expect(restarted).toBeDefined();
      await restarted;
      expect(r.manifestDigest).toBe(img.manifestDigest);
      expect(await podmanId(`${rreg.host}/killed/big:1`)).toBe(img.configDigest.slice(7));
    } finally {
      await client.close();
      await rreg.stop();
    }
  });

  it('finishes a recompressing push (zstd) whose PATCHes failed: each retry compresses the layer again from its tar', async () => {
    rig.proxy.addRule({ match: (q) => q.method === 'PATCH', fault: { kind: 'status', status: 503 }, times: 3 });
    const client = quickClient();
    try {
      const r = await push(store, NAME(), `${rig.proxy.host}/recompressed/big:1`, { registry: client, compressionFormat: 'zstd', chunkSize: 128 << 10 });
      expect(rig.proxy.pending()).toBe(0);
      expect(r.layers.map((l) => l.state)).toEqual(['recompressed', 'recompressed']);
      expect(await podmanId(`${rig.reg.host}/recompressed/big:1`)).toBe(img.configDigest.slice(7));
    } finally {
      await client.close();
    }
  });

  it('resumes a streamed PATCH that got no answer from the offset the registry reports, in the same session', async () => {
    let patches = 0;
    rig.proxy.addRule({ match: (q) => q.method === 'PATCH' && ++patches === 1, fault: { kind: 'hang' } });
    const client = new RegistryClient({ tlsVerify: false, retryBaseMs: 20, requestTimeoutMs: 1500 });
    try {
      const r = await push(store, NAME(), `${rig.proxy.host}/resumed/big:1`, { registry: client, chunkSize: 256 << 10, concurrency: 1 });
      expect(rig.proxy.pending()).toBe(0);
      const status = rig.proxy.requests.filter((q) => q.method === 'GET' && q.path.includes('/blobs/uploads/'));
      expect(status.length).toBe(1);
      // One upload session for the big blob (resumed, not restarted), one for the small one, one for the config.
      expect(rig.proxy.requests.filter((q) => q.method === 'POST' && q.path.includes('/blobs/uploads/')).length).toBe(3);
      expect(r.manifestDigest).toBe(img.manifestDigest);
      expect(await podmanId(`${rig.reg.host}/resumed/big:1`)).toBe(img.configDigest.slice(7));
    } finally {
      await client.close();
    }
  });

  it('restarts an upload whose PATCH reached the registry but whose answer was lost (the registry then drops the upload)', async () => {
    let patches = 0;
    rig.proxy.addRule({ match: (q) => q.method === 'PATCH' && ++patches === 1, fault: { kind: 'drop' } });
    const client = quickClient();
    try {
      const r = await push(store, NAME(), `${rig.proxy.host}/restarted/big:1`, { registry: client, chunkSize: 256 << 10, concurrency: 1 });
      expect(rig.proxy.pending()).toBe(0);
      // The big blob's session was dropped and a second one opened; then the small blob's and the config's.
      expect(rig.proxy.requests.filter((q) => q.method === 'POST' && q.path.includes('/blobs/uploads/')).length).toBe(4);
      expect(r.manifestDigest).toBe(img.manifestDigest);
      expect(await podmanId(`${rig.reg.host}/restarted/big:1`)).toBe(img.configDigest.slice(7));
    } finally {
      await client.close();
    }
  });

  it('refuses an upload the registry stored under another digest, and puts no manifest', async () => {
    rig.proxy.addRule({
      match: (q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/'),
      fault: { kind: 'headers', set: { 'docker-content-digest': `sha256:${'0'.repeat(64)}` } },
    });
    const err = await push(store, NAME(), `${rig.proxy.host}/lying/big:1`, { tlsVerify: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CarrierError);
    expect((err as CarrierError).code).toBe('CARRIER_DIGEST_MISMATCH');
    expect((err as Error).message).toContain(rig.proxy.host);
    expect(await manifestStatus(rig.reg.url, 'lying/big', '1')).toBe(404);
  });

  it('leaves no tag and the store unchanged when the push is cancelled mid-upload', async () => {
    const before = snapshot(path.join(rig.work, 'store/root'));
    const ac = new AbortController();
    const err = await push(store, NAME(), `${rig.proxy.host}/cancelled/big:1`, {
      tlsVerify: false,
      signal: ac.signal,
      chunkSize: 128 << 10,
      onProgress: (e) => {
        if (e.type === 'progress' && e.bytes > 0) ac.abort();
      },
    }).catch((e: unknown) => e);
    expect((err as CarrierError).code).toBe('ABORT_ERR');
    expect(await manifestStatus(rig.reg.url, 'cancelled/big', '1')).toBe(404);
    expect(snapshot(path.join(rig.work, 'store/root'))).toEqual(before);
  });

  it('refuses a registry registries.conf blocks, before any request', async () => {
    const conf = path.join(rig.work, 'registries-blocked.conf');
    fs.writeFileSync(conf, `[[registry]]\nlocation = "${rig.proxy.host}"\nblocked = true\n`);
    const err = await push(store, NAME(), `${rig.proxy.host}/blocked/big:1`, { tlsVerify: false, registriesConf: conf }).catch((e: unknown) => e);
    expect((err as CarrierError).code).toBe('CARRIER_BLOCKED');
    expect(rig.proxy.requests).toEqual([]);
  });
});

describe('push with credentials', () => {
  for (const auth of ['htpasswd', 'token'] as const) {
    it(`pushes with ${auth} auth, and names the registry when the credentials are wrong`, async () => {
      const areg = await startRegistry({ auth });
      try {
        const err = await push(store, NAME(), `${areg.host}/auth/big:1`, { tlsVerify: false, creds: `${areg.users.user}:wrong` }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CarrierError);
        expect((err as CarrierError).code).toBe('CARRIER_UNAUTHORIZED');
        expect((err as Error).message).toContain(areg.host);
        expect(await manifestStatus(areg.url, 'auth/big', '1')).not.toBe(200);

        const creds = `${areg.users.user}:${areg.users.pass}`;
        const r = await push(store, NAME(), `${areg.host}/auth/big:1`, { tlsVerify: false, creds });
        expect(r.manifestDigest).toBe(img.manifestDigest);
        expect(await podmanId(`${areg.host}/auth/big:1`, creds)).toBe(img.configDigest.slice(7));
        if (auth === 'token') {
          const scopes = areg.tokenIssuer!.requests.filter((q) => !q.rejected).flatMap((q) => q.scopes);
          expect(scopes).toContain('repository:auth/big:pull,push');
        }
      } finally {
        await areg.stop();
      }
    });
  }

  it('reads the credentials from an auth.json (--authfile)', async () => {
    const areg = await startRegistry({ auth: 'htpasswd' });
    try {
      const authfile = path.join(rig.work, 'auth.json');
      const auth = Buffer.from(`${areg.users.user}:${areg.users.pass}`).toString('base64');
      fs.writeFileSync(authfile, JSON.stringify({ auths: { [areg.host]: { auth } } }));
      const r = await push(store, NAME(), `${areg.host}/authfile/big:1`, { tlsVerify: false, authfile });
      expect(r.manifestDigest).toBe(img.manifestDigest);
    } finally {
      await areg.stop();
    }
  });
});

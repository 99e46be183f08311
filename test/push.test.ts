// push and copy against the real CNCF registry: what Carrier pushes, podman pulls with the same image id and skopeo
// inspects with the same digests; a pulled image pushed unchanged keeps its manifest digest; a store image whose
// blobs are not cached (or no longer verify in the cache) is rebuilt from its tar-split and gzip-compressed on the way;
// registry → registry mounts within one registry (counted at a proxy) and streams between two; registry → oci: →
// registry keeps every digest.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import { Store, pull, push, copy, CarrierError, type CopyEvent } from '../src/index.js';
import { startRegistry, storedImage, buildMultiArchLayout, type TestRegistry } from './support/registry.js';
import { registryRig } from './support/registry-rig.js';
import { Podman, sha256, type TestImage } from './support/images.js';
import * as H from './support/hostile.js';
import { prng } from './support/fixtures.js';

let other: TestRegistry;
let img: TestImage;
let big: TestImage;
const rig = registryRig('push-test', { proxy: { keepHost: true }, resetProxy: true }, async () => {
  other = await startRegistry();
  img = await rig.buildAndPush('img', 'lib/a:1', { label: 'push' });
  await rig.push(img, 'lib/a-v2s2:1', { format: 'v2s2' });
  big = await rig.buildAndPush('big', 'lib/big:1', { label: 'big', layers: [{ compression: 'gzip', entries: [H.file('big.bin', prng(3 << 20, 'push-big'))] }] });
  const multi = buildMultiArchLayout(path.join(rig.work, 'multi'), [{ architecture: 'amd64' }, { architecture: 'arm64', variant: 'v8' }]);
  await rig.push(multi, 'lib/multi:1', { multiArch: true });
});

afterAll(async () => {
  await other?.stop();
});

let n = 0;
async function newStore(): Promise<Store> {
  const dir = path.join(rig.work, `store-${n++}`);
  return Store.open({ root: path.join(dir, 'root'), runroot: path.join(dir, 'run'), driver: 'vfs' });
}

function skopeoInspect(ref: string): { Digest: string; Layers: string[]; LayersData?: { Digest: string }[] } {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', ref]).toString()) as { Digest: string; Layers: string[] };
}

function podmanPull(ref: string): { id: string; podman: Podman } {
  const podman = new Podman(path.join(rig.work, `p${n++}`), 'vfs');
  podman.run(['pull', '-q', '--tls-verify=false', ref]);
  return { id: podman.inspect(ref).Id, podman };
}

describe('push to a registry', () => {
  it('keeps every digest of a pulled image pushed unchanged, the manifest’s included; podman and skopeo agree', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.reg.host}/lib/a:1`, { tlsVerify: false });
      const events: CopyEvent[] = [];
      const r = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.reg.host}/pushed/a:2`, { tlsVerify: false, onProgress: (e) => events.push(e) });
      const src = await storedImage(rig.reg, 'lib/a', '1');
      expect(r.manifestReused).toBe(true);
      expect(r.manifestDigest).toBe(src.digest);
      expect(r.id).toBe(img.configDigest.slice(7));
      const got = await storedImage(rig.reg, 'pushed/a', '2');
      expect(got.digest).toBe(src.digest);
      expect(got.manifest.equals(src.manifest)).toBe(true);
      const inspected = skopeoInspect(`docker://${rig.reg.host}/pushed/a:2`);
      expect(inspected.Digest).toBe(src.digest);
      expect(inspected.Layers).toEqual(src.layers.map((l) => l.digest));
      expect(podmanPull(`${rig.reg.host}/pushed/a:2`).id).toBe(img.configDigest.slice(7));
      expect(events.at(-1)).toMatchObject({ type: 'committed', id: r.id });
    } finally {
      await store.close();
    }
  });

  it('rebuilds a layer whose blob is not cached from its tar-split and gzip-compresses it as it streams up', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.reg.host}/lib/a:1`, { tlsVerify: false, blobCache: false });
      const r = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.reg.host}/rebuilt/a:1`, { tlsVerify: false, blobCache: false });
      expect(r.manifestReused).toBe(false);
      expect(r.layers.every((l) => l.state === 'recompressed')).toBe(true);
      const got = await storedImage(rig.reg, 'rebuilt/a', '1');
      expect(got.digest).toBe(r.manifestDigest);
      const doc = JSON.parse(got.manifest.toString()) as { config: { digest: string }; layers: { mediaType: string; digest: string; size: number }[] };
      expect(doc.config.digest).toBe(img.configDigest);
      expect(doc.layers.map((l) => l.mediaType)).toEqual(img.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+gzip'));
      for (const [i, l] of got.layers.entries()) {
        expect(sha256(l.blob)).toBe(l.digest);
        expect(l.digest).toBe(r.layers[i]!.digest);
      }
      const inspected = skopeoInspect(`docker://${rig.reg.host}/rebuilt/a:1`);
      expect(inspected.Digest).toBe(r.manifestDigest);
      expect(inspected.Layers).toEqual(r.layers.map((l) => l.digest));
      const { id, podman } = podmanPull(`${rig.reg.host}/rebuilt/a:1`);
      expect(id).toBe(img.configDigest.slice(7));
      expect(podman.inspect(`${rig.reg.host}/rebuilt/a:1`).RootFS.Layers).toEqual(img.layers.map((l) => l.diffID));
    } finally {
      await store.close();
    }
  });

  it('rebuilds a layer whose cached blob no longer verifies (a crash left it corrupt), evicts that blob, and pushes the right bytes', async () => {
    const store = await newStore();
    const cache = path.join(rig.work, `cache-${n++}`);
    try {
      await pull(store, `${rig.reg.host}/lib/a:1`, { tlsVerify: false, blobCacheDir: cache });
      const src = await storedImage(rig.reg, 'lib/a', '1');
      const bad = path.join(cache, 'sha256', src.layers[0]!.digest.slice(7));
      // Same size, one byte changed: the cache's size check cannot tell.
      const bytes = fs.readFileSync(bad);
      bytes[bytes.length >> 1] ^= 0xff;
      fs.writeFileSync(bad, bytes);
      // Another registry: within this one the blobs would be mounted, never read.
      const r = await push(store, `${rig.reg.host}/lib/a:1`, `${other.host}/bad-cache/a:1`, { tlsVerify: false, blobCacheDir: cache });
      expect(fs.existsSync(bad)).toBe(false);
      expect(r.manifestReused).toBe(false);
      expect(r.layers[0]!.state).toBe('recompressed');
      expect(r.layers.slice(1).map((l) => l.digest)).toEqual(src.layers.slice(1).map((l) => l.digest));
      const got = await storedImage(other, 'bad-cache/a', '1');
      expect(got.digest).toBe(r.manifestDigest);
      for (const [i, l] of got.layers.entries()) {
        expect(sha256(l.blob)).toBe(l.digest);
        expect(l.digest).toBe(r.layers[i]!.digest);
      }
      expect(podmanPull(`${other.host}/bad-cache/a:1`).id).toBe(img.configDigest.slice(7));
    } finally {
      await store.close();
    }
  });

  it('skips blobs the registry has (HEAD) and streams a large blob in one PATCH with Content-Range for the whole blob', async () => {
    const store = await newStore();
    const ranges: (string | undefined)[] = [];
    rig.proxy.addRule({ match: (q) => (q.method === 'PATCH' && ranges.push(q.headers['content-range'] as string | undefined), false), fault: { kind: 'hang' } });
    try {
      await pull(store, `${rig.reg.host}/lib/big:1`, { tlsVerify: false });
      const r1 = await push(store, `${rig.reg.host}/lib/big:1`, `${rig.proxy.host}/chunked/big:1`, { tlsVerify: false, chunkSize: 256 << 10 });
      expect(rig.proxy.requests.filter((q) => q.method === 'PATCH').length).toBe(1);
      expect(ranges).toEqual([`0-${big.layers[0]!.size - 1}`]);
      expect(r1.layers[0]!.state).toBe('copied');
      rig.proxy.requests.length = 0;
      const r2 = await push(store, `${rig.reg.host}/lib/big:1`, `${rig.proxy.host}/chunked/big:2`, { tlsVerify: false });
      expect(r2.layers[0]!.state).toBe('exists');
      expect(rig.proxy.requests.filter((q) => q.method === 'PATCH' || q.method === 'POST')).toEqual([]);
      expect(r2.manifestDigest).toBe(r1.manifestDigest);
      expect(podmanPull(`${rig.reg.host}/chunked/big:2`).id).toBe(big.configDigest.slice(7));
    } finally {
      await store.close();
    }
  });

  it('keeps the config bytes (the image id) of a Docker schema 2 image whose layers are rebuilt', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.reg.host}/lib/a-v2s2:1`, { tlsVerify: false, blobCache: false });
      const r = await push(store, `${rig.reg.host}/lib/a-v2s2:1`, `${rig.reg.host}/v2/a:1`, { tlsVerify: false, blobCache: false });
      expect(r.layers.every((l) => l.state === 'recompressed')).toBe(true);
      // The store offers rebuilt layers under an OCI manifest (store-source.ts), so the pushed manifest is OCI.
      const got = await storedImage(rig.reg, 'v2/a', '1');
      const doc = JSON.parse(got.manifest.toString()) as { config: { digest: string; size: number } };
      expect(doc.config.digest).toBe(img.configDigest);
      expect(doc.config.size).toBe(img.config.length);
      expect(podmanPull(`${rig.reg.host}/v2/a:1`).id).toBe(img.configDigest.slice(7));
    } finally {
      await store.close();
    }
  });
});

describe('push to the other transports', () => {
  it('pushes to docker-archive: (podman loads the same image id), oci: (skopeo reads the same digest), and into the same store under a new name', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.reg.host}/lib/a:1`, { tlsVerify: false });
      const archive = path.join(rig.work, 'pushed-docker.tar');
      await push(store, `${rig.reg.host}/lib/a:1`, `docker-archive:${archive}:localhost/pushed:1`);
      const layout = path.join(rig.work, 'pushed-oci');
      await push(store, `${rig.reg.host}/lib/a:1`, `oci:${layout}:v1`);
      const podman = new Podman(path.join(rig.work, `p${n++}`), 'vfs');
      podman.run(['load', '-q', '-i', archive]);
      expect(podman.inspect('localhost/pushed:1').Id).toBe(img.configDigest.slice(7));
      // podman 4.3 cannot load an OCI layout directory (and names an oci: pull after its path): skopeo reads it.
      expect(skopeoInspect(`oci:${layout}:v1`).Digest).toBe((await storedImage(rig.reg, 'lib/a', '1')).digest);
      const r = await push(store, `${rig.reg.host}/lib/a:1`, 'containers-storage:localhost/renamed:2');
      expect(r.id).toBe(img.configDigest.slice(7));
      expect((await store.image('localhost/renamed:2'))?.id).toBe(r.id);
    } finally {
      await store.close();
    }
  });
});

describe('push options', () => {
  it('compresses with zstd on native threads (--compression-format zstd), recompressing cached gzip blobs too; podman pulls the same id', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.reg.host}/lib/a:1`, { tlsVerify: false });
      const r = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.reg.host}/zstd/a:1`, { tlsVerify: false, compressionFormat: 'zstd' });
      expect(r.layers.every((l) => l.state === 'recompressed')).toBe(true);
      const got = await storedImage(rig.reg, 'zstd/a', '1');
      const doc = JSON.parse(got.manifest.toString()) as { mediaType: string; config: { digest: string }; layers: { mediaType: string }[] };
      expect(doc.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(doc.config.digest).toBe(img.configDigest);
      expect(new Set(doc.layers.map((l) => l.mediaType))).toEqual(new Set(['application/vnd.oci.image.layer.v1.tar+zstd']));
      for (const l of got.layers) expect(l.blob.readUInt32LE(0)).toBe(0xfd2fb528);
      const { id, podman } = podmanPull(`${rig.reg.host}/zstd/a:1`);
      expect(id).toBe(img.configDigest.slice(7));
      expect(podman.inspect(`${rig.reg.host}/zstd/a:1`).RootFS.Layers).toEqual(img.layers.map((l) => l.diffID));
    } finally {
      await store.close();
    }
  });
});

describe('copy between transports', () => {
  it('mounts every blob when source and destination are in one registry (no upload), keeping the manifest digest', async () => {
    const r = await copy(`docker://${rig.proxy.host}/lib/a:1`, `docker://${rig.proxy.host}/mounted/a:1`, { tlsVerify: false });
    const mounts = rig.proxy.requests.filter((q) => q.method === 'POST' && q.path.includes('mount='));
    expect(mounts.length).toBe(img.layers.length + 1);
    expect(r.layers.every((l) => l.state === 'reused')).toBe(true);
    expect(rig.proxy.requests.filter((q) => q.method === 'PATCH')).toEqual([]);
    expect(r.manifestDigest).toBe((await storedImage(rig.reg, 'lib/a', '1')).digest);
    expect(skopeoInspect(`docker://${rig.reg.host}/mounted/a:1`).Digest).toBe(r.manifestDigest);
  });

  it('copies every image of an index with all, then the index byte for byte', async () => {
    const r = await copy(`docker://${rig.reg.host}/lib/multi:1`, `docker://${other.host}/multi/m:1`, { tlsVerify: false, all: true });
    const index = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${rig.reg.host}/lib/multi:1`]);
    expect(r.digest).toBe(sha256(index));
    const listed = (JSON.parse(index.toString()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
    expect(r.instances).toEqual(listed);
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${other.host}/multi/m:1`]);
    expect(raw.equals(index)).toBe(true);
    for (const digest of listed) {
      const res = await fetch(`${other.url}/v2/multi/m/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(res.status).toBe(200);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    }
  });

  it('mounts the blobs of a store image named in the destination registry instead of uploading them', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.proxy.host}/lib/a:1`, { tlsVerify: false });
      rig.proxy.requests.length = 0;
      const r = await push(store, `${rig.proxy.host}/lib/a:1`, `${rig.proxy.host}/store-mounted/a:1`, { tlsVerify: false });
      expect(r.layers.every((l) => l.state === 'reused')).toBe(true);
      expect(rig.proxy.requests.filter((q) => q.method === 'POST' && q.path.includes('mount=')).length).toBe(img.layers.length + 1);
      expect(rig.proxy.requests.filter((q) => q.method === 'PATCH' || (q.method === 'PUT' && q.path.includes('/blobs/')))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('refuses a source the signature policy rejects before anything reaches the destination', async () => {
    const policy = path.join(rig.work, 'reject-policy.json');
    fs.writeFileSync(policy, JSON.stringify({ default: [{ type: 'reject' }] }));
    rig.proxy.requests.length = 0;
    const err = await copy(`docker://${rig.reg.host}/lib/a:1`, `docker://${rig.proxy.host}/refused/a:1`, { tlsVerify: false, signaturePolicy: policy }).catch((e: unknown) => e);
    expect((err as CarrierError).code).toBe('CARRIER_POLICY_DENIED');
    expect(rig.proxy.requests).toEqual([]);
  });

  it('streams registry → another registry without unpacking, every digest kept', async () => {
    const r = await copy(`docker://${rig.reg.host}/lib/a:1`, `docker://${other.host}/x/a:1`, { tlsVerify: false });
    const src = await storedImage(rig.reg, 'lib/a', '1');
    expect(r.manifestDigest).toBe(src.digest);
    expect(r.layers.every((l) => l.state === 'copied')).toBe(true);
    const got = await storedImage(other, 'x/a', '1');
    expect(got.manifest.equals(src.manifest)).toBe(true);
    expect(podmanPull(`${other.host}/x/a:1`).id).toBe(img.configDigest.slice(7));
  });

  it('registry → oci: → registry keeps every digest', async () => {
    const dir = path.join(rig.work, 'layout-rt');
    await copy(`docker://${rig.reg.host}/lib/a:1`, `oci:${dir}:v1`, { tlsVerify: false });
    expect(fs.existsSync(path.join(dir, 'index.json'))).toBe(true);
    const r = await copy(`oci:${dir}:v1`, `docker://${other.host}/rt/a:1`, { tlsVerify: false });
    const src = await storedImage(rig.reg, 'lib/a', '1');
    expect(r.manifestDigest).toBe(src.digest);
    expect(skopeoInspect(`docker://${other.host}/rt/a:1`).Layers).toEqual(src.layers.map((l) => l.digest));
  });

});

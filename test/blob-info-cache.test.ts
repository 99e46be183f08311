// The blob-info cache: a push remembers which compressed blob each layer became in which repository, so a later push
// of the same layers to that registry skips (HEAD) or mounts them instead of compressing them again — counted at a
// proxy in front of the real CNCF registry, never timed.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { Store, pull, push } from '../src/index.js';
import { BlobInfoCache } from '../src/registry/blob-info-cache.js';
import { storedImage } from './support/registry.js';
import type { FaultProxy } from './support/fault-proxy.js';
import { registryRig } from './support/registry-rig.js';
import { sha256, type TestImage } from './support/images.js';

let img: TestImage;
const rig = registryRig('blob-info-test', { proxy: { keepHost: true }, resetProxy: true }, async () => {
  img = await rig.buildAndPush('img', 'lib/a:1', { label: 'blob-info' });
});

let n = 0;
/** A store holding lib/a:1 without its compressed blobs: a push has to rebuild and compress every layer. */
async function storeWithoutBlobs(): Promise<Store> {
  const dir = path.join(rig.work, `store-${n++}`);
  const store = await Store.open({ root: path.join(dir, 'root'), runroot: path.join(dir, 'run'), driver: 'vfs' });
  await pull(store, `${rig.reg.host}/lib/a:1`, { tlsVerify: false, blobCache: false });
  return store;
}

const uploads = (p: FaultProxy) => p.requests.filter((q) => q.method === 'PATCH' || (q.method === 'PUT' && q.path.includes('/blobs/uploads/')));
const mounts = (p: FaultProxy) => p.requests.filter((q) => q.method === 'POST' && q.path.includes('mount='));

describe('blob-info cache', () => {
  it('mounts the layers a first push compressed when the image goes to another repository of the registry, compressing nothing', async () => {
    const store = await storeWithoutBlobs();
    try {
      const first = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/first/a:1`, { tlsVerify: false, blobCache: false });
      expect(first.layers.map((l) => l.state)).toEqual(img.layers.map(() => 'recompressed'));
      rig.proxy.requests.length = 0;
      const second = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/second/a:1`, { tlsVerify: false, blobCache: false });
      expect(second.layers.map((l) => l.state)).toEqual(img.layers.map(() => 'reused'));
      expect(second.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest));
      expect(second.manifestDigest).toBe(first.manifestDigest);
      // every layer mounted from first/a; the only bytes uploaded are the config's (a store image names no
      // repository of this registry to mount it from)
      expect(mounts(rig.proxy).length).toBe(img.layers.length);
      expect(mounts(rig.proxy).every((q) => q.path.includes('from=first%2Fa'))).toBe(true);
      expect(uploads(rig.proxy).map((q) => q.method)).toEqual(['PUT']);
      expect(decodeURIComponent(uploads(rig.proxy)[0]!.path)).toContain(img.configDigest);
      const got = await storedImage(rig.reg, 'second/a', '1');
      expect(got.digest).toBe(first.manifestDigest);
      for (const l of got.layers) expect(sha256(l.blob)).toBe(l.digest);
    } finally {
      await store.close();
    }
  });

  it('skips layers the destination repository already has under the digest it remembers (HEAD), uploading nothing', async () => {
    const store = await storeWithoutBlobs();
    try {
      const first = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/again/a:1`, { tlsVerify: false, blobCache: false });
      rig.proxy.requests.length = 0;
      const again = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/again/a:2`, { tlsVerify: false, blobCache: false });
      expect(again.layers.map((l) => l.state)).toEqual(img.layers.map(() => 'exists'));
      expect(again.manifestDigest).toBe(first.manifestDigest);
      expect(uploads(rig.proxy)).toEqual([]);
      expect(mounts(rig.proxy)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('compresses as before when the cache is off, or when the blob it remembers is gone from the registry', async () => {
    const store = await storeWithoutBlobs();
    try {
      await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/off/a:1`, { tlsVerify: false, blobCache: false });
      const off = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/off2/a:1`, { tlsVerify: false, blobCache: false, blobInfoCache: false });
      expect(off.layers.map((l) => l.state)).toEqual(img.layers.map(() => 'recompressed'));
      // a cache that names blobs no repository has: HEAD and mount fail, the layers are compressed and uploaded
      const file = path.join(store.config.blobCache, 'blob-info-v1.json');
      const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { layers: Record<string, { digest: string; seen: Record<string, number> }[]> };
      for (const blobs of Object.values(doc.layers)) for (const b of blobs) b.digest = `sha256:${'0'.repeat(64)}`;
      fs.writeFileSync(file, JSON.stringify(doc));
      rig.proxy.requests.length = 0;
      const stale = await push(store, `${rig.reg.host}/lib/a:1`, `${rig.proxy.host}/stale/a:1`, { tlsVerify: false, blobCache: false });
      expect(stale.layers.map((l) => l.state)).toEqual(img.layers.map(() => 'recompressed'));
      expect(stale.manifestDigest).toBe(off.manifestDigest);
      expect(uploads(rig.proxy).length).toBeGreaterThanOrEqual(img.layers.length);
    } finally {
      await store.close();
    }
  });
});

describe('BlobInfoCache file', () => {
  it('answers per registry and compression, most recently seen first, and survives a corrupt file', async () => {
    const file = path.join(rig.work, 'info', 'blob-info-v1.json');
    const cache = new BlobInfoCache(file);
    const diff = `sha256:${'d'.repeat(64)}`;
    const gz = { digest: `sha256:${'1'.repeat(64)}`, size: 10, compression: 'gzip' as const };
    const zs = { digest: `sha256:${'2'.repeat(64)}`, size: 9, compression: 'zstd' as const };
    await cache.record(diff, gz, 'r.example', 'a/b');
    await cache.record(diff, zs, 'r.example', 'a/b');
    await new Promise((r) => setTimeout(r, 5));
    await cache.record(diff, gz, 'r.example', 'c/d');
    await cache.record(diff, gz, 'other.example', 'x');
    expect(await cache.candidates(diff, 'gzip', 'r.example')).toEqual([{ ...gz, repositories: ['c/d', 'a/b'] }]);
    expect(await cache.candidates(diff, 'zstd', 'r.example')).toEqual([{ ...zs, repositories: ['a/b'] }]);
    expect(await cache.candidates(diff, 'gzip', 'nowhere.example')).toEqual([]);
    fs.writeFileSync(file, '{not json');
    expect(await cache.candidates(diff, 'gzip', 'r.example')).toEqual([]);
    await cache.record(diff, gz, 'r.example', 'a/b');
    expect(await cache.candidates(diff, 'gzip', 'r.example')).toEqual([{ ...gz, repositories: ['a/b'] }]);
  });
});

// The blob cache is not made durable (no fsync of its files; a power loss may leave a cached blob torn or empty),
// because every use verifies it: a cached blob that is short (torn) or whose bytes changed (corrupt) is never
// applied as it is: the layer comes from the registry again and the cache holds the right bytes after the pull.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { Store } from '../src/store/store.js';
import { pull } from '../src/pull.js';
import { isBlobGet } from './support/fault-proxy.js';
import { registryRig } from './support/registry-rig.js';
import type { TestImage } from './support/images.js';
import { sha256File } from './support/fixtures.js';

let img: TestImage;
const rig = registryRig('blob-cache-verify', { proxy: true, resetProxy: true }, async () => {
  img = await rig.buildAndPush('img', 'lib/cv:1', { label: 'cache-verify' });
});

let n = 0;

/** Pulls the image into a fresh store with `cache`, then drops the image so the next pull needs its layers again. */
async function pullAndForget(cache: string): Promise<Store> {
  const dir = path.join(rig.work, `s${n++}`);
  const store = await Store.open({ root: path.join(dir, 'root'), runroot: path.join(dir, 'run') });
  await pull(store, `${rig.proxy.host}/lib/cv:1`, { tlsVerify: false, blobCacheDir: cache });
  await store.removeImage(`${rig.proxy.host}/lib/cv:1`);
  expect(await store.layers()).toEqual([]);
  return store;
}

// the base layer: gzip, pushed as built (skopeo compresses the uncompressed one on the way, under another digest)
const base = (): { digest: string; size: number } => img.layers[0]!;
const cachedPath = (cache: string): string => path.join(cache, 'sha256', base().digest.slice(7));
const blobGets = (): string[] => rig.proxy.requests.filter(isBlobGet).map((r) => r.path.replace(/.*\/blobs\//, ''));

describe('a cached blob that is not what its name says', () => {
  it.each([
    ['torn: cut short, as a crash before writeback leaves it', (f: string) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))],
    ['empty: its size written but no data, as a crash can leave it', (f: string) => {
      const size = fs.statSync(f).size;
      fs.truncateSync(f, 0);
      fs.truncateSync(f, size);
    }],
    ['corrupt: same size, one byte changed', (f: string) => {
      const fd = fs.openSync(f, 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, 100);
      b[0] = b[0]! ^ 0xff;
      fs.writeSync(fd, b, 0, 1, 100);
      fs.closeSync(fd);
    }],
  ])('%s: is refetched from the registry, and the cache holds the right bytes again', async (_what, damage) => {
    const cache = path.join(rig.work, `cache${n}`);
    const store = await pullAndForget(cache);
    damage(cachedPath(cache));
    rig.proxy.requests.length = 0;
    const r = await pull(store, `${rig.proxy.host}/lib/cv:1`, { tlsVerify: false, blobCacheDir: cache });
    expect(r.id).toBe(img.configDigest.slice(7));
    expect(blobGets()).toContain(base().digest);
    const layers = await store.layers();
    expect(layers.map((l) => l.diffDigest).sort()).toEqual([...img.diffIDs].sort());
    expect(fs.statSync(cachedPath(cache)).size).toBe(base().size);
    expect(await sha256File(cachedPath(cache))).toBe(base().digest);
    await store.close();
  });

  it('an intact cached blob is applied without the network', async () => {
    const cache = path.join(rig.work, `cache${n}`);
    const store = await pullAndForget(cache);
    rig.proxy.requests.length = 0;
    const r = await pull(store, `${rig.proxy.host}/lib/cv:1`, { tlsVerify: false, blobCacheDir: cache });
    expect(r.layers.every((l) => l.state === 'cached')).toBe(true);
    expect(blobGets()).toEqual([img.configDigest]);
    await store.close();
  });
});

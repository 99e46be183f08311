// Store lifecycle against the real tools: reference-aware rmi and prune checked with `podman images` on the same
// store at every step, `system df` checked against the real `du`, the orphan sweep on a store seeded with a killed
// commit and stray files (podman still reads it afterwards), blob cache GC (references, LRU cap, in-flight writers),
// and the CLI (image prune, system df/prune/reset, with and without confirmation). Run as root (podman's store).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/store.js';
import { BlobCache } from '../src/store/blobs.js';
import { systemDf, type SystemDf } from '../src/store/df.js';
import { pruneBlobCache, referencedBlobs } from '../src/store/gc.js';
import { buildTestImage, defaultLayers, requireTools, sha256, Podman, type TestImage } from './support/images.js';
import { commitOf, snapshot } from './support/store.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, '..', 'dist', 'cli', 'main.js');
const MiB = 1024 * 1024;
let work: string;
let base: TestImage; // A: base layers + its own top
let sibling: TestImage; // B: the same two base layers + another top
let loner: TestImage; // C: layers of its own
let extra: TestImage; // D: A's layers, another config

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-lifecycle-'));
  const layers = defaultLayers();
  // A real amount of data in the shared base, so sizes are not all rounding.
  layers[0]!.entries.push(H.file('data/base.bin', prng(3 * MiB, 'base')));
  base = buildTestImage(path.join(work, 'img-a'), { layers, label: 'a' });
  const layersB = [...layers];
  layersB[2] = { compression: 'zstd', entries: [H.dir('b/'), H.file('b/only-in-b', prng(MiB, 'b'))] };
  sibling = buildTestImage(path.join(work, 'img-b'), { layers: layersB, label: 'b' });
  loner = buildTestImage(path.join(work, 'img-c'), {
    layers: [{ compression: 'gzip', entries: [H.dir('c/'), H.file('c/only-in-c', prng(2 * MiB, 'c'))] }],
    label: 'c',
  });
  extra = buildTestImage(path.join(work, 'img-d'), { layers, label: 'd' });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

let n = 0;
interface Env {
  p: Podman;
  store: Store;
  data: string;
  cache: string;
}
async function fresh(): Promise<Env> {
  const p = new Podman(path.join(work, `p${n++}`));
  const data = path.join(p.dir, 'data');
  const store = await Store.open({ root: p.root, runroot: p.runroot, env: { ...process.env, XDG_DATA_HOME: data } });
  return { p, store, data, cache: store.config.blobCache };
}

/** `podman images -a --format json` ids, sorted (podman repeats an image once per name). */
function podmanIds(p: Podman): string[] {
  const all = JSON.parse(p.run(['images', '-a', '--format', 'json'])) as { Id: string }[];
  return [...new Set(all.map((i) => i.Id))].sort();
}

const idOf = (img: TestImage): string => img.configDigest.slice(7);

/** The real du: bytes on disk of the given paths, hardlinks once across all of them. */
function du(paths: string[]): number {
  const existing = paths.filter((p) => fs.existsSync(p));
  if (existing.length === 0) return 0;
  const out = execFileSync('du', ['-s', '-c', '-B1', ...existing]).toString().trim().split('\n');
  return Number(out[out.length - 1]!.split(/\s+/)[0]);
}

/** The directories `system df` says it measures, derived independently from the store's records. */
async function measuredPaths(env: Env): Promise<{ images: string[]; containers: string[]; cache: string[] }> {
  const g = env.store.graphroot;
  const layers = new Map((await env.store.layers()).map((l) => [l.id, l]));
  const imageLayers = new Set<string>();
  const imageDirs: string[] = [];
  for (const img of await env.store.images()) {
    imageDirs.push(path.join(g, 'overlay-images', img.id));
    for (let id = img.topLayer; id !== undefined; id = layers.get(id)?.parent) imageLayers.add(id);
  }
  const layerPaths = (id: string): string[] => [path.join(g, 'overlay', id), path.join(g, 'overlay-layers', `${id}.tar-split.gz`)];
  const containers: string[] = [];
  for (const c of await env.store.containers()) {
    containers.push(...layerPaths(c.layer), path.join(g, 'overlay-containers', c.id), path.join(env.store.runroot, 'overlay-containers', c.id));
  }
  return { images: [...[...imageLayers].flatMap(layerPaths), ...imageDirs], containers, cache: [env.cache] };
}

function within1pct(actual: number, expected: number): void {
  expect(Math.abs(actual - expected), `df ${actual} vs du ${expected}`).toBeLessThanOrEqual(Math.max(4096, expected * 0.01));
}

const dfLog: string[] = [];
async function dfMatchesDu(env: Env, label: string): Promise<SystemDf> {
  const df = await systemDf(env.store);
  const paths = await measuredPaths(env);
  const duImages = du(paths.images);
  const duContainers = du(paths.containers);
  const duCache = du(paths.cache);
  const duAll = du([...paths.images, ...paths.containers, ...paths.cache]);
  within1pct(df.images.size, duImages);
  within1pct(df.containers.size, duContainers);
  within1pct(df.blobCache.size, duCache);
  within1pct(df.totalSize, duAll);
  dfLog.push(`${label}: df images ${df.images.size} / du ${duImages}; containers ${df.containers.size} / ${duContainers}; cache ${df.blobCache.size} / ${duCache}; total ${df.totalSize} / ${duAll}`);
  return df;
}

/** Puts `blob` in the cache the way a pull does (locked temp file, then rename). */
async function cacheBlob(cache: BlobCache, blob: Buffer): Promise<string> {
  const d = sha256(blob);
  const w = await cache.begin(d);
  // Written on the thread pool, as applyLayer's native thread would write it: collectors get to run meanwhile.
  await new Promise<void>((resolve, reject) => fs.write(w.fd, blob, (err) => (err ? reject(err) : resolve())));
  await w.commit();
  return d;
}

function age(file: string, secondsAgo: number): void {
  const t = new Date(Date.now() - secondsAgo * 1000);
  fs.utimesSync(file, t, t);
}

afterAll(() => {
  if (dfLog.length > 0) console.log(`system df vs du -s:\n  ${dfLog.join('\n  ')}`);
});

describe('reference-aware rmi, checked with podman at every step', () => {
  it('rmi of one image keeps the shared base; rmi of the other removes everything', async () => {
    const env = await fresh();
    const { store, p } = env;
    await store.commitImage(commitOf(base, ['localhost/a:1']));
    await store.commitImage(commitOf(sibling, ['localhost/b:1']));
    expect(podmanIds(p)).toEqual([idOf(base), idOf(sibling)].sort());
    const layersBefore = (await store.layers()).map((l) => l.id);
    expect(layersBefore).toHaveLength(4); // two shared + two tops

    const a = await store.removeImage('localhost/a:1');
    expect(a.removedLayers).toHaveLength(1); // only A's top
    expect(podmanIds(p)).toEqual([idOf(sibling)]);
    const left = (await store.layers()).map((l) => l.id);
    expect(left).toHaveLength(3);
    for (const id of left) expect(fs.existsSync(path.join(p.root, 'overlay', id, 'diff')), id).toBe(true);
    // podman can still use B whole: mount it and read from the shared base and from B's own top.
    const mnt = p.run(['image', 'mount', 'localhost/b:1']).trim();
    try {
      expect(fs.readFileSync(path.join(mnt, 'data/base.bin')).equals(prng(3 * MiB, 'base'))).toBe(true);
      expect(fs.readFileSync(path.join(mnt, 'b/only-in-b')).length).toBe(MiB);
    } finally {
      p.run(['image', 'unmount', 'localhost/b:1']);
    }

    const b = await store.removeImage('localhost/b:1');
    expect(b.removedLayers).toHaveLength(3);
    expect(podmanIds(p)).toEqual([]);
    expect(await store.layers()).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'overlay')).sort()).toEqual(['.has-mount-program', 'l'].filter((x) => fs.existsSync(path.join(p.root, 'overlay', x))));
    expect(fs.readdirSync(path.join(p.root, 'overlay', 'l'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'overlay-layers')).filter((f) => f.endsWith('.tar-split.gz'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'overlay-images')).filter((f) => /^[0-9a-f]{64}$/.test(f))).toEqual([]);
    await store.close();
  });
});

describe('prune and system df', () => {
  it('prunes exactly the unreferenced images and layers, and df agrees with du -s before and after', async () => {
    const env = await fresh();
    const { store, p } = env;
    await store.commitImage(commitOf(base, ['localhost/a:1']));
    await store.commitImage(commitOf(sibling, ['localhost/b:1']));
    await store.commitImage(commitOf(loner)); // dangling from the start
    await store.commitImage(commitOf(extra, ['localhost/d:1']));
    await store.untag('localhost/d:1'); // dangling now, sharing all its layers with A
    const c = await store.createContainer('localhost/b:1', { names: ['uses-b'] });
    fs.writeFileSync(path.join(store.layerDiffPath(c.layer), 'written-by-container'), prng(MiB + 12345, 'ctr'));
    const cache = new BlobCache(env.cache);
    for (const l of base.layers) await cacheBlob(cache, l.blob);
    const stray = await cacheBlob(cache, randomBytes(300_000));
    for (const f of fs.readdirSync(path.join(env.cache, 'sha256'))) age(path.join(env.cache, 'sha256', f), 3600);
    expect(podmanIds(p)).toEqual([base, sibling, loner, extra].map(idOf).sort());

    const before = await dfMatchesDu(env, 'before prune');
    expect(before.images).toMatchObject({ total: 4, active: 1 });
    expect(before.containers).toMatchObject({ total: 1, active: 0 });
    expect(before.containers.size).toBeGreaterThan(MiB);
    expect(before.blobCache).toMatchObject({ count: 4, active: 3 });
    // Shared layers counted once: the images' total is well under the sum of the per-image sizes.
    const perImage = before.imageDetails.reduce((s, i) => s + i.size, 0);
    expect(before.images.size).toBeLessThan(perImage - 2 * 3 * MiB);
    const detailA = before.imageDetails.find((i) => i.id === idOf(base))!;
    expect(detailA.sharedSize).toBeGreaterThan(3 * MiB);
    // Reclaimable: everything but B's chain and directory.
    expect(before.images.reclaimable).toBe(before.images.size - before.imageDetails.find((i) => i.id === idOf(sibling))!.size);

    const layerIds = async (): Promise<Set<string>> => new Set((await store.layers()).map((l) => l.id));
    const l0 = await layerIds();
    const pruned = await store.pruneImages();
    expect(pruned.map((r) => r.id).sort()).toEqual([idOf(loner), idOf(extra)].sort());
    const l1 = await layerIds();
    // C's single layer went; D shared every layer with A, so none of its went.
    expect([...l0].filter((id) => !l1.has(id))).toEqual(pruned.flatMap((r) => r.removedLayers));
    expect(pruned.find((r) => r.id === idOf(extra))!.removedLayers).toEqual([]);
    expect(pruned.find((r) => r.id === idOf(loner))!.removedLayers).toHaveLength(1);
    expect(podmanIds(p)).toEqual([base, sibling].map(idOf).sort());
    await dfMatchesDu(env, 'after image prune');

    const prunedAll = await store.pruneImages({ all: true });
    expect(prunedAll.map((r) => r.id)).toEqual([idOf(base)]); // B has a container
    expect(prunedAll[0]!.removedLayers).toHaveLength(1); // A's top; the base stays for B
    expect(podmanIds(p)).toEqual([idOf(sibling)]);
    expect(await store.pruneImages({ all: true })).toEqual([]);

    const gc = await pruneBlobCache(store);
    // A is gone, so its blobs are no longer referenced... except those B shares (the two base layers).
    const removedDigests = gc.removed.map((r) => r.digest).sort();
    expect(removedDigests).toEqual([stray, base.layers[2]!.digest].sort());
    const after = await dfMatchesDu(env, 'after prune -a + blob gc');
    expect(after.images).toMatchObject({ total: 1, active: 1, reclaimable: 0 });
    expect(after.blobCache).toMatchObject({ count: 2, active: 2, reclaimable: 0 });
    expect(before.totalSize - after.totalSize).toBeGreaterThan(2 * MiB); // C's layer at least
    // podman still reads and mounts what is left.
    const mnt = p.run(['image', 'mount', 'localhost/b:1']).trim();
    expect(fs.existsSync(path.join(mnt, 'data/base.bin'))).toBe(true);
    p.run(['image', 'unmount', 'localhost/b:1']);
    await store.close();
  });
});

describe('orphan sweep', () => {
  it('sweeps a store seeded with a killed commit and stray files back to its referenced state; podman still reads it', async () => {
    const env = await fresh();
    const { p } = env;
    await env.store.commitImage(commitOf(base, ['localhost/a:1']));
    await env.store.close();
    const clean = snapshot(p.root);

    // A commit killed mid-apply.
    const ready = path.join(p.dir, 'ready');
    const child = spawn(process.execPath, [path.join(here, 'support/slow-commit.mjs'), p.root, p.runroot, ready], { stdio: ['ignore', 'inherit', 'inherit'] });
    try {
      for (let i = 0; i < 600 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(ready), 'the child never reached mid-apply').toBe(true);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // Stray things no record references: a layer dir with its l/ link, a dangling link, a tar-split, image and
    // container dirs, and a dead writer's temp file (the pid of a process that has exited).
    const rid = (): string => randomBytes(32).toString('hex');
    const orphanLayer = rid();
    fs.mkdirSync(path.join(p.root, 'overlay', orphanLayer, 'diff', 'x'), { recursive: true });
    fs.writeFileSync(path.join(p.root, 'overlay', orphanLayer, 'diff', 'x', 'f'), prng(200_000, 'orphan'));
    fs.writeFileSync(path.join(p.root, 'overlay', orphanLayer, 'link'), 'ORPHANLINKAAAAAAAAAAAAAAAA');
    fs.symlinkSync(`../${orphanLayer}/diff`, path.join(p.root, 'overlay', 'l', 'ORPHANLINKAAAAAAAAAAAAAAAA'));
    fs.symlinkSync(`../${rid()}/diff`, path.join(p.root, 'overlay', 'l', 'DANGLINGLINKAAAAAAAAAAAAAA'));
    fs.writeFileSync(path.join(p.root, 'overlay-layers', `${rid()}.tar-split.gz`), 'x');
    fs.mkdirSync(path.join(p.root, 'overlay-images', rid()));
    const strayContainer = rid();
    fs.mkdirSync(path.join(p.root, 'overlay-containers', strayContainer, 'userdata'), { recursive: true });
    fs.mkdirSync(path.join(p.runroot, 'overlay-containers', strayContainer, 'userdata'), { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    fs.writeFileSync(path.join(p.root, 'overlay-images', `.images.json.${dead}.0a1b2c3d.tmp`), '[]');
    // A pull killed while caching a blob: its temp file, no writer holding it.
    fs.mkdirSync(path.join(env.cache, 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(env.cache, 'sha256', '.tmp-deadbeefdeadbeef'), randomBytes(50_000));

    const store = await Store.open({ root: p.root, runroot: p.runroot, env: { ...process.env, XDG_DATA_HOME: env.data } });
    const swept = await store.sweepOrphans();
    // (The dangling l/ link already went when the store opened: its repair prunes dangling links.)
    expect(fs.existsSync(path.join(p.root, 'overlay', 'l', 'DANGLINGLINKAAAAAAAAAAAAAA'))).toBe(false);
    expect(swept).toEqual(expect.arrayContaining([
      `overlay/${orphanLayer}`,
      expect.stringMatching(/^overlay-layers\/[0-9a-f]{64}\.tar-split\.gz$/),
      expect.stringMatching(/^overlay-images\/[0-9a-f]{64}$/),
      `overlay-containers/${strayContainer}`,
      `overlay-images/.images.json.${dead}.0a1b2c3d.tmp`,
    ]));
    expect(swept).toHaveLength(6); // the run root's container dir too
    // The store's blob cache lives in its graphroot; it is collected below, by pruneBlobCache, not by the sweep.
    const withoutCache = (snap: Record<string, string>): Record<string, string> =>
      Object.fromEntries(Object.entries(snap).filter(([k]) => !k.startsWith('carrier-blob-cache')));
    expect(withoutCache(snapshot(p.root))).toEqual(withoutCache(clean));
    expect(fs.existsSync(path.join(p.runroot, 'overlay-containers', strayContainer))).toBe(false);
    expect(await store.sweepOrphans()).toEqual([]); // idempotent
    const gc = await pruneBlobCache(store);
    expect(gc.removed).toEqual([expect.objectContaining({ reason: 'abandoned' })]);
    expect(fs.readdirSync(path.join(env.cache, 'sha256'))).toEqual([]);
    await store.close();

    expect(podmanIds(p)).toEqual([idOf(base)]);
    const mnt = p.run(['image', 'mount', 'localhost/a:1']).trim();
    expect(fs.readFileSync(path.join(mnt, 'data/base.bin')).equals(prng(3 * MiB, 'base'))).toBe(true);
    p.run(['image', 'unmount', 'localhost/a:1']);
    // And podman can still write to it: its own rmi works on what Carrier left.
    p.run(['rmi', 'localhost/a:1']);
    expect(podmanIds(p)).toEqual([]);
  });
});

describe('blob cache GC', () => {
  it('keeps referenced blobs, removes unreferenced ones, and never touches an in-flight writer', async () => {
    const env = await fresh();
    const { store } = env;
    await store.commitImage(commitOf(base, ['localhost/a:1']));
    const cache = new BlobCache(env.cache);
    const referenced = await referencedBlobs(store);
    for (const l of base.layers) expect(referenced.has(l.digest)).toBe(true);
    expect(referenced.has(base.configDigest)).toBe(true);
    const kept = [];
    for (const l of base.layers) kept.push(await cacheBlob(cache, l.blob));
    const config = await cacheBlob(cache, base.config);
    const junk1 = await cacheBlob(cache, randomBytes(100_000));
    const junk2 = await cacheBlob(cache, randomBytes(200_000));
    for (const f of fs.readdirSync(path.join(env.cache, 'sha256'))) age(path.join(env.cache, 'sha256', f), 3600);
    const recentJunk = await cacheBlob(cache, randomBytes(10_000)); // just written: inside the grace period

    // In-flight writers: one in this process, one in another process; both old, both unreferenced.
    const inflightDigest = sha256(randomBytes(10));
    const writer = await cache.begin(inflightDigest);
    await writer['fh'].write(Buffer.alloc(70_000, 1));
    age(writer.tmpPath, 7200);
    const other = spawn(process.execPath, ['--input-type=module', '-e', `
      const { BlobCache } = await import(${JSON.stringify(path.join(here, '..', 'dist', 'store', 'blobs.js'))});
      const w = await new BlobCache(${JSON.stringify(env.cache)}).begin('sha256:${'e'.repeat(64)}');
      console.log(w.tmpPath);
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const otherTmp = await new Promise<string>((resolve) => other.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
    age(otherTmp, 7200);
    // A dead writer's temp file.
    const abandoned = path.join(env.cache, 'sha256', '.tmp-0123456789abcdef');
    fs.writeFileSync(abandoned, randomBytes(30_000));

    try {
      const r = await pruneBlobCache(store);
      const byReason = (reason: string): string[] => r.removed.filter((x) => x.reason === reason).map((x) => x.digest ?? x.path).sort();
      expect(byReason('unreferenced')).toEqual([junk1, junk2].sort());
      expect(byReason('abandoned')).toEqual([abandoned]);
      expect(byReason('evicted')).toEqual([]);
      expect(r.inFlight).toBe(2);
      expect(fs.existsSync(writer.tmpPath)).toBe(true);
      expect(fs.existsSync(otherTmp)).toBe(true);
      for (const d of [...kept, config, recentJunk]) expect(fs.existsSync(cache.path(d)), d).toBe(true);
      expect(r.freed).toBe(r.removed.reduce((s, x) => s + x.size, 0));

      // A cap of 0 (from the environment) evicts every committed blob, and still not the in-flight ones.
      const zero = await pruneBlobCache(store, { env: { CARRIER_CACHE_MAX_SIZE: '0' }, minAge: 0 });
      expect(zero.maxSize).toBe(0);
      expect(zero.kept).toEqual({ count: 0, size: 0 });
      expect(zero.inFlight).toBe(2);
      expect(fs.existsSync(writer.tmpPath)).toBe(true);
      expect(fs.existsSync(otherTmp)).toBe(true);
      // The writer finishes normally afterwards.
      await writer.commit();
      expect(fs.existsSync(cache.path(inflightDigest))).toBe(true);
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
    // Its writer killed, the other process's temp file is collectable now.
    const after = await pruneBlobCache(store, { minAge: 0, keepUnreferenced: true });
    expect(after.removed.map((x) => x.path)).toEqual([otherTmp]);
    await store.close();
  });

  it('evicts least recently used blobs (lookup counts as use) until under the cap', async () => {
    const env = await fresh();
    const { store } = env;
    await store.commitImage(commitOf(base, ['localhost/a:1']));
    const cache = new BlobCache(env.cache);
    const blobs = [prng(300_000, 'l1'), prng(200_000, 'l2'), prng(100_000, 'l3'), prng(50_000, 'l4')];
    const digests = [];
    for (const b of blobs) digests.push(await cacheBlob(cache, b));
    const [d1, d2, d3, d4] = digests as [string, string, string, string];
    const sizeOn = (d: string): number => fs.statSync(cache.path(d)).blocks * 512;
    age(cache.path(d1), 4000);
    age(cache.path(d2), 3000);
    age(cache.path(d3), 2000);
    age(cache.path(d4), 1000);
    // d1 was the oldest; a lookup makes it the most recently used.
    expect(await cache.lookup(d1, blobs[0]!.length)).toBe(cache.path(d1));
    const total = digests.reduce((s, d) => s + sizeOn(d), 0);
    // Room for all but ~150 kB: d2 (oldest now, 200 kB) must go, and is enough.
    const r = await pruneBlobCache(store, { keepUnreferenced: true, maxSize: total - 150_000, minAge: 0 });
    expect(r.removed.map((x) => [x.digest, x.reason])).toEqual([[d2, 'evicted']]);
    expect(r.kept.size).toBeLessThanOrEqual(total - 150_000);
    // Tighter: d3 then d4 go (by age); d1, just used, stays.
    const r2 = await pruneBlobCache(store, { keepUnreferenced: true, maxSize: sizeOn(d1), minAge: 0 });
    expect(r2.removed.map((x) => x.digest)).toEqual([d3, d4]);
    expect(fs.existsSync(cache.path(d1))).toBe(true);
    // The grace period protects a blob just used even over the cap.
    const r3 = await pruneBlobCache(store, { keepUnreferenced: true, maxSize: 0 });
    expect(r3.removed).toEqual([]);
    expect(fs.existsSync(cache.path(d1))).toBe(true);
    await store.close();
  });

  it('survives writers and collectors racing: no writer ever loses its temp file', async () => {
    const env = await fresh();
    const { store } = env;
    const cache = new BlobCache(env.cache);
    let stop = false;
    let rounds = 0;
    const collector = (async () => {
      while (!stop) {
        await pruneBlobCache(store, { minAge: 0, maxSize: 0 });
        rounds++;
      }
    })();
    const writers = Array.from({ length: 8 }, async (_, w) => {
      // Writers go on until the collector has run several times among them, however fast either side is on this machine.
      for (let i = 0; i < 25 || rounds <= 3; i++) await cacheBlob(cache, Buffer.from(`writer ${w} blob ${i} ${'x'.repeat(5000)}`));
    });
    try {
      await Promise.all(writers); // a lost temp file would make commit's rename throw ENOENT
    } finally {
      stop = true;
      await collector;
    }
    expect(rounds).toBeGreaterThan(3);
    await store.close();
  });
});

describe('CLI: image prune, system df / prune / reset', () => {
  function carrier(env: Env, args: string[], input?: string): { stdout: string; stderr: string; status: number } {
    const r = spawnSync(process.execPath, [CLI, '--root', env.p.root, '--runroot', env.p.runroot, ...args], {
      env: { ...process.env, XDG_DATA_HOME: env.data, CARRIER_CACHE_MAX_SIZE: '' },
      input: input ?? '',
    });
    return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), status: r.status ?? -1 };
  }

  it('asks before pruning, prints podman-style output, and resets everything with -f', async () => {
    const env = await fresh();
    const { store, p } = env;
    await store.commitImage(commitOf(base, ['localhost/a:1']));
    await store.commitImage(commitOf(loner)); // dangling
    await store.commitImage(commitOf(sibling, ['localhost/b:1']));
    await cacheBlob(new BlobCache(env.cache), randomBytes(80_000));
    for (const f of fs.readdirSync(path.join(env.cache, 'sha256'))) age(path.join(env.cache, 'sha256', f), 3600);
    await store.close();

    // No: nothing happens, exit 0.
    let r = carrier(env, ['image', 'prune'], 'n\n');
    expect(r).toMatchObject({ status: 0, stdout: 'WARNING! This command removes all dangling images.\nAre you sure you want to continue? [y/N] ' });
    expect(podmanIds(p)).toHaveLength(3);
    r = carrier(env, ['image', 'prune'], ''); // end of input is a no
    expect(r.status).toBe(0);
    expect(podmanIds(p)).toHaveLength(3);
    // Yes.
    r = carrier(env, ['image', 'prune'], 'y\n');
    expect(r.status).toBe(0);
    // The answer came from a pipe, so the ids follow the prompt on its line (on a terminal the user's Enter breaks it).
    expect(r.stdout).toBe(`WARNING! This command removes all dangling images.\nAre you sure you want to continue? [y/N] ${idOf(loner)}\n`);
    expect(podmanIds(p)).toEqual([base, sibling].map(idOf).sort());

    r = carrier(env, ['system', 'df']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('TYPE           TOTAL       ACTIVE      SIZE        RECLAIMABLE');
    expect(lines[1]).toMatch(/^Images {9}2 {11}0 {11}\d[\d.]*[kMG]?B +\d[\d.]*[kMG]?B \(100%\)$/);
    expect(lines.map((l) => l.split(/\s{2,}/)[0])).toEqual(['TYPE', 'Images', 'Containers', 'Unused Layers', 'Blob Cache']);
    const json = JSON.parse(carrier(env, ['system', 'df', '--format', 'json']).stdout) as SystemDf;
    expect(json.images).toMatchObject({ total: 2, active: 0 });
    expect(json.blobCache).toMatchObject({ count: 1, active: 0 });
    const verbose = carrier(env, ['system', 'df', '-v']).stdout;
    expect(verbose).toMatch(/^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/);
    expect(verbose).toContain('localhost/a');
    expect(verbose).toContain('Containers space usage:');

    r = carrier(env, ['system', 'prune', '-a'], 'N\n');
    expect(r.stdout).toMatch(/^WARNING! This command removes:\n\t- all stopped containers \(made by Carrier\)\n\t- all images without at least one container associated with them\n/);
    expect(podmanIds(p)).toHaveLength(2);
    r = carrier(env, ['system', 'prune', '-a', '-f']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Deleted Images\\n(${idOf(base)}|${idOf(sibling)})\\n(${idOf(base)}|${idOf(sibling)})\\n`));
    expect(r.stdout).toMatch(/Deleted Blobs\nsha256:[0-9a-f]{64} \(unreferenced\)\n/);
    const reclaimed = /Total reclaimed space: ([\d.]+)MB\n$/.exec(r.stdout);
    expect(reclaimed, r.stdout).not.toBeNull();
    expect(Number(reclaimed![1])).toBeGreaterThan(4);
    expect(podmanIds(p)).toEqual([]);

    // reset: refused without a yes, then everything goes with -f.
    await (async () => {
      const s = await Store.open({ root: p.root, runroot: p.runroot, env: { ...process.env, XDG_DATA_HOME: env.data } });
      await s.commitImage(commitOf(base, ['localhost/a:1']));
      await s.close();
    })();
    await cacheBlob(new BlobCache(env.cache), randomBytes(1000));
    r = carrier(env, ['system', 'reset'], 'no\n');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`- the graphRoot directory: "${p.root}"`);
    expect(podmanIds(p)).toEqual([idOf(base)]);
    r = carrier(env, ['system', 'reset', '-f']);
    expect(r).toMatchObject({ status: 0, stdout: '' });
    // Store.reset keeps the lock files (other processes may hold them open) and leaves empty records behind.
    expect(leftAfterReset(p.root)).toEqual([]);
    expect(leftAfterReset(p.runroot)).toEqual([]);
    expect(fs.existsSync(env.cache) ? leftAfterReset(env.cache) : []).toEqual([]); // no blob left (the cache was in the graphroot)
    expect(podmanIds(p)).toEqual([]); // podman starts a new, empty store there
  });
});

/** Files under `dir` other than lock files, empty record lists and the driver's own markers. */
function leftAfterReset(dir: string): string[] {
  const left: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.name.endsWith('.lock') || e.name === '.has-mount-program') continue;
      else if (e.name.endsWith('.json') && JSON.stringify(JSON.parse(fs.readFileSync(f, 'utf8'))) === '[]') continue;
      else left.push(path.relative(dir, f));
    }
  };
  walk(dir);
  return left;
}

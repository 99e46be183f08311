// One download per blob: several `carrier pull` processes that need the same blob at once (into one store, or into
// several stores sharing one blob cache) download it once; the others wait and apply the verified cached copy. The
// lock dies with its holder (SIGKILL) and is never held across a failure. Through the built CLI, against a real
// registry behind a relay that counts blob GETs and slows them, so that the pulls surely overlap.
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as H from './support/hostile.js';
import type { LayerSpec } from './support/images.js';
import { storedImage } from './support/registry.js';
import { startCountingRelay, type CountingRelay } from './support/counting-relay.js';
import { lockBlob, blobLockPath } from '../src/store/blob-lock.js';
import { registryRig } from './support/registry-rig.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
let relay: CountingRelay;
let layers: string[];
/** The image's layer digests in manifest order (base first). */
let ordered: string[];
let specs: LayerSpec[];
let ref: string;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts `carrier ARGS`; `done` settles when it exits. */
function carrier(args: string[]): { child: ChildProcess; done: Promise<Result> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, XDG_DATA_HOME: path.join(rig.work, 'data'), CARRIER_CACHE_MAX_SIZE: '', CARRIER_BLOB_CACHE: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Result>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

let n = 0;
function newStore(driver?: 'overlay' | 'vfs'): string[] {
  const dir = path.join(rig.work, `s${n++}`);
  return ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), ...(driver ? ['--storage-driver', driver] : [])];
}

/** Resolves once `cond()` holds (polled); the test's own timeout ends a wait that never would. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 50));
}

function pull(store: string[], cache?: string): { child: ChildProcess; done: Promise<Result> } {
  return carrier([...(cache ? ['--blob-cache', cache] : []), ...store, 'pull', '--tls-verify=false', ref]);
}

async function expectPulled(r: Promise<Result>): Promise<void> {
  const res = await r;
  expect(res.code, res.stderr).toBe(0);
}

function lockFiles(cache: string): string[] {
  const dir = path.join(cache, 'sha256');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('.lock-')) : [];
}

function cachedBlobs(cache: string): string[] {
  const dir = path.join(cache, 'sha256');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^[0-9a-f]{64}$/.test(f)).map((f) => `sha256:${f}`).sort() : [];
}

const gets = (): Record<string, number> => Object.fromEntries([...relay.blobGets].filter(([d]) => layers.includes(d)));
const once = (): Record<string, number> => Object.fromEntries(layers.map((d) => [d, 1]));

const rig = registryRig('cache-lock', {}, async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  const o = { mtime: 1_700_000_000 };
  specs = [0, 1, 2].map((i) => ({ compression: 'gzip' as const, entries: [H.dir('d/', o), H.file(`d/random-${i}`, crypto.randomBytes(768 * 1024), o)] }));
  await rig.buildAndPush('img', 'lock/a:1', { label: 'cache-lock', layers: specs });
  ordered = (await storedImage(rig.reg, 'lock/a', '1')).layers.map((l) => l.digest);
  layers = [...ordered].sort();
  relay = await startCountingRelay(rig.reg.url);
  ref = `${relay.host}/lock/a:1`;
});

afterAll(async () => {
  await relay?.stop();
});

describe('one download per blob across processes', () => {
  for (const driver of ['overlay', 'vfs'] as const) {
    it(`four pulls into four stores sharing one blob cache download each blob once (${driver})`, async () => {
      relay.blobGets.clear();
      relay.rate = 1024 * 1024; // ~0.75 s per layer: the four pulls overlap
      const cache = path.join(rig.work, `shared-4-${driver}`);
      const pulls = [0, 1, 2, 3].map(() => pull(newStore(driver), cache));
      for (const p of pulls) await expectPulled(p.done);
      expect(gets()).toEqual(once());
      expect(cachedBlobs(cache)).toEqual(layers);
      expect(lockFiles(cache)).toEqual([]);
    }, 120_000);

    it(`four pulls into one store download each blob once (${driver})`, async () => {
      relay.blobGets.clear();
      relay.rate = 1024 * 1024;
      const store = newStore(driver);
      const pulls = [0, 1, 2, 3].map(() => pull(store));
      for (const p of pulls) await expectPulled(p.done);
      expect(gets()).toEqual(once());
    }, 120_000);
  }

  it('two pulls of images with the same blobs in opposite orders, into vfs stores sharing a cache, download each blob once', async () => {
    await rig.buildAndPush('reversed', 'lock/reversed:1', { label: 'cache-lock-reversed', layers: [...specs].reverse() });
    expect((await storedImage(rig.reg, 'lock/reversed', '1')).layers.map((l) => l.digest)).toEqual([...ordered].reverse());
    relay.blobGets.clear();
    relay.rate = 1024 * 1024;
    const cache = path.join(rig.work, 'shared-reversed');
    const a = pull(newStore('vfs'), cache);
    const b = carrier(['--blob-cache', cache, ...newStore('vfs'), 'pull', '--tls-verify=false', `${relay.host}/lock/reversed:1`]);
    await expectPulled(a.done);
    await expectPulled(b.done);
    expect(gets()).toEqual(once());
    expect(lockFiles(cache)).toEqual([]);
  }, 120_000);

  it('a vfs layer lets go of its blob once it is cached, before it waits for its parent: a pull never holds a blob while it waits for another', async () => {
    relay.blobGets.clear();
    relay.rate = 0;
    const cache = path.join(rig.work, 'shared-parent');
    // Another process holds the base layer's blob: every other layer's merge waits for the base.
    const base = await lockBlob(cache, ordered[0]!);
    const p = pull(newStore('vfs'), cache);
    try {
      // The upper layers are downloaded, cached and unlocked meanwhile (before, each held its lock until its parent
      // was merged: a process holding the base and wanting one of them waited forever).
      await until(() => ordered.slice(1).every((d) => cachedBlobs(cache).includes(d)) && lockFiles(cache).length === 1);
      for (const d of ordered.slice(1)) await (await lockBlob(cache, d)).release();
    } finally {
      await base.release();
    }
    await expectPulled(p.done);
    expect(gets()).toEqual(once());
    expect(lockFiles(cache)).toEqual([]);
  }, 120_000);

  it('a pull killed while it downloads lets the waiting pull take the blob over', async () => {
    relay.blobGets.clear();
    relay.rate = 256 * 1024; // ~3 s per layer
    const cache = path.join(rig.work, 'shared-kill');
    const first = pull(newStore(), cache);
    await relay.waitForBlobGets(layers.length);
    const second = pull(newStore(), cache);
    await new Promise((r) => setTimeout(r, 1000)); // the second is waiting for the locks by now
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    relay.rate = 0;
    await expectPulled(second.done);
    // The killed pull's GETs and the second's, one each.
    expect(gets()).toEqual(Object.fromEntries(layers.map((d) => [d, 2])));
    expect(cachedBlobs(cache)).toEqual(layers);
    expect(lockFiles(cache)).toEqual([]);
  }, 120_000);

  it('a pull waiting for a blob another pull is downloading can be cancelled (Ctrl-C) without waiting for that download', async () => {
    relay.blobGets.clear();
    relay.rate = 128 * 1024; // ~6 s per layer
    const layersDone = (): number => layers.reduce((a, d) => a + (relay.blobsDone.get(d) ?? 0), 0);
    const done = layersDone();
    const cache = path.join(rig.work, 'shared-cancel');
    const first = pull(newStore(), cache);
    await relay.waitForBlobGets(layers.length);
    const second = pull(newStore(), cache);
    let said = '';
    await new Promise<void>((resolve) => {
      // It says so once it has the manifest (before any layer): its Ctrl-C handling is in place by then.
      second.child.stderr!.on('data', (b: Buffer) => {
        said += b.toString();
        if (said.includes('Getting image source signatures')) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 500));
    second.child.kill('SIGINT');
    const r2 = await second.done;
    expect(r2.code, r2.stderr).toBe(130);
    expect(layersDone()).toBe(done); // the layer downloads it waited for are still going
    relay.rate = 0;
    await expectPulled(first.done);
    expect(lockFiles(cache)).toEqual([]);
  }, 120_000);

  it('a pull whose download fails lets go of the lock: the waiting pull downloads the blob itself', async () => {
    relay.blobGets.clear();
    relay.rate = 512 * 1024;
    const bad = layers[0]!;
    relay.corruptNext = bad;
    const cache = path.join(rig.work, 'shared-fail');
    const first = pull(newStore(), cache);
    await relay.waitForBlobGets(layers.length);
    const second = pull(newStore(), cache);
    const r1 = await first.done;
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toMatch(/CARRIER_(DIGEST_MISMATCH|BAD_TAR|BAD_COMPRESSION)/);
    await expectPulled(second.done);
    expect(relay.blobGets.get(bad)).toBe(2);
    expect(cachedBlobs(cache)).toEqual(layers);
    expect(lockFiles(cache)).toEqual([]);
  }, 120_000);
});

describe('an image that has one blob twice', () => {
  it('pulls into vfs and overlay stores: a layer never waits for a blob its own pull holds', async () => {
    const o = { mtime: 1_700_000_000 };
    const same = { compression: 'gzip' as const, entries: [H.dir('same/', o), H.file('same/f', crypto.randomBytes(256 * 1024), o)] };
    await rig.buildAndPush('twice', 'lock/twice:1', {
      label: 'twice',
      layers: [same, same, { compression: 'gzip' as const, entries: [H.file('top', 'top\n', o)] }, same],
    });
    relay.rate = 0;
    const twice = (await storedImage(rig.reg, 'lock/twice', '1')).layers[0]!.digest;
    for (const driver of ['vfs', 'overlay'] as const) {
      relay.blobGets.clear();
      const r = await carrier([...newStore(driver), 'pull', '--tls-verify=false', `${relay.host}/lock/twice:1`]).done;
      expect(r.code, `${driver}: ${r.stderr}`).toBe(0);
      expect(relay.blobGets.get(twice), driver).toBe(1);
    }
  }, 120_000);
});

describe('lockBlob', () => {
  it('waits for the holder, gives up its wait on abort, and leaves no lock file behind', async () => {
    const cache = path.join(rig.work, 'unit');
    const digest = layers[0]!;
    const a = await lockBlob(cache, digest);
    let bHeld = false;
    const b = lockBlob(cache, digest).then((l) => {
      bHeld = true;
      return l;
    });
    const ac = new AbortController();
    const c = lockBlob(cache, digest, ac.signal);
    await new Promise((r) => setTimeout(r, 200));
    expect(bHeld).toBe(false);
    ac.abort();
    await expect(c).rejects.toMatchObject({ code: 'ABORT_ERR' });
    await a.release();
    const lb = await b;
    expect(bHeld).toBe(true);
    expect(fs.existsSync(blobLockPath(cache, digest))).toBe(true);
    await lb.release();
    expect(lockFiles(cache)).toEqual([]);
    const again = await lockBlob(cache, digest);
    await again.release();
  });
});

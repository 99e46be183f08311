// A blob cache belongs to its store: a new --root store does not pull from another store's cache, pruning or
// measuring one store never touches another's cache, and a cache shared on purpose (--blob-cache /
// CARRIER_BLOB_CACHE) keeps the blobs another store may need. Through the built CLI, against a real registry.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { removeWorkDir, type TestImage } from './support/images.js';
import { storedImage } from './support/registry.js';
import { registryRig } from './support/registry-rig.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
let img: TestImage;
let ref: string;

interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

let n = 0;
/** A store's global flags; every store is new. */
function newStore(): string[] {
  const dir = path.join(rig.work, `s${n++}`);
  return ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run')];
}

function carrier(args: string[], env: Record<string, string> = {}): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    // One data dir for every store, as on a real machine: the default store's cache would be there.
    env: { ...process.env, XDG_DATA_HOME: path.join(rig.work, 'data'), CARRIER_CACHE_MAX_SIZE: '', CARRIER_BLOB_CACHE: '', ...env },
    encoding: 'utf8',
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[], env: Record<string, string> = {}): Result {
  const r = carrier(args, env);
  expect(r.status, `carrier ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

function cacheOf(store: string[]): string {
  return JSON.parse(ok([...store, 'info', '--format', 'json']).stdout).store.blobCache as string;
}

function df(store: string[], env: Record<string, string> = {}): { count: number; active: number; reclaimable: number; sharedWith: string[] } {
  return JSON.parse(ok([...store, 'system', 'df', '--format', 'json'], env).stdout).blobCache;
}

function blobsIn(cache: string): string[] {
  const dir = path.join(cache, 'sha256');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort() : [];
}

/** Makes every blob in the cache look last used an hour ago, past prune's one-minute grace. */
function ageBlobs(cache: string): void {
  const old = new Date(Date.now() - 3600_000);
  for (const f of blobsIn(cache)) fs.utimesSync(path.join(cache, 'sha256', f), old, old);
}

let pushedLayers: string[];
/** The layer blobs as the registry holds them (skopeo may recompress on push). */
const layerBlobs = (): string[] => pushedLayers;

const rig = registryRig('cache-per-store', {}, async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  img = rig.build('img', { label: 'per-store' });
  await rig.push(img, 'cache/a:1');
  ref = `${rig.reg.host}/cache/a:1`;
  pushedLayers = (await storedImage(rig.reg, 'cache/a', '1')).layers.map((l) => l.digest.slice(7)).sort();
});

describe('a blob cache per store', () => {
  it('a new --root store downloads its own blobs into its own cache, not from another store', () => {
    const a = newStore();
    const b = newStore();
    const pa = ok([...a, 'pull', '--tls-verify=false', ref]);
    expect(pa.stderr).not.toContain('from the blob cache');
    const pb = ok([...b, 'pull', '--tls-verify=false', ref]);
    expect(pb.stderr).not.toContain('from the blob cache');
    expect(cacheOf(a)).toBe(path.join(a[1]!, 'carrier-blob-cache'));
    expect(blobsIn(cacheOf(a))).toEqual(layerBlobs());
    expect(blobsIn(cacheOf(b))).toEqual(layerBlobs());
    // The default store keeps the cache where Carrier always kept it, beside its storage in the data dir.
    expect(cacheOf([])).toBe(path.join(rig.work, 'data', 'carrier', 'cache', 'blobs'));
  });

  it("system prune on one store leaves another store's cache alone; system df on an empty store reports no blobs", () => {
    const a = newStore();
    const b = newStore();
    ok([...a, 'pull', '--tls-verify=false', '-q', ref]);
    ok([...b, 'pull', '--tls-verify=false', '-q', ref]);
    ok([...b, 'rmi', ref]);
    ageBlobs(cacheOf(a));
    ageBlobs(cacheOf(b));
    ok([...b, 'system', 'prune', '-f']);
    expect(blobsIn(cacheOf(b))).toEqual([]);
    expect(blobsIn(cacheOf(a))).toEqual(layerBlobs());
    expect(df(a)).toMatchObject({ count: img.layers.length, reclaimable: 0 });
    expect(df(newStore())).toMatchObject({ count: 0, active: 0, reclaimable: 0, sharedWith: [] });
  });

  it('a cache shared with --blob-cache / CARRIER_BLOB_CACHE serves the second store and keeps what the first needs', () => {
    const shared = path.join(rig.work, 'shared-cache');
    const a = newStore();
    const b = newStore();
    ok(['--blob-cache', shared, ...a, 'pull', '--tls-verify=false', ref]);
    expect(blobsIn(shared)).toEqual(layerBlobs());
    const pb = ok([...b, 'pull', '--tls-verify=false', ref], { CARRIER_BLOB_CACHE: shared });
    expect(pb.stderr).toContain('from the blob cache');
    expect(fs.existsSync(path.join(b[1]!, 'carrier-blob-cache', 'sha256'))).toBe(false);

    // b no longer needs the blobs, a still does: b's prune keeps them and says why; b's df reclaims nothing there.
    ok([...b, 'rmi', ref], { CARRIER_BLOB_CACHE: shared });
    ageBlobs(shared);
    expect(df(b, { CARRIER_BLOB_CACHE: shared })).toMatchObject({ count: img.layers.length, active: 0, reclaimable: 0, sharedWith: [a[1]] });
    const pruned = ok([...b, 'system', 'prune', '-f'], { CARRIER_BLOB_CACHE: shared });
    expect(pruned.stderr).toContain(`is shared with ${a[1]}`);
    expect(blobsIn(shared)).toEqual(layerBlobs());

    // Once store a is gone, its record is forgotten and b's prune collects the blobs no image of b needs.
    removeWorkDir(path.dirname(a[1]!));
    ok([...b, 'system', 'prune', '-f'], { CARRIER_BLOB_CACHE: shared });
    expect(blobsIn(shared)).toEqual([]);
  });

  it("a store's own cache named by another store becomes shared: its owner's prune keeps the other's blobs", () => {
    const a = newStore();
    const b = newStore();
    ok([...a, 'pull', '--tls-verify=false', '-q', ref]);
    const aCache = cacheOf(a);
    ok(['--blob-cache', aCache, ...b, 'pull', '--tls-verify=false', '-q', ref]);
    ok([...a, 'rmi', ref]);
    ageBlobs(aCache);
    ok([...a, 'system', 'prune', '-f']);
    expect(blobsIn(aCache)).toEqual(layerBlobs());
  });
});

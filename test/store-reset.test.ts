// Store.reset(): everything the store holds goes, under the store's locks — never under another holder's feet — and
// what is left is an empty store that podman and Carrier both read (and write) as one.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { Store } from '../src/store/store.js';
import { buildTestImage, requireTools, Podman, type TestImage } from './support/images.js';
import { commitOf } from './support/store.js';

let work: string;
let img: TestImage;

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-reset-'));
  img = buildTestImage(path.join(work, 'img'), { label: 'reset' });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

let n = 0;
function podmanStore(): Podman {
  return new Podman(path.join(work, `p${n++}`));
}

/** Mount points at or below `dir` in this process's mount namespace. */
function mountsBelow(dir: string): string[] {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((target) => target === real || target.startsWith(real + '/'));
}

/** Everything under `dir` that is not a lock file, as relative paths. */
function nonLockFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.endsWith('.lock')) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe('Store.reset', () => {
  it('waits while another Store on the same root holds the layers lock, then leaves nothing podman lists', async () => {
    const p = podmanStore();
    const a = await Store.open({ root: p.root, runroot: p.runroot });
    const b = await Store.open({ root: p.root, runroot: p.runroot });
    await a.commitImage(commitOf(img, ['localhost/reset:1']));
    const container = await a.createContainer('localhost/reset:1', { names: ['resetme'] });
    const merged = await a.mountContainer(container.id);
    expect(mountsBelow(p.root)).toContain(fs.realpathSync(merged));

    let release!: () => void;
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const holder = b.withLayersHeld(async () => {
      holding();
      await new Promise<void>((r) => (release = r));
    });
    await held;
    let resetDone = false;
    const resetting = a.reset().then(() => {
      resetDone = true;
    });
    // While b holds the lock the reset has removed nothing: b still reads the image, its layers and its container.
    await new Promise((r) => setTimeout(r, 500));
    expect(resetDone).toBe(false);
    expect((await b.images()).map((i) => i.names)).toEqual([['localhost/reset:1']]);
    for (const l of await b.layers()) expect(fs.existsSync(b.layerDiffPath(l.id)), l.id).toBe(true);
    expect(fs.existsSync(b.containerDataDir(container.id))).toBe(true);
    expect(mountsBelow(p.root)).toContain(fs.realpathSync(merged));
    release();
    await holder;
    await resetting;

    // Both instances see an empty store; the container's mount is gone; only the lock files and empty records remain.
    for (const s of [a, b]) {
      expect(await s.images()).toEqual([]);
      expect(await s.layers()).toEqual([]);
      expect(await s.containers()).toEqual([]);
      expect(await s.mounts()).toEqual([]);
    }
    expect(mountsBelow(p.root).filter((m) => m !== fs.realpathSync(p.root))).toEqual([]);
    expect(nonLockFiles(p.root)).toEqual([
      'overlay-containers/containers.json',
      'overlay-images/images.json',
      'overlay-layers/layers.json',
      'overlay/.has-mount-program',
    ]);
    expect(p.images()).toEqual([]);
    expect(JSON.parse(p.run(['ps', '-a', '--format', 'json']))).toEqual([]);

    // The Store stays usable, and podman reads what it writes after the reset.
    await a.commitImage(commitOf(img, ['localhost/reset:2']));
    expect(p.images().map((i) => i.Names)).toEqual([['localhost/reset:2']]);
    expect((await b.images()).map((i) => i.names)).toEqual([['localhost/reset:2']]);
    await a.close();
    await b.close();
  });

  it('empties a vfs store the same way: containers, images and layers go, podman lists nothing', async () => {
    const p = new Podman(path.join(work, `p${n++}`), 'vfs');
    const store = await Store.open({ root: p.root, runroot: p.runroot, driver: 'vfs' });
    await store.commitImage(commitOf(img, ['localhost/reset-vfs:1']));
    const c = await store.createContainer('localhost/reset-vfs:1');
    await store.mountContainer(c.id);
    await store.reset();
    expect(await store.images()).toEqual([]);
    expect(await store.mounts()).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs', 'dir'))).toEqual([]);
    expect(p.images()).toEqual([]);
    expect(JSON.parse(p.run(['ps', '-a', '--format', 'json']))).toEqual([]);
    await store.close();
  });

  it('refuses, having removed nothing, while something it did not mount stays mounted under the store', async () => {
    const p = podmanStore();
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    await store.commitImage(commitOf(img, ['localhost/busy:1']));
    const foreign = path.join(p.root, 'foreign-mount');
    fs.mkdirSync(foreign);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', foreign]);
    try {
      const before = nonLockFiles(p.root);
      await expect(store.reset()).rejects.toMatchObject({ code: 'CARRIER_IN_USE' });
      expect(nonLockFiles(p.root)).toEqual(before);
      expect((await store.images()).map((i) => i.names)).toEqual([['localhost/busy:1']]);
    } finally {
      execFileSync('umount', [foreign]);
    }
    await store.reset();
    expect(await store.images()).toEqual([]);
    expect(p.images()).toEqual([]);
    await store.close();
  });
});

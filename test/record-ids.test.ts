/**
 * Ids and links read from a store's records never become paths unchecked (issue 18, item 3). A store made by
 * Carrier gets a planted record — a layer whose id is `../../escape`, a parent like that, a `link` or `lower` file
 * naming a path outside `l/`, an additional image store with such a record — and every command refuses it with
 * CARRIER_CORRUPT_STORE naming the file and the bad id: a sentinel directory outside the store survives `carrier rmi`,
 * and `carrier checkout` copies no host file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/store.js';
import { OverlayDriver } from '../src/drivers/overlay.js';
import { buildTestImage, removeWorkDir, type TestImage } from './support/images.js';
import { commitOf } from './support/store.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(repo, 'dist/cli/main.js');
let work: string;
let img: TestImage;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-record-ids-'));
  img = buildTestImage(path.join(work, 'img'), { label: 'record-ids' });
});

afterAll(() => removeWorkDir(work));

interface Planted {
  base: string;
  root: string;
  runroot: string;
  /** base/escape: where `overlay/../../escape` leads; holds diff/host-secret. */
  escape: string;
  layers: Array<Record<string, unknown>>;
  images: Array<Record<string, unknown>>;
  topLayer: string;
}

/** A store under work/<name> holding the test image as localhost/victim:1, and a sentinel directory beside it. */
async function storeWithImage(name: string): Promise<Planted> {
  const base = path.join(work, name);
  const root = path.join(base, 'root');
  const runroot = path.join(base, 'run');
  const store = await Store.open({ root, runroot, driver: 'overlay' });
  try {
    await store.commitImage(commitOf(img, ['localhost/victim:1']));
  } finally {
    await store.close();
  }
  const escape = path.join(base, 'escape');
  fs.mkdirSync(path.join(escape, 'diff'), { recursive: true });
  fs.writeFileSync(path.join(escape, 'diff', 'host-secret'), 'not the store\'s\n');
  // where `<d>-layers/<id>.tar-split.gz` would lead for the id `../../escape`
  fs.writeFileSync(path.join(base, 'escape.tar-split.gz'), 'sentinel');
  const layers = JSON.parse(fs.readFileSync(layersJson(root), 'utf8')) as Array<Record<string, unknown>>;
  const images = JSON.parse(fs.readFileSync(imagesJson(root), 'utf8')) as Array<Record<string, unknown>>;
  return { base, root, runroot, escape, layers, images, topLayer: images[0]!.layer as string };
}

const layersJson = (root: string): string => path.join(root, 'overlay-layers', 'layers.json');
const imagesJson = (root: string): string => path.join(root, 'overlay-images', 'images.json');

/** The image's top layer renamed to `../../escape` (which overlay/ resolves to base/escape), and the image pointing at it. */
function plantEscapingTopLayer(p: Planted): void {
  const layers = p.layers.map((l) => (l.id === p.topLayer ? { ...l, id: '../../escape' } : l));
  const images = p.images.map((i) => ({ ...i, layer: '../../escape' }));
  fs.writeFileSync(layersJson(p.root), JSON.stringify(layers));
  fs.writeFileSync(imagesJson(p.root), JSON.stringify(images));
}

function carrier(p: Planted, ...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('node', [cli, '--root', p.root, '--runroot', p.runroot, '--storage-driver', 'overlay', ...args]);
  return { status: r.status, stderr: r.stderr.toString() };
}

function expectSentinelIntact(p: Planted): void {
  expect(fs.readFileSync(path.join(p.escape, 'diff', 'host-secret'), 'utf8')).toBe('not the store\'s\n');
  expect(fs.readFileSync(path.join(p.base, 'escape.tar-split.gz'), 'utf8')).toBe('sentinel');
}

describe('a planted layer id', () => {
  it('`carrier checkout` refuses it and copies no host file into the checkout', async () => {
    const p = await storeWithImage('checkout');
    plantEscapingTopLayer(p);
    const dir = path.join(p.base, 'checkout');
    const r = carrier(p, 'checkout', 'victim:1', dir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('../../escape');
    expect(r.stderr).toMatch(/(layers|images)\.json/);
    expect(fs.existsSync(path.join(dir, 'host-secret'))).toBe(false);
    expectSentinelIntact(p);
  }, 120_000);

  it('`carrier rmi` refuses it and deletes nothing outside the store', async () => {
    const p = await storeWithImage('rmi');
    plantEscapingTopLayer(p);
    const r = carrier(p, 'rmi', '-f', 'victim:1');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('../../escape');
    expectSentinelIntact(p);
    // the records are left as found, for the user to repair
    expect(fs.readFileSync(layersJson(p.root), 'utf8')).toContain('../../escape');
  }, 120_000);

  it('Store.open reports the file and the bad id, for an id and for a parent', async () => {
    const p = await storeWithImage('open');
    const good = fs.readFileSync(layersJson(p.root), 'utf8');
    plantEscapingTopLayer(p);
    fs.writeFileSync(imagesJson(p.root), JSON.stringify(p.images)); // only layers.json is bad
    const err = await Store.open({ root: p.root, runroot: p.runroot, driver: 'overlay' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CARRIER_CORRUPT_STORE', path: layersJson(p.root) });
    expect((err as Error).message).toMatch(/layers\.json: layer record "\.\.\/\.\.\/escape" has an invalid id/);

    fs.writeFileSync(layersJson(p.root), JSON.stringify(p.layers.map((l) => (l.id === p.topLayer ? { ...l, parent: '../../escape' } : l))));
    const err2 = await Store.open({ root: p.root, runroot: p.runroot, driver: 'overlay' }).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
    expect((err2 as Error).message).toMatch(new RegExp(`layer record "${p.topLayer}" has an invalid parent "\\.\\./\\.\\./escape"`));

    // a container record linking to a path is refused the same way
    fs.writeFileSync(layersJson(p.root), good);
    const containers = path.join(p.root, 'overlay-containers', 'containers.json');
    fs.writeFileSync(containers, JSON.stringify([{ id: 'c'.repeat(64), image: p.images[0]!.id, layer: '../../escape' }]));
    const store = await Store.open({ root: p.root, runroot: p.runroot, driver: 'overlay' });
    try {
      const err3 = await store.containers().catch((e: unknown) => e);
      expect(err3).toMatchObject({ code: 'CARRIER_CORRUPT_STORE', path: containers });
      expect((err3 as Error).message).toContain('invalid layer "../../escape"');
      // with the records repaired the store reads them again, and the image is whole
      fs.writeFileSync(containers, '[]');
      await store.close();
      const reopened = await Store.open({ root: p.root, runroot: p.runroot, driver: 'overlay' });
      try {
        expect(await reopened.containers()).toEqual([]);
        expect((await reopened.image('victim:1'))?.id).toBe(p.images[0]!.id);
      } finally {
        await reopened.close();
      }
    } finally {
      await store.close();
    }
    expectSentinelIntact(p);
  }, 120_000);
});

describe('a planted overlay link', () => {
  it('a `link` file naming a path is refused before a child layer uses it', async () => {
    const p = await storeWithImage('link');
    const linkFile = path.join(p.root, 'overlay', p.topLayer, 'link');
    fs.writeFileSync(linkFile, '../../escape');
    const store = await Store.open({ root: p.root, runroot: p.runroot, driver: 'overlay' });
    try {
      const err = await store.createContainer('victim:1').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CARRIER_CORRUPT_STORE', path: linkFile });
      expect((err as Error).message).toContain('invalid layer link "../../escape"');
      expect(await store.containers()).toEqual([]);
    } finally {
      await store.close();
    }
    expectSentinelIntact(p);
  }, 120_000);

  it('a `lower` file naming a path outside l/ is refused', async () => {
    const p = await storeWithImage('lower');
    const lowerFile = path.join(p.root, 'overlay', p.topLayer, 'lower');
    const lower = fs.readFileSync(lowerFile, 'utf8');
    fs.writeFileSync(lowerFile, `l/../../escape:${lower}`);
    const driver = new OverlayDriver(path.join(p.root, 'overlay'));
    await expect(driver.lowerDirs(p.topLayer)).rejects.toMatchObject({ code: 'CARRIER_CORRUPT_STORE', path: lowerFile });
    await expect(driver.changes(p.topLayer, undefined)).rejects.toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
    await expect(driver.lowerFor(p.topLayer)).rejects.toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
    // the store's own lower files are all links
    fs.writeFileSync(lowerFile, lower);
    expect(await driver.lowerDirs(p.topLayer)).toHaveLength(2);
    expectSentinelIntact(p);
  }, 120_000);
});

describe('an additional image store', () => {
  it('a planted record there is reported, not followed', async () => {
    const ro = await storeWithImage('ro');
    plantEscapingTopLayer(ro);
    const conf = path.join(work, 'additional.conf');
    fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\n[storage.options]\nadditionalimagestores = [ "${ro.root}" ]\n`);
    const base = path.join(work, 'ro-user');
    const store = await Store.open({ root: path.join(base, 'root'), runroot: path.join(base, 'run'), configFile: conf });
    try {
      const err = await store.images().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
      expect((err as Error).message).toContain('../../escape');
    } finally {
      await store.close();
    }
    expectSentinelIntact(ro);
  }, 120_000);
});

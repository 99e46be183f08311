// The store's own behaviour: layout, records, ids, big data, names, deletes, unknown fields, failure atomicity,
// crash recovery and locks. test/store-podman.test.ts proves the same store with real podman.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { Store } from '../src/store/store.js';
import { StoreLock } from '../src/store/lock.js';
import { layerIdFor, bigDataFileName } from '../src/store/ids.js';
import { CarrierError } from '../src/errors.js';
import { native } from '../src/native.js';
import { buildTestImage, defaultLayers, type TestImage } from './support/images.js';
import { commitOf, storeDirs, snapshot, readJson } from './support/store.js';
import * as H from './support/hostile.js';
import type { LayerRecord, ImageRecord } from '../src/store/records.js';

const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
let work: string;
let imgA: TestImage;
let imgB: TestImage;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-store-'));
  imgA = buildTestImage(path.join(work, 'img-a'), { label: 'a' });
  // B shares A's first two layers and has its own top layer.
  const layersB = defaultLayers();
  layersB[2] = { compression: 'zstd', entries: [H.dir('b/'), H.file('b/only-in-b', 'b\n')] };
  imgB = buildTestImage(path.join(work, 'img-b'), { layers: layersB, label: 'b' });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

let n = 0;
async function freshStore(): Promise<{ store: Store; root: string; runroot: string }> {
  const dirs = storeDirs(path.join(work, `s${n++}`));
  const store = await Store.open(dirs);
  return { store, ...dirs };
}

async function sha256Stream(s: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return 'sha256:' + h.digest('hex');
}

describe('store layout', () => {
  it('creates the containers/storage overlay layout and lock files on open', async () => {
    const { store, root, runroot } = await freshStore();
    for (const d of ['overlay', 'overlay/l', 'overlay-layers', 'overlay-images', 'overlay-containers']) {
      expect(fs.statSync(path.join(root, d)).isDirectory(), d).toBe(true);
    }
    for (const f of ['storage.lock', 'userns.lock', 'overlay-layers/layers.lock', 'overlay-images/images.lock', 'overlay-containers/containers.lock']) {
      expect(fs.existsSync(path.join(root, f)), f).toBe(true);
    }
    expect(fs.readFileSync(path.join(root, 'overlay/.has-mount-program'), 'utf8')).toBe('false');
    expect(readJson(path.join(runroot, 'overlay-layers/mountpoints.json'))).toEqual([]);
    expect(fs.existsSync(path.join(runroot, 'overlay-layers/mountpoints.lock'))).toBe(true);
    await store.close();
  });

  it('refuses a root where no directory can be made (under /proc) with the mkdir failure, rather than retrying it forever', async () => {
    // mkdir in /proc answers ENOENT though /proc exists: Node's recursive mkdir retried that endlessly
    const runroot = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-proc-root-'));
    try {
      const err = await Store.open({ root: `/proc/carrier-no-store-${process.pid}`, runroot }).then(
        (s) => s.close().then(() => undefined),
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).toBe('ENOENT');
      expect(err?.message).toContain(`/proc/carrier-no-store-${process.pid}`);
    } finally {
      fs.rmSync(runroot, { recursive: true, force: true });
    }
  });

  it('records layers, images and big data exactly as containers/storage does', async () => {
    const { store, root } = await freshStore();
    const result = await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const id = imgA.configDigest.slice(7);
    expect(result.id).toBe(id);

    // layer ids: DiffID hex for the base, then sha256(parent + "+" + diffIDhex)
    const ids: string[] = [];
    let parent: string | undefined;
    for (const d of imgA.diffIDs) {
      const expected = parent === undefined ? d.slice(7) : createHash('sha256').update(`${parent}+${d.slice(7)}`).digest('hex');
      expect(layerIdFor(parent, d)).toBe(expected);
      ids.push(expected);
      parent = expected;
    }
    const layers = readJson<LayerRecord[]>(path.join(root, 'overlay-layers/layers.json'));
    expect(layers.map((l) => l.id).sort()).toEqual([...ids].sort());
    for (const [i, lid] of ids.entries()) {
      const rec = layers.find((l) => l.id === lid)!;
      const built = imgA.layers[i]!;
      expect(rec.parent).toBe(i === 0 ? undefined : ids[i - 1]);
      expect(rec['compressed-diff-digest']).toBe(built.digest);
      expect(rec['compressed-size']).toBe(built.size);
      expect(rec['diff-digest']).toBe(built.diffID);
      expect(rec['diff-size']).toBe(built.tar.length);
      expect(rec.compression).toBe(built.mediaType.endsWith('gzip') ? 2 : undefined); // 0 (none) is omitted
      expect(rec.uidset).toEqual([0]);
      expect(rec.gidset).toEqual([0]);
      expect(rec.flags).toBeUndefined();
      expect(rec.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(fs.existsSync(path.join(root, 'overlay-layers', `${lid}.tar-split.gz`))).toBe(true);

      const dir = path.join(root, 'overlay', lid);
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(dir, 'diff')).mode & 0o7777).toBe(0o555);
      for (const sub of ['work', 'merged']) expect(fs.statSync(path.join(dir, sub)).isDirectory()).toBe(true);
      const link = fs.readFileSync(path.join(dir, 'link'), 'utf8');
      expect(link).toMatch(/^[A-Z2-7]{26}$/);
      expect(fs.readlinkSync(path.join(root, 'overlay/l', link))).toBe(`../${lid}/diff`);
      if (i === 0) {
        expect(fs.statSync(path.join(dir, 'empty')).isDirectory()).toBe(true);
        expect(fs.existsSync(path.join(dir, 'lower'))).toBe(false);
      } else {
        const parentLinks = ids.slice(0, i).reverse().map((p) => `l/${fs.readFileSync(path.join(root, 'overlay', p, 'link'), 'utf8')}`);
        expect(fs.readFileSync(path.join(dir, 'lower'), 'utf8')).toBe(parentLinks.join(':'));
      }
    }
    // whiteouts in overlay form: a 0/0 char device and the opaque xattr
    const wh = fs.lstatSync(path.join(root, 'overlay', ids[1]!, 'diff/data/gone.txt'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);

    const images = readJson<ImageRecord[]>(path.join(root, 'overlay-images/images.json'));
    expect(images).toHaveLength(1);
    const img = images[0]!;
    expect(img).toMatchObject({ id, digest: imgA.manifestDigest, names: ['localhost/a:1'], 'names-history': ['localhost/a:1'], layer: ids[2], metadata: '{}' });
    expect(img.digests).toBeUndefined();
    const keys = [imgA.configDigest, `manifest-${imgA.manifestDigest}`, 'manifest'];
    expect(img['big-data-names']).toEqual(keys);
    const data: Record<string, Buffer> = { [keys[0]!]: imgA.config, [keys[1]!]: imgA.manifest, manifest: imgA.manifest };
    for (const k of keys) {
      const file = path.join(root, 'overlay-images', id, bigDataFileName(k));
      expect(fs.readFileSync(file).equals(data[k]!), k).toBe(true);
      expect(img['big-data-sizes']![k]).toBe(data[k]!.length);
      expect(img['big-data-digests']![k]).toBe(sha(data[k]!));
    }
    expect(bigDataFileName('manifest')).toBe('manifest');
    expect(bigDataFileName(keys[0]!)).toBe('=' + Buffer.from(keys[0]!).toString('base64'));
    await store.close();
  });

  it('exports every layer as the exact tar it was made from (diff-digest reproduced)', async () => {
    const { store } = await freshStore();
    await store.commitImage(commitOf(imgA));
    const layers = await store.layers();
    expect(layers).toHaveLength(3);
    for (const l of layers) expect(await sha256Stream(await store.exportLayer(l.id))).toBe(l.diffDigest);
    await store.close();
  });
});

describe('images: names, lookup, delete', () => {
  it('finds an image by id, short id, sha256:id, name, short name and name@digest', async () => {
    const { store } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1', 'quay.io/org/app:2']));
    const id = imgA.configDigest.slice(7);
    for (const q of [id, id.slice(0, 12), id.slice(0, 3), `sha256:${id}`, 'localhost/a:1', 'a:1', 'quay.io/org/app:2', 'org/app:2', `quay.io/org/app@${imgA.manifestDigest}`]) {
      expect((await store.image(q))?.id, q).toBe(id);
    }
    for (const q of ['a', 'a:2', 'docker.io/library/a:1', 'b:1', 'ffffffffffff', `sha256:${imgA.configDigest.slice(7, 19)}`]) expect(await store.image(q), q).toBeUndefined();
    await store.close();
  });

  it('tag moves a name from another image, records history, untag removes only the name', async () => {
    const { store } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/x:1']));
    await store.commitImage(commitOf(imgB, ['localhost/b:1']));
    const b = await store.tag('b:1', ['x:1', 'registry.example:5000/team/b']);
    expect(b.names).toEqual(['localhost/b:1', 'localhost/x:1', 'registry.example:5000/team/b:latest']);
    expect(b.namesHistory).toEqual(['registry.example:5000/team/b:latest', 'localhost/x:1', 'localhost/b:1']);
    expect((await store.image(imgA.configDigest))!.names).toEqual([]);
    const after = await store.untag('b:1', ['x:1']);
    expect(after.names).toEqual(['localhost/b:1', 'registry.example:5000/team/b:latest']);
    expect(after.namesHistory).toContain('localhost/x:1');
    await expect(store.untag('b:1', ['never:1'])).rejects.toMatchObject({ code: 'CARRIER_NOT_FOUND' });
    await expect(store.tag('nope:1', ['y'])).rejects.toMatchObject({ code: 'CARRIER_NOT_FOUND' });
    await store.close();
  });

  it('keeps shared layers while another image uses them and leaves nothing behind when the last goes', async () => {
    const { store, root } = await freshStore();
    const a = await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const b = await store.commitImage(commitOf(imgB, ['localhost/b:1']));
    expect(b.layers.map((l) => l.applied)).toEqual([false, false, true]); // shared base applied once
    const removedA = await store.removeImage('a:1');
    expect(removedA.removedLayers).toEqual([a.layers[2]!.id]);
    const left = (await store.layers()).map((l) => l.id).sort();
    expect(left).toEqual(b.layers.map((l) => l.id).sort());
    for (const l of b.layers) expect(await sha256Stream(await store.exportLayer(l.id))).toBe(l.diffID);
    const removedB = await store.removeImage('b:1');
    expect(removedB.removedLayers).toEqual([...b.layers].reverse().map((l) => l.id));
    expect(fs.readdirSync(path.join(root, 'overlay')).sort()).toEqual(['.has-mount-program', 'l']);
    expect(fs.readdirSync(path.join(root, 'overlay/l'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'overlay-images')).sort()).toEqual(['images.json', 'images.lock']);
    expect(fs.readdirSync(path.join(root, 'overlay-layers')).sort()).toEqual(['layers.json', 'layers.lock']);
    expect(readJson(path.join(root, 'overlay-layers/layers.json'))).toEqual([]);
    await store.close();
  });

  it('refuses to remove an image a container uses, unless forced', async () => {
    const { store, root, runroot } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const c = await store.createContainer('a:1', { names: ['web'] });
    const top = (await store.image('a:1'))!.topLayer!;
    const layer = (await store.layers()).find((l) => l.id === c.layer)!;
    expect(layer.parent).toBe(top);
    expect(fs.readFileSync(path.join(root, 'overlay', c.layer, 'lower'), 'utf8').split(':')).toHaveLength(3);
    for (const r of [root, runroot]) expect(fs.statSync(path.join(r, 'overlay-containers', c.id, 'userdata')).isDirectory()).toBe(true);
    const recs = readJson<Record<string, unknown>[]>(path.join(root, 'overlay-containers/containers.json'));
    expect(recs).toEqual([expect.objectContaining({ id: c.id, names: ['web'], image: imgA.configDigest.slice(7), layer: c.layer })]);
    await expect(store.createContainer('a:1', { names: ['web'] })).rejects.toMatchObject({ code: 'CARRIER_EXISTS' });
    await expect(store.removeImage('a:1')).rejects.toMatchObject({ code: 'CARRIER_IN_USE' });
    const forced = await store.removeImage('a:1', { force: true });
    expect(forced.removedContainers).toEqual([c.id]);
    expect(await store.containers()).toEqual([]);
    expect(await store.layers()).toEqual([]);
    expect(fs.existsSync(path.join(runroot, 'overlay-containers', c.id))).toBe(false);
    await store.close();
  });
});

describe('prune and orphan sweep', () => {
  it('prunes dangling images, then with all every image no container uses', async () => {
    const { store, root } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    await store.commitImage(commitOf(imgB, [])); // dangling: no name
    expect((await store.pruneImages()).map((r) => r.id)).toEqual([imgB.configDigest.slice(7)]);
    expect((await store.images()).map((i) => i.id)).toEqual([imgA.configDigest.slice(7)]);
    const c = await store.createContainer('a:1');
    expect(await store.pruneImages({ all: true })).toEqual([]); // in use by a container
    await store.deleteContainer(c.id);
    expect((await store.pruneImages({ all: true })).map((r) => r.id)).toEqual([imgA.configDigest.slice(7)]);
    expect(await store.layers()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'overlay')).sort()).toEqual(['.has-mount-program', 'l']);
    await store.close();
  });

  it('sweeps exactly the unreferenced directories, links, tar-splits and dead writers\' temp files', async () => {
    const { store, root, runroot } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const c = await store.createContainer('a:1');
    const before = snapshot(root);
    const orphan = 'f'.repeat(64);
    const deadPid = 2 ** 22 + 12345; // above pid_max's default: never a live process
    fs.mkdirSync(path.join(root, 'overlay', orphan, 'diff/deep'), { recursive: true });
    fs.chmodSync(path.join(root, 'overlay', orphan, 'diff'), 0o555);
    fs.symlinkSync(`../${orphan}/diff`, path.join(root, 'overlay/l/ORPHANORPHANORPHANORPHAN22'));
    fs.symlinkSync('../gone/diff', path.join(root, 'overlay/l/DANGLINGDANGLINGDANGLING22'));
    fs.writeFileSync(path.join(root, 'overlay-layers', `${orphan}.tar-split.gz`), 'x');
    fs.mkdirSync(path.join(root, 'overlay-images', orphan));
    fs.mkdirSync(path.join(root, 'overlay-containers', orphan, 'userdata'), { recursive: true });
    fs.mkdirSync(path.join(runroot, 'overlay-containers', orphan), { recursive: true });
    fs.writeFileSync(path.join(root, 'overlay-images', `.images.json.${deadPid}.abcdef.tmp`), '[]');
    const live = path.join(root, 'overlay-images', `.images.json.${process.pid}.abcdef.tmp`);
    fs.writeFileSync(live, '[]'); // a live writer's temp file stays
    fs.writeFileSync(path.join(root, 'overlay', 'not-ours.txt'), 'left alone');
    fs.mkdirSync(path.join(root, 'carrier-tmp/carrier-abc123/etc'), { recursive: true }); // a killed checkout's scratch tree
    const removed = await store.sweepOrphans();
    expect(removed.sort()).toEqual(
      [
        `overlay/${orphan}`,
        'overlay/l/ORPHANORPHANORPHANORPHAN22',
        'overlay/l/DANGLINGDANGLINGDANGLING22',
        `overlay-layers/${orphan}.tar-split.gz`,
        `overlay-images/${orphan}`,
        `overlay-containers/${orphan}`,
        path.relative(root, path.join(runroot, 'overlay-containers', orphan)),
        `overlay-images/.images.json.${deadPid}.abcdef.tmp`,
        'carrier-tmp/carrier-abc123',
      ].sort(),
    );
    fs.rmSync(live);
    fs.rmSync(path.join(root, 'overlay', 'not-ours.txt'));
    fs.rmdirSync(path.join(root, 'carrier-tmp'));
    expect(snapshot(root)).toEqual(before);
    expect((await store.containers()).map((x) => x.id)).toEqual([c.id]);
    for (const l of await store.layers()) if (l.diffDigest) expect(await sha256Stream(await store.exportLayer(l.id))).toBe(l.diffDigest);
    await store.close();
  });
});

describe('damaged records', () => {
  it('reports a containers.json that is not JSON on every use, never taking it for an empty store', async () => {
    const { store, root, runroot } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    await store.createContainer('a:1');
    await store.close();
    fs.writeFileSync(path.join(root, 'overlay-containers/containers.json'), '[{"id":');
    const again = await Store.open({ root, runroot });
    await expect(again.containers()).rejects.toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
    await expect(again.containers()).rejects.toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
    await expect(again.createContainer('a:1')).rejects.toMatchObject({ code: 'CARRIER_CORRUPT_STORE' });
    expect((await again.images()).map((i) => i.names)).toEqual([['localhost/a:1']]);
    await again.close();
  });
});

describe('container data files', () => {
  it('writes the userdata files given to createContainer with the container, and refuses a name that is a path', async () => {
    const { store, root, runroot } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const c = await store.createContainer('a:1', { userdata: [{ name: 'config.json', data: '{"a":1}' }, { name: 'raw', data: Buffer.from([1, 2, 3]) }] });
    const userdata = path.join(root, 'overlay-containers', c.id, 'userdata');
    expect(fs.readFileSync(path.join(userdata, 'config.json'), 'utf8')).toBe('{"a":1}');
    expect([...fs.readFileSync(path.join(userdata, 'raw'))]).toEqual([1, 2, 3]);
    expect(fs.statSync(path.join(userdata, 'config.json')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(userdata).sort()).toEqual(['config.json', 'raw']); // no temp file left
    expect(fs.readdirSync(path.join(runroot, 'overlay-containers', c.id, 'userdata'))).toEqual([]);
    const layersBefore = (await store.layers()).length;
    await expect(store.createContainer('a:1', { userdata: [{ name: '../escape', data: 'x' }] })).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    expect((await store.containers()).map((x) => x.id)).toEqual([c.id]);
    expect((await store.layers()).length).toBe(layersBefore);
    expect(fs.readdirSync(path.join(root, 'overlay-containers')).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([c.id]);
    expect(fs.existsSync(path.join(root, 'overlay-containers', 'escape'))).toBe(false);
    await store.deleteContainer(c.id);
    expect(fs.existsSync(path.join(root, 'overlay-containers', c.id))).toBe(false);
    await store.close();
  });
});

describe('mounts', () => {
  it('mounts a container\'s merged view, counts mounts in mountpoints.json like podman, and unmounts at zero', async () => {
    const { store, runroot } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const c = await store.createContainer('a:1');
    const merged = await store.mountContainer(c.id);
    expect(fs.readFileSync(path.join(merged, 'etc/hostname'), 'utf8')).toBe('carrier-a\n');
    expect(fs.existsSync(path.join(merged, 'data/gone.txt'))).toBe(false); // whiteout from a lower layer
    expect(fs.readdirSync(path.join(merged, 'data/opaque'))).toEqual(['new.txt']);
    fs.writeFileSync(path.join(merged, 'written'), 'by the container\n');
    expect(fs.readFileSync(path.join(store.layerDiffPath(c.layer), 'written'), 'utf8')).toBe('by the container\n');
    expect(await store.mountContainer(c.id)).toBe(merged);
    const mp = () => readJson<{ id: string; path: string; count: number }[]>(path.join(runroot, 'overlay-layers/mountpoints.json'));
    expect(mp()).toEqual([{ id: c.layer, path: merged, count: 2 }]);
    expect(await store.unmountContainer(c.id)).toBe(true);
    expect(fs.existsSync(path.join(merged, 'written'))).toBe(true);
    expect(await store.unmountContainer(c.id)).toBe(false);
    expect(mp()).toEqual([]);
    expect(fs.readdirSync(merged)).toEqual([]);
    // deleting a mounted container unmounts it first
    await store.mountContainer(c.id);
    await store.deleteContainer(c.id);
    expect(mp()).toEqual([]);
    expect(fs.existsSync(path.join(merged))).toBe(false);
    await store.close();
  });
});

describe('records survive other writers', () => {
  it('keeps fields Carrier does not know through a read-modify-write', async () => {
    const { store, root } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    await store.close();
    for (const [file, extra] of [
      ['overlay-layers/layers.json', { 'future-layer-field': { nested: [1, 2] } }],
      ['overlay-images/images.json', { 'future-image-field': 'kept', flags: { 'some-flag': true } }],
    ] as const) {
      const p = path.join(root, file);
      const recs = readJson<Record<string, unknown>[]>(p).map((r) => ({ ...r, ...extra }));
      fs.writeFileSync(p, JSON.stringify(recs));
    }
    const again = await Store.open({ root, runroot: path.join(root, '../run') });
    await again.tag('a:1', ['a:2']); // rewrites images.json
    await again.commitImage(commitOf(imgB, ['localhost/b:1'])); // rewrites layers.json
    const images = readJson<Record<string, unknown>[]>(path.join(root, 'overlay-images/images.json'));
    expect(images.find((i) => i.id === imgA.configDigest.slice(7))).toMatchObject({ 'future-image-field': 'kept', flags: { 'some-flag': true }, names: ['localhost/a:1', 'localhost/a:2'] });
    const layers = readJson<Record<string, unknown>[]>(path.join(root, 'overlay-layers/layers.json'));
    expect(layers.filter((l) => 'future-layer-field' in l)).toHaveLength(3);
    await again.close();
  });

  it('sees another writer through the last-writer token and writes a fresh 64-byte token itself', async () => {
    const { store, root, runroot } = await freshStore();
    const other = await Store.open({ root, runroot });
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const lockFile = path.join(root, 'overlay-images/images.lock');
    const t1 = fs.readFileSync(lockFile);
    expect(t1).toHaveLength(64);
    expect(t1.readUInt32LE(16)).toBe(process.pid);
    expect((await other.image('a:1'))?.names).toEqual(['localhost/a:1']);
    await other.tag('a:1', ['a:9']);
    const t2 = fs.readFileSync(lockFile);
    expect(t2).toHaveLength(64);
    expect(t2.equals(t1)).toBe(false);
    expect(t2.readBigUInt64LE(8)).toBeGreaterThan(t1.readBigUInt64LE(8)); // per-process counter
    expect((await store.image('a:9'))?.id).toBe(imgA.configDigest.slice(7));
    await other.close();
    await store.close();
  });
});

describe('completing many layers', () => {
  it('clears the incomplete flags of 60 layers in a few rounds (one syncfs + one layers.json write each), not 60', async () => {
    const { store, root } = await freshStore();
    const img = buildTestImage(path.join(work, 'img-many'), {
      layers: Array.from({ length: 60 }, (_, i) => ({ compression: 'gzip' as const, entries: [H.file(`f${i}`, `${i}\n`)] })),
    });
    const layersJson = path.join(root, 'overlay-layers', 'layers.json');
    let writes = 0;
    const watcher = fs.watch(path.dirname(layersJson), (event, name) => {
      if (name === 'layers.json' && event === 'rename') writes++;
    });
    try {
      await store.commitImage(commitOf(img, ['localhost/many:1']), { concurrency: 3 });
      await new Promise((r) => setTimeout(r, 100)); // let the last inotify events arrive
    } finally {
      watcher.close();
    }
    const records = readJson<LayerRecord[]>(layersJson);
    expect(records).toHaveLength(60);
    expect(records.every((r) => r.flags?.incomplete === undefined && r['diff-digest'] !== undefined)).toBe(true);
    // one write to begin all 60, then the rounds; one write per layer would be 61
    expect(writes, `layers.json was replaced ${writes} times`).toBeGreaterThanOrEqual(2);
    expect(writes).toBeLessThan(20);
    await store.close();
  });
});

describe('durability', () => {
  // syncfs is counted through the native binding the store calls
  async function syncfsCalls(fn: () => Promise<unknown>): Promise<number> {
    const real = native.syncFs;
    let calls = 0;
    native.syncFs = (fd: number) => {
      calls++;
      return real(fd);
    };
    try {
      await fn();
    } finally {
      native.syncFs = real;
    }
    return calls;
  }

  it('flushes layer content (syncfs) before recording a layer complete by default', async () => {
    const { store } = await freshStore();
    const calls = await syncfsCalls(() => store.commitImage(commitOf(imgA, ['localhost/durable:1'])));
    expect(calls).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it('sync: false records the same complete layers and image without any syncfs', async () => {
    const { store, root } = await freshStore();
    const calls = await syncfsCalls(() => store.commitImage(commitOf(imgA, ['localhost/nosync:1']), { sync: false }));
    expect(calls).toBe(0);
    const records = readJson<LayerRecord[]>(path.join(root, 'overlay-layers', 'layers.json'));
    expect(records).toHaveLength(imgA.layers.length);
    expect(records.every((r) => r.flags?.incomplete === undefined && r['diff-digest'] !== undefined)).toBe(true);
    expect((await store.images()).map((i) => i.names)).toEqual([['localhost/nosync:1']]);
    await store.close();
  });
});

describe('failures and crashes', () => {
  it('a layer whose bytes do not match leaves the store exactly as it was', async () => {
    const { store, root } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const before = snapshot(root);
    const bad = commitOf(imgB, ['localhost/b:1']);
    const top = imgB.layers[2]!;
    const corrupt = Buffer.from(top.blob);
    corrupt[corrupt.length - 20] ^= 0xff;
    bad.layers[2] = { ...bad.layers[2]!, open: async () => (await import('node:stream')).Readable.from([corrupt]) };
    const err = await store.commitImage(bad).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CarrierError);
    expect(snapshot(root)).toEqual(before);
    await store.close();
  });

  it('an aborted commit leaves the store exactly as it was', async () => {
    const { store, root } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    const before = snapshot(root);
    const ac = new AbortController();
    const commit = commitOf(imgB, ['localhost/b:1']);
    commit.layers[2] = { ...commit.layers[2]!, open: async () => { ac.abort(); return (await import('node:stream')).Readable.from([imgB.layers[2]!.blob]); } };
    await expect(store.commitImage(commit, { signal: ac.signal, concurrency: 1 })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(snapshot(root)).toEqual(before);
    await store.close();
  });

  it('repairs a layer left incomplete by a writer killed mid-apply (SIGKILL) on the next open', async () => {
    const { store, root, runroot } = await freshStore();
    await store.commitImage(commitOf(imgA, ['localhost/a:1']));
    await store.close();
    const before = snapshot(root);
    const ready = path.join(work, `ready-${n}`);
    const child = spawn(process.execPath, [path.join(__dirname, 'support/slow-commit.mjs'), root, runroot, ready], { stdio: ['ignore', 'inherit', 'inherit'] });
    try {
      for (let i = 0; i < 600 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(ready), 'the child never reached mid-apply').toBe(true);
      const mid = readJson<LayerRecord[]>(path.join(root, 'overlay-layers/layers.json'));
      const half = mid.filter((l) => l.flags?.incomplete === true);
      expect(half).toHaveLength(1);
      expect(fs.existsSync(path.join(root, 'overlay', half[0]!.id, 'diff'))).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const reopened = await Store.open({ root, runroot });
    expect((await reopened.layers()).every((l) => !l.incomplete)).toBe(true);
    expect(snapshot(root)).toEqual(before);
    await reopened.close();
  });
});

describe('locks', () => {
  it('excludes another holder in this process and POSIX (podman-style) record locks of another process', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'lock-'));
    const file = path.join(dir, 'x.lock');
    const a = await StoreLock.open(file);
    const b = await StoreLock.open(file);
    await a.lock(true);
    expect(await b.tryLock(false)).toBe(false);
    a.unlock(true);
    expect(await b.tryLock(false)).toBe(true);
    b.unlock(false);
    // A POSIX fcntl lock held by another process (what c/storage takes) blocks us, and ours blocks it.
    const holder = spawn('python3', ['-c', `import fcntl,sys,time\nf=open(${JSON.stringify(file)},'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(30)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    expect(await a.tryLock(false)).toBe(false);
    const waiting = a.lock(true);
    let got = false;
    void waiting.then(() => (got = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toBe(false);
    holder.kill('SIGKILL');
    await waiting;
    expect(got).toBe(true);
    const probe = spawnSync('python3', ['-c', `import fcntl\nf=open(${JSON.stringify(file)},'r+')\ntry:\n  fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\n  print('free')\nexcept OSError:\n  print('busy')`], { encoding: 'utf8' });
    expect(probe.stdout.trim()).toBe('busy');
    a.unlock(true);
    await a.close();
    await b.close();
  });
});

// Names enter a record only through validateStoredName (see test/reference-store.test.ts for the validator against
// podman itself): tag, commit, load and pull refuse a name podman cannot read back, before anything is written.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../src/store/store.js';
import { loadImage } from '../src/load-image.js';
import { pull } from '../src/pull.js';
import { buildTestImage, type TestImage } from './support/images.js';
import { commitOf, snapshot, storeDirs } from './support/store.js';
import { tempDir } from './support/fixtures.js';

const IPV6_NAME = '[::1]:5000/x:1';

describe('names podman cannot read never reach a record', () => {
  let work: string;
  let img: TestImage;
  let store: Store;
  let root: string;

  beforeAll(async () => {
    work = tempDir('carrier-names-');
    img = buildTestImage(path.join(work, 'img'));
    const dirs = storeDirs(path.join(work, 'store'));
    root = dirs.root;
    store = await Store.open({ root: dirs.root, runroot: dirs.runroot, env: { ...process.env, XDG_DATA_HOME: path.join(work, 'data') } });
    await store.commitImage(commitOf(img, ['localhost/ok:1']));
  });

  afterAll(async () => {
    await store?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('tag refuses an IPv6 host and leaves the records as they were', async () => {
    const before = snapshot(root);
    await expect(store.tag('localhost/ok:1', [IPV6_NAME])).rejects.toMatchObject({ code: 'CARRIER_INVALID_REFERENCE' });
    expect(snapshot(root)).toEqual(before);
  });

  it('tag refuses more names than an image may hold', async () => {
    const before = snapshot(root);
    const many = Array.from({ length: 101 }, (_, i) => `localhost/many:${i}`);
    await expect(store.tag('localhost/ok:1', many)).rejects.toMatchObject({ code: 'CARRIER_LIMIT_EXCEEDED' });
    expect(snapshot(root)).toEqual(before);
  });

  it('commit refuses a bad name before writing any layer', async () => {
    const other = buildTestImage(path.join(work, 'img2'), { label: 'two' });
    const before = snapshot(root);
    await expect(store.commitImage(commitOf(other, [IPV6_NAME]))).rejects.toMatchObject({ code: 'CARRIER_INVALID_REFERENCE' });
    expect((await store.images()).map((i) => i.id)).not.toContain(other.configDigest.slice('sha256:'.length));
    expect(Object.keys(snapshot(root)).filter((k) => !Object.keys(before).includes(k) && k.includes('-layers/'))).toEqual([]);
  });

  it('load refuses an OCI layout whose ref.name is an IPv6 host, and one with thousands of names, storing nothing', async () => {
    const bad = path.join(work, 'layout-ipv6');
    fs.cpSync(img.ociDir, bad, { recursive: true });
    const index = JSON.parse(fs.readFileSync(path.join(bad, 'index.json'), 'utf8'));
    index.manifests[0].annotations['org.opencontainers.image.ref.name'] = IPV6_NAME;
    fs.writeFileSync(path.join(bad, 'index.json'), JSON.stringify(index));
    const crowded = path.join(work, 'layout-crowded');
    fs.cpSync(img.ociDir, crowded, { recursive: true });
    const one = index.manifests[0];
    index.manifests = Array.from({ length: 3000 }, (_, i) => ({ ...one, annotations: { 'org.opencontainers.image.ref.name': `localhost/crowd:${i}` } }));
    fs.writeFileSync(path.join(crowded, 'index.json'), JSON.stringify(index));
    const before = snapshot(root);
    await expect(loadImage(store, bad)).rejects.toMatchObject({ code: 'CARRIER_INVALID_REFERENCE' });
    await expect(loadImage(store, crowded)).rejects.toMatchObject({ code: 'CARRIER_LIMIT_EXCEEDED' });
    expect(snapshot(root)).toEqual(before);
  });

  it('pull refuses such a name before asking any registry', async () => {
    let asked = 0;
    const registry = {
      getManifest: async () => {
        asked++;
        throw new Error('no registry should be asked');
      },
      getBlob: async () => {
        asked++;
        throw new Error('no registry should be asked');
      },
    };
    await expect(pull(store, IPV6_NAME, { registry: registry as never })).rejects.toMatchObject({ code: 'CARRIER_INVALID_REFERENCE' });
    expect(asked).toBe(0);
  });
});

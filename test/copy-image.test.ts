// copyImage between the transports: a registry image goes to an OCI layout, from there to an oci-archive, to a
// docker-archive and into the store, each result read by skopeo or podman; the store goes back out to a layout. A
// pull fetches its manifest once. Against the real registry (behind the counting fault proxy), skopeo and podman.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import {
  Store,
  RegistryClient,
  pull,
  copyImage,
  openRegistrySource,
  openImageSource,
  openImageDestination,
  openStoreSource,
  parseTransportReference,
  OciLayoutDestination,
  DockerArchiveDestination,
  StoreDestination,
  CarrierError,
  type CopyEvent,
} from '../src/index.js';
import { isBlobGet, isManifestGet } from './support/fault-proxy.js';
import { registryRig } from './support/registry-rig.js';
import { Podman, type TestImage } from './support/images.js';

let img: TestImage;
let client: RegistryClient;
const rig = registryRig('copy-image-test', { proxy: true, resetProxy: true }, async () => {
  img = await rig.buildAndPush('img', 'lib/c:1', { label: 'copy' });
  await rig.push(img, 'lib/c-v2s2:1', { format: 'v2s2' });
  client = new RegistryClient({ tlsVerify: false });
});

afterAll(async () => {
  await client?.close();
});

function skopeoInspect(ref: string, config = false): Record<string, unknown> {
  return JSON.parse(execFileSync('skopeo', ['inspect', ...(config ? ['--config'] : []), ref]).toString()) as Record<string, unknown>;
}

let n = 0;
function newPodman(): Podman {
  return new Podman(path.join(rig.work, `s${n++}`));
}

describe('copyImage between transports', () => {
  it('registry → oci layout → oci-archive → docker-archive → store, each readable by skopeo and podman', async () => {
    // Registry → OCI layout: the registry's OCI manifest and blobs are written as they are.
    const layout = path.join(rig.work, 'layout');
    const fromRegistry = await openRegistrySource(client, `${rig.proxy.host}/lib/c:1`);
    const toLayout = await OciLayoutDestination.open('oci', layout);
    const events: CopyEvent[] = [];
    const r1 = await copyImage(fromRegistry, toLayout, { names: ['v1'], onProgress: (e) => events.push(e) });
    await toLayout.close();
    expect(r1.id).toBe(img.configDigest.slice(7));
    expect(r1.manifestReused).toBe(true);
    expect(r1.manifestDigest).toBe(fromRegistry.manifestDigest);
    expect(events[0]).toMatchObject({ type: 'resolved', manifestDigest: fromRegistry.manifestDigest, configDigest: img.configDigest });
    expect(events.filter((e) => e.type === 'layer' && e.state === 'done')).toHaveLength(img.layers.length);
    const inLayout = skopeoInspect(`oci:${layout}:v1`);
    expect(inLayout.Digest).toBe(fromRegistry.manifestDigest);
    // skopeo compressed the uncompressed top layer on push: the registry's own digests are what is copied.
    expect(inLayout.Layers).toEqual(fromRegistry.layers.map((l) => l.digest));
    expect((skopeoInspect(`oci:${layout}:v1`, true).rootfs as { diff_ids: string[] }).diff_ids).toEqual(img.diffIDs);

    // OCI layout → oci-archive, named by reference.
    const archive = path.join(rig.work, 'c.oci.tar');
    const fromLayout = await openImageSource(`oci:${layout}:v1`);
    const toArchive = await openImageDestination(`oci-archive:${archive}:example.com/c:1`);
    try {
      await copyImage(fromLayout.image, toArchive.destination, { names: toArchive.names });
      await toArchive.destination.close();
    } finally {
      await fromLayout.close();
    }
    expect(skopeoInspect(`oci-archive:${archive}`).Digest).toBe(fromRegistry.manifestDigest);

    // oci-archive → docker-archive: layers become the uncompressed tars, named by diff_id; podman loads it.
    const dockerFile = path.join(rig.work, 'c.docker.tar');
    const fromArchive = await openImageSource(`oci-archive:${archive}`);
    const toDocker = new DockerArchiveDestination(dockerFile);
    try {
      await copyImage(fromArchive.image, toDocker, { names: ['example.com/c:1'] });
      await toDocker.close();
    } finally {
      await fromArchive.close();
    }
    expect((skopeoInspect(`docker-archive:${dockerFile}`).Layers as string[])).toEqual(img.diffIDs);
    const loader = newPodman();
    expect(loader.load(dockerFile)).toEqual(['example.com/c:1']);
    expect(loader.inspect('example.com/c:1').Id).toBe(img.configDigest.slice(7));

    // docker-archive → the store: podman sees the image with its layers.
    const podman = newPodman();
    const store = await Store.open({ root: podman.root, runroot: podman.runroot });
    const fromDocker = await openImageSource(`docker-archive:${dockerFile}:example.com/c:1`);
    try {
      const r = await copyImage(fromDocker.image, new StoreDestination(store), { names: ['example.com/c:1'] });
      expect(r.layers.map((l) => l.state)).toEqual(img.layers.map(() => 'copied'));
      // The store → a new OCI layout (its layers rebuilt from the tar-split and gzip-compressed, as podman save does).
      const back = path.join(rig.work, 'back');
      const fromStore = await openStoreSource(store, 'example.com/c:1');
      const toBack = await OciLayoutDestination.open('oci', back);
      await store.withLayersHeld(() => copyImage(fromStore, toBack, { names: ['back'] }));
      await toBack.close();
      expect((skopeoInspect(`oci:${back}:back`, true).rootfs as { diff_ids: string[] }).diff_ids).toEqual(img.diffIDs);
    } finally {
      await fromDocker.close();
      await store.close();
    }
    const seen = podman.inspect('example.com/c:1');
    expect(seen.Id).toBe(img.configDigest.slice(7));
    expect(seen.RootFS.Layers).toEqual(img.diffIDs);
  }, 180_000);

  it('a Docker schema 2 image goes to an OCI layout with a converted manifest skopeo reads', async () => {
    const layout = path.join(rig.work, 'v2s2-layout');
    const source = await openRegistrySource(client, `${rig.proxy.host}/lib/c-v2s2:1`);
    expect(source.manifestMediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const dest = await OciLayoutDestination.open('oci', layout);
    const r = await copyImage(source, dest, { names: ['v1'] });
    await dest.close();
    expect(r.manifestReused).toBe(false);
    const inspected = skopeoInspect(`oci:${layout}:v1`);
    expect(inspected.Digest).toBe(r.manifestDigest);
    expect(JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:v1`]).toString()).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((skopeoInspect(`oci:${layout}:v1`, true).rootfs as { diff_ids: string[] }).diff_ids).toEqual(img.diffIDs);
  }, 120_000);

  it('a blob that does not match its digest is refused by the layout writer, and the directory is removed', async () => {
    const layout = path.join(rig.work, 'bad-layout');
    const source = await openRegistrySource(client, `${rig.proxy.host}/lib/c:1`);
    const dest = await OciLayoutDestination.open('oci', layout);
    const victim = source.layers[1]!.digest;
    rig.proxy.addRule({ match: (req) => isBlobGet(req) && req.path.includes(victim), fault: { kind: 'flip', at: 10 } });
    const err = await copyImage(source, dest, { names: ['v1'] }).then(
      () => undefined,
      (e: unknown) => e as CarrierError,
    );
    expect(err?.code).toBe('CARRIER_DIGEST_MISMATCH');
    expect(fs.existsSync(path.join(layout, 'blobs', 'sha256', source.layers[0]!.digest.slice(7)))).toBe(true);
    await dest.abort();
    expect(fs.existsSync(layout)).toBe(false);
  }, 120_000);

  it('a policy that refuses the source stops the copy before the store is touched', async () => {
    const podman = newPodman();
    const store = await Store.open({ root: podman.root, runroot: podman.runroot });
    try {
      const source = await openRegistrySource(client, `${rig.proxy.host}/lib/c:1`);
      const refused = await copyImage(source, new StoreDestination(store), {
        names: ['x'],
        policy: () => {
          throw new CarrierError('CARRIER_UNAUTHORIZED', 'not signed');
        },
      }).then(
        () => undefined,
        (e: unknown) => e as CarrierError,
      );
      expect(refused?.code).toBe('CARRIER_UNAUTHORIZED');
      expect(await store.images()).toEqual([]);
      expect(await store.layers()).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);
});

describe('pull is one copy', () => {
  it('fetches the manifest once and each blob once', async () => {
    const podman = newPodman();
    const store = await Store.open({ root: podman.root, runroot: podman.runroot });
    const inRegistry = await openRegistrySource(client, `${rig.reg.host}/lib/c:1`);
    try {
      const r = await pull(store, `${rig.proxy.host}/lib/c:1`, { tlsVerify: false, blobCacheDir: path.join(podman.dir, 'cache') });
      expect(r.id).toBe(img.configDigest.slice(7));
    } finally {
      await store.close();
    }
    expect(rig.proxy.requests.filter(isManifestGet)).toHaveLength(1);
    const blobs = rig.proxy.requests.filter(isBlobGet).map((q) => q.path.replace(/.*\/blobs\//, ''));
    expect(blobs.sort()).toEqual([img.configDigest, ...inRegistry.layers.map((l) => l.digest)].sort());
  }, 60_000);
});

describe('transport references', () => {
  it('parse as skopeo writes them', () => {
    expect(parseTransportReference('docker://alpine')).toEqual({ transport: 'docker', path: 'docker.io/library/alpine:latest' });
    expect(parseTransportReference('docker://host:5000/a/b@sha256:' + 'a'.repeat(64))).toEqual({ transport: 'docker', path: 'host:5000/a/b@sha256:' + 'a'.repeat(64) });
    expect(parseTransportReference('containers-storage:localhost/x:1')).toEqual({ transport: 'containers-storage', path: 'localhost/x:1' });
    expect(parseTransportReference('oci:/tmp/dir')).toEqual({ transport: 'oci', path: '/tmp/dir' });
    expect(parseTransportReference('oci:/tmp/dir:v1')).toEqual({ transport: 'oci', path: '/tmp/dir', name: 'v1' });
    expect(parseTransportReference('oci-archive:/tmp/a.tar:example.com/a:1')).toEqual({ transport: 'oci-archive', path: '/tmp/a.tar', name: 'example.com/a:1' });
    expect(parseTransportReference('docker-archive:/tmp/d.tar:@1')).toEqual({ transport: 'docker-archive', path: '/tmp/d.tar', index: 1 });
    for (const bad of ['alpine', 'dir:/x', 'docker:alpine', 'oci:', 'containers-storage:']) {
      expect(() => parseTransportReference(bad), bad).toThrow(CarrierError);
    }
  });

  it('a store destination named by reference records the name as podman tag would', async () => {
    const podman = newPodman();
    const store = await Store.open({ root: podman.root, runroot: podman.runroot });
    try {
      const source = await openImageSource(`docker://${rig.proxy.host}/lib/c:1`, { registry: client });
      const { destination, names } = await openImageDestination('containers-storage:copied:2', { store });
      expect(names).toEqual(['localhost/copied:2']);
      const r = await copyImage(source.image, destination, { names });
      await destination.close();
      expect(r.names).toEqual(['localhost/copied:2']);
    } finally {
      await store.close();
    }
    expect(podman.inspect('localhost/copied:2').Id).toBe(img.configDigest.slice(7));
  }, 60_000);
});

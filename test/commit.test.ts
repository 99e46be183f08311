/**
 * `carrier commit` against podman 4.3.1 on one store: a container Carrier made is changed through its mount (files
 * added, changed and deleted, a directory deleted and made again — an opaque directory —, a symlink, a hard link, an
 * xattr) and committed; podman sees the image, its tree (podman image mount) is the container's, `podman diff` of the
 * image lists what `carrier diff` listed for the container, the new layer exports byte for byte (the driver's diff
 * tar), and podman save/load keeps its id. `--change`, `-a` and `-m` give what podman commit gives for the same
 * container (OCI and Docker formats). The layer is stored uncompressed by default, as podman's (the manifest names the
 * tar, the same tar as podman's commit of the same change), and a push compresses it (gzip) as podman push does; with
 * --compression-format the compressed blob is cached and pushed as it is. Also on a vfs store.
 *
 * Needs: podman, skopeo, setfattr (Debian packages), root (podman's overlay store), and `npx tsc -p tsconfig.json`
 * first (the CLI runs from dist/).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store, commit, createContainer, diff, mountContainer, parseChanges, push, unmountContainer } from '../src/index.js';
import { readAll } from './support/layer.js';
import { tempDir } from './support/fixtures.js';
import { buildTestImage, defaultLayers, Podman, removeWorkDir, requireTools, skopeoRaw, toOciArchive } from './support/images.js';
import { compareTrees, walkTree } from './support/tree.js';
import { buildRunnableImage, requireBusybox } from './support/runnable.js';
import { commitOf } from './support/store.js';
import { startRegistry, storedImage } from './support/registry.js';

const T = 180_000;
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

/** Changes of every kind, made through a container's mounted root file system. */
function mutate(root: string): void {
  const p = (rel: string): string => path.join(root, rel);
  fs.writeFileSync(p('etc/new.conf'), 'added\n');
  fs.appendFileSync(p('data/kept.txt'), 'and changed\n');
  fs.rmSync(p('data/link'));
  fs.rmSync(p('top/readme'));
  fs.rmSync(p('data/opaque'), { recursive: true });
  fs.mkdirSync(p('data/opaque'));
  fs.writeFileSync(p('data/opaque/again.txt'), 'a new directory where the old one was\n');
  fs.mkdirSync(p('newdir/deep'), { recursive: true });
  fs.writeFileSync(p('newdir/deep/f'), 'deep\n');
  fs.linkSync(p('newdir/deep/f'), p('newdir/hard'));
  fs.symlinkSync('/etc/new.conf', p('newdir/link'));
  fs.writeFileSync(p('newdir/attr'), 'with an xattr\n');
  execFileSync('setfattr', ['-n', 'user.carrier', '-v', 'committed', p('newdir/attr')]);
  fs.chmodSync(p('top'), 0o700);
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

let work: string;
let pm: Podman;
let imageId: string;
let archive: string;

function carrier(args: string[], driver = pm): Run {
  const r = spawnSync(process.execPath, [CLI, '--root', driver.root, '--runroot', driver.runroot, '--storage-driver', driver.driver, ...args], {
    env: { ...driver.env, XDG_DATA_HOME: path.join(work, 'xdg'), LC_ALL: 'C.UTF-8' },
    encoding: 'utf8',
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run): string {
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

const storageRef = (driver: Podman, name: string): string => `containers-storage:[${driver.driver}@${driver.root}+${driver.runroot}]${name}`;
const configOf = (driver: Podman, name: string): Record<string, any> => JSON.parse(skopeoRaw(storageRef(driver, name), 'config').toString());
const sha256 = (b: Buffer): string => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

async function withStore<T>(driver: Podman, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open({ root: driver.root, runroot: driver.runroot, driver: driver.driver });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A Carrier container of the test image, changed by `mutate`. */
async function changedContainer(driver: Podman, name: string, image = imageId): Promise<string> {
  return withStore(driver, async (store) => {
    const id = (await createContainer(store, image, { name })).id;
    mutate(await mountContainer(store, id));
    await unmountContainer(store, id);
    return id;
  });
}

beforeAll(() => {
  requireTools();
  expect(fs.existsSync(CLI), `${CLI} is missing: run npx tsc -p tsconfig.json`).toBe(true);
  work = tempDir('commit');
  pm = new Podman(path.join(work, 'overlay'));
  archive = path.join(work, 'image.tar');
  toOciArchive(buildTestImage(path.join(work, 'oci'), { layers: defaultLayers('commit') }), archive, 'localhost/committest:1');
  pm.load(archive);
  imageId = pm.inspect('localhost/committest:1').Id;
}, T);

afterAll(() => {
  pm?.reset();
  removeWorkDir(work);
});

describe('commit on an overlay store', () => {
  it("makes an image podman sees with exactly the container's changes, one layer on its image's", async () => {
    const id = await changedContainer(pm, 'changed');
    const containerChanges = (await withStore(pm, (store) => diff(store, id))).changes.map((c) => `${c.kind} ${c.path}\n`).join('');
    expect(containerChanges).toContain('D /data/opaque\n');
    expect(containerChanges).toContain('A /newdir/attr\n');

    const out = carrier(['commit', '-q', 'changed', 'localhost/committed:1']);
    expect(out.stderr).toBe('');
    const newId = ok(out).trim();
    expect(newId).toMatch(/^[0-9a-f]{64}$/);

    const seen = pm.inspect('localhost/committed:1');
    expect(seen.Id).toBe(newId);
    const parent = pm.inspect(imageId);
    expect(seen.RootFS.Layers.slice(0, -1)).toEqual(parent.RootFS.Layers);
    expect(seen.RootFS.Layers).toHaveLength(parent.RootFS.Layers.length + 1);

    // podman's diff of the image's top layer against its parent: the container's changes, line for line.
    expect(pm.run(['diff', 'localhost/committed:1'])).toBe(containerChanges);
    expect(ok(carrier(['diff', 'localhost/committed:1']))).toBe(containerChanges);

    // The image's tree, as podman mounts it, is the container's tree.
    const imageRoot = pm.run(['image', 'mount', 'localhost/committed:1']).trim();
    try {
      await withStore(pm, async (store) => {
        const containerRoot = await mountContainer(store, id);
        try {
          const problems = compareTrees(walkTree(containerRoot), walkTree(imageRoot), { fields: ['type', 'mode', 'size', 'content', 'target', 'xattrs', 'links'] });
          expect(problems).toEqual([]);
        } finally {
          await unmountContainer(store, id);
        }
      });
      expect(fs.readFileSync(path.join(imageRoot, 'newdir/hard'), 'utf8')).toBe('deep\n');
      expect(fs.statSync(path.join(imageRoot, 'newdir/hard')).ino).toBe(fs.statSync(path.join(imageRoot, 'newdir/deep/f')).ino);
      expect(execFileSync('getfattr', ['--only-values', '-n', 'user.carrier', path.join(imageRoot, 'newdir/attr')]).toString()).toBe('committed');
      expect(fs.existsSync(path.join(imageRoot, 'data/opaque/old.txt'))).toBe(false);
      expect(fs.readlinkSync(path.join(imageRoot, 'newdir/link'))).toBe('/etc/new.conf');
    } finally {
      pm.run(['image', 'unmount', 'localhost/committed:1']);
    }
  }, T);

  it('stores the new layer so it exports byte for byte: the tar the driver made of the container', async () => {
    await withStore(pm, async (store) => {
      const c = (await store.container('changed'))!;
      const tar = await store.withLayerDiff(c.layer, readAll);
      const img = (await store.image('localhost/committed:1'))!;
      const config = JSON.parse((await store.imageBigData(img.id, `sha256:${img.id}`)).toString()) as { rootfs: { diff_ids: string[] } };
      expect(config.rootfs.diff_ids.at(-1)).toBe(sha256(tar));
      const exported = await readAll(await store.exportLayer(img.topLayer!));
      expect(exported.equals(tar)).toBe(true);
      const top = (await store.layers()).find((l) => l.id === img.topLayer)!;
      expect(top.diffDigest).toBe(sha256(tar));
      expect(top.parent).toBe((await store.image(imageId))!.topLayer);
      // By default the manifest names the uncompressed tar, as podman commit's does, and the tar is not kept in the
      // blob cache (a push compresses the layer from its tar-split rather than upload a cached tar as it is).
      const manifest = JSON.parse((await store.imageBigData(img.id, 'manifest')).toString()) as { layers: { digest: string; mediaType: string; size: number }[] };
      const last = manifest.layers.at(-1)!;
      expect(last).toEqual({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(tar), size: tar.length });
      expect(top.compressedDigest).toBe(last.digest);
      expect(fs.existsSync(path.join(store.config.blobCache, 'sha256', last.digest.slice(7)))).toBe(false);
    });
  }, T);

  it("stores a stopped container's layer streamed again from its upper directory, or from a stored tar where no FIFO can be made: the same layer", async () => {
    const id = await changedContainer(pm, 'streamed');
    await withStore(pm, async (store) => {
      // its own change too: the same changes in the same second would give the layer an earlier test committed
      fs.writeFileSync(path.join(await mountContainer(store, id), 'streamed-only'), `${id}\n`);
      await unmountContainer(store, id);
      const tar = await store.withLayerDiff((await store.container(id))!.layer, readAll);
      const tmp = process.env.TMPDIR;
      try {
        for (const where of [path.join(work, 'no-such-dir'), tmp]) {
          if (where === undefined) delete process.env.TMPDIR;
          else process.env.TMPDIR = where;
          const r = await commit(store, id, 'localhost/streamed:1');
          expect(r.layer.diffID).toBe(sha256(tar));
          expect((await readAll(await store.exportLayer(r.layer.id))).equals(tar)).toBe(true);
          await store.removeImage(r.id);
          expect((await store.layers()).some((l) => l.id === r.layer.id)).toBe(false);
        }
      } finally {
        if (tmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = tmp;
      }
    });
  }, T);

  it("names the uncompressed tar in the manifest by default, as podman commit does (OCI and Docker formats)", async () => {
    const cid = pm.run(['create', imageId]).trim();
    fs.writeFileSync(path.join(pm.run(['mount', cid]).trim(), 'etc/podman-made.conf'), 'by podman\n');
    pm.run(['unmount', cid]);
    for (const format of ['oci', 'docker']) {
      const theirsId = pm.run(['commit', '-q', '-f', format, cid, `localhost/shape-podman-${format}:1`]).trim();
      const oursId = ok(carrier(['commit', '-q', '-f', format, cid, `localhost/shape-carrier-${format}:1`])).trim();
      await withStore(pm, async (store) => {
        const manifestOf = async (id: string): Promise<{ mediaType: string; layers: { mediaType: string; digest: string; size: number }[] }> =>
          JSON.parse((await store.imageBigData(id, 'manifest')).toString());
        const theirs = await manifestOf(theirsId);
        const ours = await manifestOf(oursId);
        expect(ours.mediaType).toBe(theirs.mediaType);
        const top = (id: string): Promise<{ compressedDigest?: string; diffDigest?: string; compressedSize?: number; diffSize?: number }> =>
          store.image(id).then(async (img) => (await store.layers()).find((l) => l.id === img!.topLayer)!);
        for (const [m, id] of [[theirs, theirsId], [ours, oursId]] as const) {
          const last = m.layers.at(-1)!;
          expect(last.mediaType, format).toBe(format === 'oci' ? 'application/vnd.oci.image.layer.v1.tar' : 'application/vnd.docker.image.rootfs.diff.tar');
          const layer = await top(id);
          expect(last.digest).toBe(layer.diffDigest);
          expect(layer.compressedDigest).toBe(layer.diffDigest);
          expect(last.size).toBe(layer.diffSize);
        }
        // The same change gives the same tar, so the same diff_id and storage layer as podman's commit.
        expect(ours.layers.at(-1)!.digest).toBe(theirs.layers.at(-1)!.digest);
        expect((await store.image(oursId))!.topLayer).toBe((await store.image(theirsId))!.topLayer);
      });
    }
  }, T);

  it('pushes a committed layer gzip-compressed by default, as podman push does, and podman pulls the same image id', async () => {
    const reg = await startRegistry();
    try {
      await withStore(pm, async (store) => {
        const img = (await store.image('localhost/committed:1'))!;
        const tar = await readAll(await store.exportLayer(img.topLayer!));
        const r = await push(store, 'localhost/committed:1', `${reg.host}/committed:1`, { tlsVerify: false });
        expect(r.layers.at(-1)!.state).toBe('recompressed');
        const got = await storedImage(reg, 'committed', '1');
        const doc = JSON.parse(got.manifest.toString()) as { layers: { mediaType: string; digest: string }[] };
        expect(doc.layers.at(-1)!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
        const blob = got.layers.at(-1)!.blob;
        expect(sha256(blob)).toBe(doc.layers.at(-1)!.digest);
        expect(zlib.gunzipSync(blob).equals(tar)).toBe(true);
      });
      const puller = new Podman(path.join(work, 'puller'));
      try {
        puller.run(['pull', '-q', '--tls-verify=false', `${reg.host}/committed:1`]);
        expect(puller.inspect(`${reg.host}/committed:1`).Id).toBe(pm.inspect('localhost/committed:1').Id);
      } finally {
        puller.reset();
      }
    } finally {
      await reg.stop();
    }
  }, T);

  it('pushes a layer committed with --compression-format gzip as the blob it was committed as (from the blob cache)', async () => {
    const dir = path.join(work, 'pushed');
    ok(carrier(['commit', '-q', '--compression-format', 'gzip', 'changed', 'localhost/committed-gzip:1']));
    await withStore(pm, async (store) => {
      const manifest = JSON.parse((await store.imageBigData((await store.image('localhost/committed-gzip:1'))!.id, 'manifest')).toString()) as { layers: { digest: string; mediaType: string }[] };
      expect(manifest.layers.at(-1)!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
      await push(store, 'localhost/committed-gzip:1', `oci:${dir}:committed`);
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      const pushed = JSON.parse(fs.readFileSync(path.join(dir, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
      const committed = manifest.layers.at(-1)!.digest;
      expect(pushed.layers.at(-1)!.digest).toBe(committed);
      expect(fs.readFileSync(path.join(dir, 'blobs/sha256', committed.slice(7))).equals(fs.readFileSync(path.join(store.config.blobCache, 'sha256', committed.slice(7))))).toBe(true);
    });
  }, T);

  it('saves with podman and with carrier save, and both load back into another store under the same id', () => {
    const saved = path.join(work, 'committed.tar');
    pm.save(saved, ['localhost/committed:1']);
    const ours = path.join(work, 'committed-carrier.tar');
    ok(carrier(['save', '-o', ours, 'localhost/committed:1']));
    for (const [name, archive] of [['other', saved], ['other-carrier', ours]] as const) {
      const other = new Podman(path.join(work, name));
      try {
        other.load(archive);
        expect(other.inspect('localhost/committed:1').Id, name).toBe(pm.inspect('localhost/committed:1').Id);
      } finally {
        other.reset();
      }
    }
  }, T);

  it('gives the same settings as podman commit for every --change instruction, and -a in the history', () => {
    const changes = [
      'CMD ["/bin/echo", "json", "form"]',
      'ENTRYPOINT /bin/entry --shell form',
      'ENV A=1',
      'ENV "QUOTED"="value with spaces"',
      'ENV PATH=/opt/bin:/usr/bin',
      'WORKDIR /srv',
      'WORKDIR app',
      'LABEL carrier.test=changed',
      'LABEL "quoted"="label"',
      'EXPOSE 8080',
      'EXPOSE 53/udp',
      'USER 1000:1000',
      'VOLUME /data /cache',
      'VOLUME ["/json/vol"]',
      'STOPSIGNAL SIGINT',
    ];
    const flags = [...changes.flatMap((c) => ['--change', c]), '-a', 'A. Uthor <a@example.com>'];
    const cid = pm.run(['create', imageId]).trim();
    pm.run(['commit', '-q', ...flags, cid, 'localhost/by-podman:1']);
    ok(carrier(['commit', '-q', ...flags, cid, 'localhost/by-carrier:1']));
    const theirs = configOf(pm, 'localhost/by-podman:1');
    const ours = configOf(pm, 'localhost/by-carrier:1');
    // podman adds its own runtime variables to a container's environment; the rest is the same, in the same order.
    const runtimeVars = (env: string[]): string[] => env.filter((e) => e !== 'TERM=xterm' && e !== 'container=podman');
    expect({ ...ours.config, Env: runtimeVars(ours.config.Env) }).toEqual({ ...theirs.config, Env: runtimeVars(theirs.config.Env) });
    expect(Object.keys(ours.config)).toEqual(Object.keys(theirs.config));
    expect(ours.config.WorkingDir).toBe('/srv/app');
    expect(ours.author).toBe(theirs.author);
    const strip = (h: Record<string, unknown>): Record<string, unknown> => ({ ...h, created: undefined });
    expect(ours.history.map(strip)).toEqual(theirs.history.map(strip));
    expect(ours.history.at(-1)).toMatchObject({ author: 'A. Uthor <a@example.com>', created_by: '/bin/sh', comment: `FROM localhost/committest:1` });
    expect(Object.keys(ours)).toEqual(Object.keys(theirs));
  }, T);

  it('writes a Docker schema 2 image with --format docker, -m as its comment, as podman does', () => {
    // A container podman made with the image's command: podman keeps a command given at create in its database.
    const cid = pm.run(['create', imageId]).trim();
    const flags = ['-f', 'docker', '-m', 'a message', '-a', 'someone', '--change', 'EXPOSE 80', '--change', 'ONBUILD RUN true'];
    pm.run(['commit', '-q', ...flags, cid, 'localhost/docker-podman:1']);
    ok(carrier(['commit', '-q', ...flags, cid, 'localhost/docker-carrier:1']));
    const manifest = JSON.parse(skopeoRaw(storageRef(pm, 'localhost/docker-carrier:1')).toString()) as Record<string, any>;
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(manifest.layers.at(-1).mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar');
    const theirs = configOf(pm, 'localhost/docker-podman:1');
    const ours = configOf(pm, 'localhost/docker-carrier:1');
    const runtimeVars = (c: Record<string, any>): Record<string, any> => ({ ...c, Env: (c.Env as string[]).filter((e) => e !== 'TERM=xterm' && e !== 'container=podman') });
    expect(Object.keys(ours)).toEqual(Object.keys(theirs));
    expect(runtimeVars(ours.config)).toEqual(runtimeVars(theirs.config));
    expect(runtimeVars(ours.container_config)).toEqual(runtimeVars(theirs.container_config));
    for (const key of ['comment', 'author', 'container', 'parent', 'architecture', 'os']) expect(ours[key], key).toBe(theirs[key]);
    expect(ours.comment).toBe('a message');
    const strip = (h: Record<string, unknown>): Record<string, unknown> => ({ ...h, created: undefined });
    expect(ours.history.map(strip)).toEqual(theirs.history.map(strip));
  }, T);

  it('refuses what podman refuses, leaving no image: an unknown container, -m with the OCI format, a bad --change', () => {
    const before = pm.images().map((i) => i.Id).sort();
    const unknown = carrier(['commit', 'no-such-container', 'localhost/never:1']);
    expect(unknown.status).toBe(125);
    expect(unknown.stderr).toContain('no container with name or ID "no-such-container" found');
    const message = carrier(['commit', '-m', 'hi', 'changed', 'localhost/never:1']);
    expect(message.status).toBe(125);
    expect(message.stderr).toContain('messages are only compatible with the docker image format (-f docker)');
    for (const bad of ['FROM alpine', 'EXPOSE 70000', 'LABEL nokey', 'WORKDIR', 'STOPSIGNAL NOPE']) {
      const r = carrier(['commit', '--change', bad, 'changed', 'localhost/never:1']);
      expect(r.status, bad).toBe(125);
      expect(r.stderr, bad).toContain(`invalid change "${bad}"`);
    }
    expect(pm.images().map((i) => i.Id).sort()).toEqual(before);
  }, T);

  it('commits without a name as a dangling image, and reads --change as podman 4.3 does', async () => {
    const iidfile = path.join(work, 'iid');
    const newId = ok(carrier(['commit', '--iidfile', iidfile, 'changed'])).trim();
    expect(fs.readFileSync(iidfile, 'utf8')).toBe(newId);
    expect(pm.run(['images', '--filter', 'dangling=true', '--format', '{{.ID}}', '--no-trunc'])).toContain(newId);
    expect(pm.run(['image', 'inspect', '--format', '{{.Created}}', newId])).not.toContain('0001-01-01');
    expect(parseChanges(['CMD echo hi', 'ENTRYPOINT ', 'ENV K', 'ENV K V', 'cmd=["a"]'])).toMatchObject({ cmd: ['a'], env: ['K=', 'K V='] });
    expect(parseChanges(['ENTRYPOINT []']).entrypoint).toEqual([]);
    expect(parseChanges(['CMD echo hi']).cmd).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(parseChanges(['WORKDIR /a/', 'WORKDIR ../b']).workingDir).toBe('/b');
    expect(parseChanges(['STOPSIGNAL 9', 'STOPSIGNAL term']).stopSignal).toBe('15');
  }, T);

  it('compresses the new layer with zstd under --compression-format zstd, and refuses a format it does not know', () => {
    const bad = carrier(['commit', '--compression-format', 'lz4', 'changed', 'localhost/never:1']);
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain('--compression-format must be none, gzip, zstd or zstd:chunked');
    ok(carrier(['commit', '-q', '--compression-format', 'zstd', 'changed', 'localhost/zstd-layer:1']));
    const manifest = JSON.parse(skopeoRaw(storageRef(pm, 'localhost/zstd-layer:1')).toString()) as Record<string, any>;
    expect(manifest.layers.at(-1).mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
  }, T);

  it("bakes a Carrier container's own command, environment and working directory into the image", async () => {
    const result = await withStore(pm, async (store) => {
      const c = await createContainer(store, imageId, { name: 'configured', cmd: ['/bin/run', 'x'], env: ['MODE=prod'], workdir: '/work', user: '7' });
      return commit(store, c.id, 'localhost/configured:1', { blobCacheDir: path.join(work, 'cache'), compression: 'zstd' });
    });
    const config = configOf(pm, 'localhost/configured:1');
    expect(config.config).toMatchObject({ Cmd: ['/bin/run', 'x'], Env: ['PATH=/usr/bin:/bin', 'MODE=prod'], WorkingDir: '/work', User: '7' });
    const manifest = JSON.parse(skopeoRaw(storageRef(pm, 'localhost/configured:1')).toString()) as { layers: { mediaType: string; digest: string }[] };
    expect(manifest.layers.at(-1)).toMatchObject({ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: result.layer.digest });
    expect(pm.inspect('localhost/configured:1').Id).toBe(result.id);
  }, T);
});

describe('commit on a vfs store', () => {
  it("makes an image podman sees with the container's changes, its layer exported byte for byte", async () => {
    const vfs = new Podman(path.join(work, 'vfs'), 'vfs');
    try {
      vfs.load(archive);
      const id = await changedContainer(vfs, 'vfs-changed', 'localhost/committest:1');
      const newId = ok(carrier(['commit', '-q', 'vfs-changed', 'localhost/vfs-committed:1'], vfs)).trim();
      expect(vfs.inspect('localhost/vfs-committed:1').Id).toBe(newId);
      const sorted = (s: string): string[] => s.split('\n').filter(Boolean).sort();
      const ours = ok(carrier(['diff', id], vfs));
      expect(sorted(vfs.run(['diff', 'localhost/vfs-committed:1']))).toEqual(sorted(ours));
      expect(sorted(ours)).toContain('A /newdir/attr');
      // vfs's diff gives a whiteout the time it is made (as containers/storage's does), so the tar of one commit is
      // not the next diff's: the layer exports as the blob that was committed, whose tar hashes to the new diff_id.
      await withStore(vfs, async (store) => {
        const img = (await store.image(newId))!;
        const exported = await readAll(await store.exportLayer(img.topLayer!));
        const manifest = JSON.parse((await store.imageBigData(img.id, 'manifest')).toString()) as { layers: { digest: string }[] };
        expect(manifest.layers.at(-1)!.digest).toBe(sha256(exported));
        const config = JSON.parse((await store.imageBigData(img.id, `sha256:${img.id}`)).toString()) as { rootfs: { diff_ids: string[] } };
        expect(sha256(exported)).toBe(config.rootfs.diff_ids.at(-1));
      });
      const root = vfs.run(['image', 'mount', 'localhost/vfs-committed:1']).trim();
      try {
        expect(fs.readFileSync(path.join(root, 'data/opaque/again.txt'), 'utf8')).toContain('a new directory');
        expect(fs.existsSync(path.join(root, 'data/opaque/old.txt'))).toBe(false);
        expect(fs.existsSync(path.join(root, 'top/readme'))).toBe(false);
      } finally {
        vfs.run(['image', 'unmount', 'localhost/vfs-committed:1']);
      }
    } finally {
      vfs.reset();
    }
  }, T);
});

describe('commit of a running container, and a cancelled commit', () => {
  it('pauses a running container with --pause, commits what it wrote, and leaves it running', async () => {
    requireBusybox();
    const dir = path.join(work, 'running');
    const own = new Podman(dir); // a store of its own (podman is not used)
    await withStore(own, (store) => store.commitImage(commitOf(buildRunnableImage(path.join(dir, 'oci')), ['localhost/runnable:1'])));
    const child = spawn(process.execPath, [CLI, '--root', own.root, '--runroot', own.runroot, 'run', '--name', 'busy', 'localhost/runnable:1', 'sh', '-c', 'echo data > /written; echo ready; sleep 60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve()));
      const r = carrier(['commit', '--pause', 'busy', 'localhost/from-running:1'], own);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain('Writing manifest to image destination');
      const changes = await withStore(own, (store) => diff(store, 'localhost/from-running:1'));
      expect(changes.changes).toContainEqual({ kind: 'A', path: '/written' });
      const ps = carrier(['ps'], own);
      expect(ps.stdout).toMatch(/Up .+busy\n$/);
    } finally {
      carrier(['rm', '-f', 'busy'], own);
      await exited;
    }
  }, T);

  it('leaves no image, no layer and no blob behind when cancelled', async () => {
    const cache = path.join(work, 'cancel-cache');
    await withStore(pm, async (store) => {
      const images = (await store.images()).map((i) => i.id).sort();
      const layers = (await store.layers()).map((l) => l.id).sort();
      const abort = new AbortController();
      abort.abort();
      await expect(commit(store, 'changed', 'localhost/cancelled:1', { blobCacheDir: cache, signal: abort.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
      expect((await store.images()).map((i) => i.id).sort()).toEqual(images);
      expect((await store.layers()).map((l) => l.id).sort()).toEqual(layers);
      expect(fs.readdirSync(path.join(cache, 'sha256'))).toEqual([]);
    });
  }, T);
});

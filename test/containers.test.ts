// Containers through the API: records podman understands, Carrier's run configuration, the OCI config generated
// from an image, user/env/path resolution inside a root file system, volumes, and runtime error classification.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store/store.js';
import {
  createContainer,
  inspectContainer,
  listContainers,
  parseVolumeSpec,
  pruneVolumes,
  removeContainer,
  removeVolume,
  volumeUsers,
} from '../src/containers/containers.js';
import { createVolume, inspectVolume, listVolumes } from '../src/containers/volumes.js';
import { generateSpec, mergeEnv, processArgs, DEFAULT_CAPABILITIES } from '../src/runtime/spec.js';
import { resolveInRoot, resolveUser } from '../src/runtime/rootfs.js';
import { classifyRuntimeError } from '../src/runtime/runtime.js';
import { subIdRanges } from '../src/runtime/userns.js';
import { buildRunnableImage } from './support/runnable.js';
import { commitOf, storeDirs, readJson } from './support/store.js';
import type { TestImage } from './support/images.js';

let work: string;
let store: Store;
let image: TestImage;
const NAME = 'localhost/runnable:1';

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-containers-'));
  image = buildRunnableImage(path.join(work, 'oci'));
  store = await Store.open(storeDirs(work));
  await store.commitImage(commitOf(image, [NAME]));
});

afterAll(async () => {
  await store?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('createContainer', () => {
  it('records the container as podman does and keeps the run configuration in userdata/carrier.json', async () => {
    const before = Math.floor(Date.now() / 1000);
    const c = await createContainer(store, 'runnable:1', { name: 'first', cmd: ['echo', 'hi'], env: ['A=1'], workdir: '/tmp', user: 'app', volumes: ['data:/data/v:ro'], tmpfs: ['/scratch'] });
    expect(c.name).toBe('first');
    expect(c.image).toBe(image.configDigest.slice(7));
    expect(c.imageName).toBe(NAME);
    expect(c.state.status).toBe('created');
    expect(c.command).toEqual(['echo', 'hi']);

    const records = readJson<{ id: string; names: string[]; image: string; layer: string; metadata: string }[]>(
      path.join(store.graphroot, 'overlay-containers/containers.json'),
    );
    const rec = records.find((r) => r.id === c.id)!;
    expect(rec.names).toEqual(['first']);
    const meta = JSON.parse(rec.metadata) as Record<string, unknown>;
    expect(Object.keys(meta)).toEqual(['image-name', 'image-id', 'name', 'created-at']);
    expect(meta['image-name']).toBe(NAME);
    expect(meta['image-id']).toBe(image.configDigest.slice(7));
    expect(meta.name).toBe('first');
    expect(meta['created-at']).toBeGreaterThanOrEqual(before);
    expect(Number.isInteger(meta['created-at'])).toBe(true);

    const file = readJson<{ version: number; config: Record<string, unknown>; state: { status: string } }>(
      path.join(store.graphroot, 'overlay-containers', c.id, 'userdata/carrier.json'),
    );
    expect(file.version).toBe(1);
    expect(file.config).toMatchObject({ name: 'first', cmd: ['echo', 'hi'], env: ['A=1'], workdir: '/tmp', user: 'app', tmpfs: ['/scratch'] });
    expect(file.config.volumes).toEqual([{ source: 'data', destination: '/data/v', readOnly: true }]);
    // The container's own layer sits on the image's top layer.
    const layers = readJson<{ id: string; parent?: string }[]>(path.join(store.graphroot, 'overlay-layers/layers.json'));
    const top = store.layerDiffPath(rec.layer);
    expect(fs.readdirSync(top)).toEqual([]);
    expect(layers.find((l) => l.id === rec.layer)!.parent).toBe((await store.requireImage(NAME)).topLayer);

    const again = await inspectContainer(store, 'first');
    expect(again.id).toBe(c.id);
    expect((await listContainers(store)).map((x) => x.name)).toContain('first');
    await removeContainer(store, 'first');
    expect(await store.container(c.id)).toBeUndefined();
    expect(fs.existsSync(path.join(store.graphroot, 'overlay-containers', c.id))).toBe(false);
    expect(fs.existsSync(path.dirname(top))).toBe(false);
  });

  it('gives a random name, refuses a taken name, an unknown image and a missing bind source', async () => {
    const a = await createContainer(store, NAME);
    expect(a.name).toMatch(/^[a-z]+_[a-z]+_[0-9a-f]{2}$/);
    await createContainer(store, NAME, { name: 'taken' });
    await expect(createContainer(store, NAME, { name: 'taken' })).rejects.toMatchObject({ code: 'CARRIER_EXISTS' });
    await expect(createContainer(store, 'nosuch:1')).rejects.toMatchObject({ code: 'CARRIER_NOT_FOUND' });
    await expect(createContainer(store, NAME, { volumes: ['/no/such/dir:/x'] })).rejects.toMatchObject({ code: 'CARRIER_NOT_FOUND' });
    await expect(createContainer(store, NAME, { name: 'bad name' })).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    await removeContainer(store, a.id);
    await removeContainer(store, 'taken');
  });
});

describe('volumes', () => {
  it('creates, lists, inspects, refuses to remove one in use, and prunes unused ones', async () => {
    const v = await createVolume(store, 'vol1', { labels: { a: 'b' } });
    expect(v.mountpoint).toBe(path.join(store.graphroot, 'volumes/vol1/_data'));
    expect(fs.statSync(v.mountpoint).isDirectory()).toBe(true);
    await expect(createVolume(store, 'vol1')).rejects.toMatchObject({ code: 'CARRIER_EXISTS' });
    await expect(createVolume(store, '../evil')).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    expect((await inspectVolume(store, 'vol1')).labels).toEqual({ a: 'b' });
    // A podman-made volume (no Carrier record) is listed too.
    fs.mkdirSync(path.join(store.graphroot, 'volumes/frompodman/_data'), { recursive: true });
    expect((await listVolumes(store)).map((x) => [x.name, x.origin])).toEqual([
      ['frompodman', 'external'],
      ['vol1', 'carrier'],
    ]);
    const c = await createContainer(store, NAME, { volumes: ['vol1:/v'] });
    expect((await volumeUsers(store)).get('vol1')).toEqual([c.id]);
    await expect(removeVolume(store, 'vol1')).rejects.toMatchObject({ code: 'CARRIER_IN_USE' });
    expect(await pruneVolumes(store)).toEqual(['frompodman']);
    await removeContainer(store, c.id);
    expect(await pruneVolumes(store)).toEqual(['vol1']);
    expect(await listVolumes(store)).toEqual([]);
  });

  it('parses -v specs', () => {
    expect(parseVolumeSpec('/host:/ctr')).toEqual({ source: '/host', destination: '/ctr' });
    expect(parseVolumeSpec('name:/ctr:ro')).toEqual({ source: 'name', destination: '/ctr', readOnly: true });
    expect(parseVolumeSpec('name:/ctr:rw,z')).toEqual({ source: 'name', destination: '/ctr' });
    expect(parseVolumeSpec('/anon')).toEqual({ destination: '/anon' });
    expect(() => parseVolumeSpec('name:relative')).toThrow(/absolute/);
    expect(() => parseVolumeSpec('a b:/x')).toThrow(/neither/);
    expect(() => parseVolumeSpec('/a:/b:bogus')).toThrow(/unknown option/);
  });
});

describe('the OCI runtime config', () => {
  let root: string;
  beforeAll(() => {
    root = path.join(work, 'rootfs');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:app,other\napp:x:1001:\nwheel:x:10:app\n');
    // An absolute symlink must resolve inside the root, never on the host.
    fs.mkdirSync(path.join(root, 'evil'));
    fs.symlinkSync('/etc/shadow', path.join(root, 'evil/shadow'));
    fs.symlinkSync('../../../../../../etc', path.join(root, 'evil/up'));
  });

  it('resolves users by name and number from the image, with supplementary groups', async () => {
    expect(await resolveUser(root, 'app')).toEqual({ uid: 1000, gid: 1001, additionalGids: [50, 10], home: '/home/app', name: 'app' });
    expect(await resolveUser(root, '1000')).toMatchObject({ uid: 1000, gid: 1001, home: '/home/app' });
    expect(await resolveUser(root, 'app:staff')).toEqual({ uid: 1000, gid: 50, additionalGids: [], home: '/home/app', name: 'app' });
    expect(await resolveUser(root, '4242:77')).toEqual({ uid: 4242, gid: 77, additionalGids: [], home: '/' });
    expect(await resolveUser(root, undefined)).toMatchObject({ uid: 0, gid: 0, home: '/root' });
    await expect(resolveUser(root, 'ghost')).rejects.toThrow(/unable to find user ghost/);
    await expect(resolveUser(root, 'app:ghosts')).rejects.toThrow(/unable to find group ghosts/);
  });

  it('keeps symlinks inside the root', async () => {
    expect(await resolveInRoot(root, '/evil/shadow')).toBe(path.join(root, 'etc/shadow'));
    expect(await resolveInRoot(root, '/evil/up/passwd')).toBe(path.join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/../../x')).toBe(path.join(root, 'x'));
  });

  it('merges Entrypoint/Cmd, Env, WorkingDir and User with the flags', async () => {
    const image = { Entrypoint: ['/ep'], Cmd: ['a', 'b'], Env: ['PATH=/bin', 'X=1'], WorkingDir: '/w', User: 'app' };
    expect(processArgs(image)).toEqual(['/ep', 'a', 'b']);
    expect(processArgs(image, ['c'])).toEqual(['/ep', 'c']);
    expect(processArgs(image, undefined, ['/other'])).toEqual(['/other']);
    expect(() => processArgs({})).toThrow(/no command/);
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C', 'D=x=y'], { C: 'host' })).toEqual(['A=1', 'B=3', 'C=host', 'D=x=y']);

    const { spec, user } = await generateSpec({
      rootfs: root,
      id: 'f'.repeat(64),
      image,
      env: ['X=2', 'NEW=v'],
      mounts: [
        { type: 'bind', source: '/srv', destination: '/data', readOnly: true },
        { type: 'tmpfs', destination: '/dev/shm' },
      ],
      hardLimits: { nofile: 4096, nproc: Infinity },
    });
    expect(user.uid).toBe(1000);
    expect(spec.process.args).toEqual(['/ep', 'a', 'b']);
    expect(spec.process.cwd).toBe('/w');
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1001, umask: 0o022, additionalGids: [50, 10] });
    expect(spec.process.env).toEqual(['PATH=/bin', 'X=2', 'NEW=v', 'TERM=xterm', 'container=carrier', `HOSTNAME=${'f'.repeat(12)}`, 'HOME=/home/app']);
    expect(spec.hostname).toBe('f'.repeat(12));
    expect(spec.process.noNewPrivileges).toBe(true);
    // Non-root: podman's capabilities stay in the bounding set only.
    expect(spec.process.capabilities!.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect(spec.process.capabilities!.effective).toEqual([]);
    // Limits never above the hard limits (runc would fail with EPERM).
    expect(spec.process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 4096, hard: 4096 },
      { type: 'RLIMIT_NPROC', soft: 32768, hard: 32768 },
    ]);
    expect(spec.mounts.map((m) => [m.destination, m.type])).toEqual([
      ['/proc', 'proc'],
      ['/dev', 'tmpfs'],
      ['/dev/pts', 'devpts'],
      ['/dev/mqueue', 'mqueue'],
      ['/sys', 'sysfs'],
      ['/data', 'bind'],
      ['/dev/shm', 'tmpfs'],
    ]);
    expect(spec.mounts.find((m) => m.destination === '/data')!.options).toContain('ro');
    expect(spec.mounts.find((m) => m.destination === '/sys')!.options).toContain('ro');
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.linux.namespaces.every((n) => n.path === undefined)).toBe(true);
    expect(spec.linux).not.toHaveProperty('resources');
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');

    const rootless = await generateSpec({
      rootfs: root,
      id: 'e'.repeat(64),
      image: { Cmd: ['sh'] },
      singleIdMapping: true,
      userNamespace: { uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] },
    });
    expect(rootless.spec.linux.namespaces.map((n) => n.type)).toContain('user');
    expect(rootless.spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 1000, size: 1 }]);
    expect(rootless.spec.mounts.find((m) => m.type === 'devpts')!.options).not.toContain('gid=5');
    expect(rootless.spec.process.capabilities!.effective).toEqual(DEFAULT_CAPABILITIES);
  });

  it('sorts runtime failures into podman exit codes', () => {
    expect(classifyRuntimeError('runc run failed: unable to start container process: exec: "x": executable file not found in $PATH')).toBe('not-found');
    expect(classifyRuntimeError('runc run failed: unable to start container process: exec: "/x": stat /x: no such file or directory')).toBe('not-found');
    expect(classifyRuntimeError('runc run failed: unable to start container process: exec: "/etc/passwd": permission denied')).toBe('cannot-invoke');
    expect(classifyRuntimeError('crun: cannot set up cgroup: hybrid cgroup hierarchy not supported')).toBe('cgroups');
    expect(classifyRuntimeError('runc run failed: something else')).toBe('runtime');
  });

  it('reads subordinate id ranges by name or uid', () => {
    const f = path.join(work, 'subuid');
    fs.writeFileSync(f, 'alice:100000:65536\n1001:300000:1000\nbob:x:y\n');
    expect(subIdRanges('uid', { name: 'alice', id: 1000 }, f)).toEqual([{ start: 100000, count: 65536 }]);
    expect(subIdRanges('uid', { name: 'carol', id: 1001 }, f)).toEqual([{ start: 300000, count: 1000 }]);
    expect(subIdRanges('uid', { name: 'bob', id: 5 }, f)).toEqual([]);
  });
});

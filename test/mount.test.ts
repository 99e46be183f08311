// Overlay mounts for real (root): the new mount API, mount(2) with relative l/ paths, fuse-overlayfs; and the
// fsopen path as a real unprivileged user inside `unshare --user --map-root-user --mount`.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OverlayDriver } from '../src/drivers/overlay.js';
import { findMount, isMounted, mountOverlay, overlaySupport, unmountOverlay, type OverlayMountMethod } from '../src/drivers/mount.js';
import { Store } from '../src/store/store.js';
import { buildTestImage } from './support/images.js';
import { commitOf, storeDirs } from './support/store.js';

const DIST_MOUNT = path.resolve(__dirname, '../dist/drivers/mount.js');

type Entry =
  | { file: string; content: string }
  | { dir: string; opaque?: 'trusted' | 'user' }
  | { whiteout: string };

const hexId = (): string => randomBytes(32).toString('hex');

function fill(diff: string, entries: Entry[]): void {
  for (const e of entries) {
    if ('file' in e) {
      fs.mkdirSync(path.dirname(path.join(diff, e.file)), { recursive: true });
      fs.writeFileSync(path.join(diff, e.file), e.content);
    } else if ('dir' in e) {
      fs.mkdirSync(path.join(diff, e.dir), { recursive: true });
      if (e.opaque) execFileSync('setfattr', ['-n', `${e.opaque}.overlay.opaque`, '-v', 'y', path.join(diff, e.dir)]);
    } else {
      fs.mkdirSync(path.dirname(path.join(diff, e.whiteout)), { recursive: true });
      execFileSync('mknod', ['-m', '000', path.join(diff, e.whiteout), 'c', '0', '0']);
    }
  }
}

/** Image layers in the overlay layout (base first in `layers`), plus a container layer on top with its `lower` file. */
async function makeStack(home: string, layers: Entry[][]): Promise<{ driver: OverlayDriver; ids: string[]; container: string }> {
  const driver = new OverlayDriver(home);
  await driver.init();
  const ids: string[] = [];
  for (const entries of layers) {
    const id = hexId();
    await driver.create(id, ids.at(-1));
    fill(driver.paths(id).diff, entries);
    ids.push(id);
  }
  const container = hexId();
  await driver.create(container, ids.at(-1));
  return { driver, ids, container };
}

async function specOf(driver: OverlayDriver, container: string) {
  const p = driver.paths(container);
  return { lowerdirs: await driver.lowerDirs(container), upperdir: p.diff, workdir: p.work, target: p.merged };
}

/** Every path under `dir` with its kind, for before/after comparisons of image layers. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else if (st.isFile()) out.push(`${r} ${fs.readFileSync(p, 'utf8')}`);
      else out.push(`${r} special ${st.rdev}`);
    }
  };
  walk(dir, '');
  return out;
}

const whiteoutLayers = (opaque: 'trusted' | 'user'): Entry[][] => [
  [
    { file: 'etc/hostname', content: 'base\n' },
    { file: 'data/gone.txt', content: 'removed by layer 2\n' },
    { file: 'data/kept.txt', content: 'kept\n' },
    { file: 'data/opaque/old.txt', content: 'hidden by the opaque dir\n' },
    { file: 'data/gone-dir/sub/deep.txt', content: 'whole dir removed\n' },
  ],
  [
    { whiteout: 'data/gone.txt' },
    { whiteout: 'data/gone-dir' },
    { dir: 'data/opaque', opaque },
    { file: 'data/opaque/new.txt', content: 'new in layer 2\n' },
  ],
  [{ file: 'top/readme', content: 'top\n' }],
];

let work: string;
const mounted: string[] = [];

async function mount(spec: Parameters<typeof mountOverlay>[0], opts: Parameters<typeof mountOverlay>[1]) {
  const r = await mountOverlay(spec, opts);
  mounted.push(spec.target);
  return r;
}

beforeAll(() => {
  expect(process.geteuid?.(), 'the mount tests run as root').toBe(0);
  work = fs.mkdtempSync(path.join(tmpdir(), 'carrier-mount-'));
});

afterEach(async () => {
  for (const t of mounted.splice(0).reverse()) {
    if (await findMount(t)) await unmountOverlay(t, { lazy: true }).catch(() => {});
  }
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function freshHome(name: string): string {
  const home = path.join(work, name, 'overlay');
  fs.mkdirSync(home, { recursive: true });
  return home;
}

describe('overlaySupport', () => {
  it('detects the new mount API, lowerdir+, userxattr and fuse-overlayfs, once', async () => {
    const s = await overlaySupport();
    expect(s).toEqual({ fsopen: true, lowerdirPlus: true, userxattr: true, fuseOverlayfs: '/usr/bin/fuse-overlayfs' });
    expect(await overlaySupport()).toBe(s);
  });
});

describe.each<OverlayMountMethod>(['fsopen', 'mount', 'fuse'])('mounting with %s', (method) => {
  it('hides lower whiteouts and opaque contents; writes land in the upper dir only', async () => {
    const home = freshHome(`wh-${method}`);
    const { driver, ids, container } = await makeStack(home, whiteoutLayers('trusted'));
    const before = ids.map((id) => listing(driver.paths(id).diff));
    const spec = await specOf(driver, container);
    expect(spec.lowerdirs.map((l) => path.relative(home, l).slice(0, 2))).toEqual(['l/', 'l/', 'l/']);

    expect(await isMounted(spec.target)).toBe(false);
    expect(await mount(spec, { method })).toEqual({ method });
    const m = spec.target;
    expect((await findMount(m))?.fstype).toBe(method === 'fuse' ? 'fuse.fuse-overlayfs' : 'overlay');
    expect(await isMounted(m)).toBe(true);
    expect(fs.readdirSync(path.join(m, 'data')).sort()).toEqual(['kept.txt', 'opaque']);
    expect(fs.readdirSync(path.join(m, 'data/opaque'))).toEqual(['new.txt']);
    expect(fs.existsSync(path.join(m, 'data/gone-dir'))).toBe(false);
    expect(fs.readFileSync(path.join(m, 'top/readme'), 'utf8')).toBe('top\n');
    expect(fs.readFileSync(path.join(m, 'etc/hostname'), 'utf8')).toBe('base\n');

    fs.writeFileSync(path.join(m, 'etc/hostname'), 'changed\n');
    fs.writeFileSync(path.join(m, 'new-file'), 'written through the mount\n');
    fs.rmSync(path.join(m, 'data/kept.txt'));
    fs.rmSync(path.join(m, 'data/opaque'), { recursive: true });
    expect(fs.readdirSync(path.join(m, 'data'))).toEqual([]);

    await unmountOverlay(m);
    expect(await findMount(m)).toBeUndefined();
    expect(await isMounted(m)).toBe(false);
    expect(ids.map((id) => listing(driver.paths(id).diff))).toEqual(before);
    const upper = spec.upperdir;
    expect(fs.readFileSync(path.join(upper, 'etc/hostname'), 'utf8')).toBe('changed\n');
    expect(fs.readFileSync(path.join(upper, 'new-file'), 'utf8')).toBe('written through the mount\n');
    const data = fs.readdirSync(path.join(upper, 'data')).sort();
    if (data.includes('kept.txt')) {
      const wh = fs.lstatSync(path.join(upper, 'data/kept.txt'));
      expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    } else {
      expect(data).toContain('.wh.kept.txt'); // fuse-overlayfs where it cannot mknod
    }

    // Mounted again, the container sees its own writes.
    await mount(spec, { method });
    expect(fs.readFileSync(path.join(m, 'etc/hostname'), 'utf8')).toBe('changed\n');
    expect(fs.existsSync(path.join(m, 'data/kept.txt'))).toBe(false);
    await unmountOverlay(m);
  });

  it('mounts read-only without an upper dir', async () => {
    const home = freshHome(`ro-${method}`);
    const { driver, ids } = await makeStack(home, whiteoutLayers('trusted'));
    const target = path.join(work, `ro-${method}-merged`);
    fs.mkdirSync(target);
    const lowerdirs = [...ids].reverse().map((id) => driver.paths(id).diff);
    await mount({ lowerdirs, target, readOnly: true }, { method });
    expect(fs.readdirSync(path.join(target, 'data')).sort()).toEqual(['kept.txt', 'opaque']);
    expect(() => fs.writeFileSync(path.join(target, 'x'), 'x')).toThrow(/EROFS|read-only/i);
    await unmountOverlay(target);
  });

  it('names a missing lower directory in the error', async () => {
    const home = freshHome(`missing-${method}`);
    const { driver, ids, container } = await makeStack(home, whiteoutLayers('trusted'));
    const spec = await specOf(driver, container);
    const missing = path.join(home, 'l', 'NOSUCHLAYERNOSUCHLAYERNOSU');
    spec.lowerdirs.splice(1, 0, missing);
    const err = await mountOverlay(spec, { method }).catch((e: unknown) => e as { code: string; message: string; path: string });
    expect(err).toMatchObject({ code: 'ENOENT', path: missing });
    expect(err.message).toContain(missing);
    expect(err.message).toContain(spec.target);
    expect(await findMount(spec.target)).toBeUndefined();
    expect(ids.length).toBe(3);
  });
});

describe('many layers', () => {
  const deep = async (name: string, n: number) => {
    const layers: Entry[][] = Array.from({ length: n }, (_, i) => [{ file: `layers/f${i}`, content: `${i}\n` }]);
    layers[0]!.push({ file: 'layers/shadowed', content: 'base\n' });
    layers[n - 1]!.push({ file: 'layers/shadowed', content: 'top\n' });
    return makeStack(freshHome(name), layers);
  };
  const expectAllVisible = (merged: string, n: number): void => {
    const names = fs.readdirSync(path.join(merged, 'layers'));
    expect(names.length).toBe(n + 1);
    for (let i = 0; i < n; i++) expect(fs.readFileSync(path.join(merged, 'layers', `f${i}`), 'utf8')).toBe(`${i}\n`);
    expect(fs.readFileSync(path.join(merged, 'layers/shadowed'), 'utf8')).toBe('top\n');
  };

  it.each([130, 300])('an image with %i layers mounts via fsopen (auto) and shows every layer', async (n) => {
    const { driver, container } = await deep(`deep-${n}`, n);
    const spec = await specOf(driver, container);
    expect(spec.lowerdirs.length).toBe(n);
    expect(await mount(spec, {})).toEqual({ method: 'fsopen' });
    expectAllVisible(spec.target, n);
    fs.writeFileSync(path.join(spec.target, 'layers/f0'), 'overwritten\n');
    await unmountOverlay(spec.target);
    expect(fs.readFileSync(path.join(driver.paths(container).diff, 'layers/f0'), 'utf8')).toBe('overwritten\n');
  });

  it('mount(2) fallback: 20 layers via relative l/ paths', async () => {
    const { driver, container } = await deep('legacy-20', 20);
    const spec = await specOf(driver, container);
    expect(await mount(spec, { method: 'mount' })).toEqual({ method: 'mount' });
    expectAllVisible(spec.target, 20);
    // The kernel shows the relative paths it was given: the option string stayed short.
    const m = await findMount(spec.target);
    expect(m?.options).toMatch(/lowerdir=l\/[A-Z2-7]{26}:l\//);
    await unmountOverlay(spec.target);
  });

  it('mount(2) fallback: diff/ paths are shortened through l/ links when the page would overflow', async () => {
    const { driver, ids, container } = await deep('legacy-diff', 100);
    const spec = await specOf(driver, container);
    spec.lowerdirs = [...ids].reverse().map((id) => driver.paths(id).diff);
    expect(spec.lowerdirs.join(':').length).toBeGreaterThan(4096);
    await mount(spec, { method: 'mount' });
    expectAllVisible(spec.target, 100);
    await unmountOverlay(spec.target);
  });

  it('mount(2) fallback refuses 300 layers with a clear message; fuse-overlayfs mounts them', async () => {
    const { driver, container } = await deep('legacy-300', 300);
    const spec = await specOf(driver, container);
    const err = await mountOverlay(spec, { method: 'mount' }).catch((e: unknown) => e as { code: string; message: string });
    expect(err.code).toBe('CARRIER_LIMIT_EXCEEDED');
    expect(err.message).toMatch(/300 lower layers is \d+ bytes, over the one-page limit/);
    expect(await findMount(spec.target)).toBeUndefined();
    expect(await mount(spec, { method: 'fuse' })).toEqual({ method: 'fuse' });
    expectAllVisible(spec.target, 300);
    await unmountOverlay(spec.target);
  });

  it('refuses more lowers than overlayfs allows', async () => {
    const lowerdirs = Array.from({ length: 501 }, (_, i) => `/nonexistent/${i}`);
    await expect(mountOverlay({ lowerdirs, target: '/nonexistent/t', readOnly: true })).rejects.toMatchObject({
      code: 'CARRIER_LIMIT_EXCEEDED',
    });
  });
});

describe('options and errors', () => {
  it.each<OverlayMountMethod>(['fsopen', 'mount'])('%s: extraOptions become mount attributes and overlay parameters', async (method) => {
    const { driver, container } = await makeStack(freshHome(`opts-${method}`), whiteoutLayers('trusted'));
    const spec = { ...(await specOf(driver, container)), extraOptions: ['nodev', 'nosuid', 'metacopy=on'] };
    await mount(spec, { method });
    const info = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === spec.target)!;
    const [head, tail] = info.split(' - ');
    expect(head!.split(' ')[5]!.split(',')).toEqual(expect.arrayContaining(['nodev', 'nosuid']));
    expect(tail).toContain('metacopy=on');
    await unmountOverlay(spec.target);
  });

  it('reports the parameter the kernel refused, with the kernel log', async () => {
    const { driver, container } = await makeStack(freshHome('badopt'), whiteoutLayers('trusted'));
    const spec = { ...(await specOf(driver, container)), extraOptions: ['no_such_option=1'] };
    const err = await mountOverlay(spec, { method: 'fsopen' }).catch((e: unknown) => e as { code: string; message: string });
    expect(err.code).toBe('EINVAL');
    expect(err.message).toContain("the kernel refused no_such_option '1'");
    expect(err.message).toMatch(/kernel: .*[Uu]nknown parameter/);
  });

  it('rejects specs the kernel would refuse without a useful message', async () => {
    await expect(mountOverlay({ lowerdirs: ['/a'], target: '/t', readOnly: true })).rejects.toThrow(/at least two lower directories/);
    await expect(mountOverlay({ lowerdirs: ['rel'], target: '/t' })).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    await expect(mountOverlay({ lowerdirs: ['/a', '/b'], upperdir: '/u', target: '/t' })).rejects.toThrow(/upperdir and workdir/);
  });

  it.each<OverlayMountMethod>(['fsopen', 'mount'])('%s: paths with , and : and paths over 255 bytes', async (method) => {
    const deepDir = path.join(work, `odd-${method}`, 'x'.repeat(200), 'y'.repeat(100));
    const lowerdirs = ['a,b', 'c:d', 'e\\f'].map((n) => path.join(deepDir, n));
    lowerdirs.forEach((d, i) => {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}`), `${i}`);
    });
    expect(lowerdirs[0]!.length).toBeGreaterThan(300);
    const target = path.join(work, `odd-${method}-merged`);
    fs.mkdirSync(target);
    await mount({ lowerdirs, target, readOnly: true }, { method });
    expect(fs.readdirSync(target).sort()).toEqual(['f0', 'f1', 'f2']);
    await unmountOverlay(target);
  });

  it('unmounting what is not mounted says so', async () => {
    const dir = path.join(work, 'not-mounted');
    fs.mkdirSync(dir);
    expect(await isMounted(dir)).toBe(false);
    expect(await isMounted(path.join(work, 'no-such-dir'))).toBe(false);
    await expect(unmountOverlay(dir)).rejects.toMatchObject({ code: 'EINVAL', path: dir });
  });

  it('a configured mount program is used by auto', async () => {
    const { driver, container } = await makeStack(freshHome('mount-program'), whiteoutLayers('trusted'));
    const spec = await specOf(driver, container);
    expect(await mount(spec, { mountProgram: '/usr/bin/fuse-overlayfs' })).toEqual({ method: 'fuse' });
    expect(fs.readdirSync(path.join(spec.target, 'data/opaque'))).toEqual(['new.txt']);
    await unmountOverlay(spec.target, { lazy: true });
    expect(await findMount(spec.target)).toBeUndefined();
  });
});

describe('a container of a committed image (Store)', () => {
  it('mounts the container layer over the image layers the store applied', async () => {
    const base = path.join(work, 'store');
    const img = buildTestImage(path.join(base, 'oci'));
    const store = await Store.open(storeDirs(base));
    try {
      const committed = await store.commitImage(commitOf(img, ['localhost/mount-test:latest']));
      const c = await store.createContainer(committed.id);
      const driver = new OverlayDriver(path.join(store.graphroot, 'overlay'));
      const spec = await specOf(driver, c.layer);
      expect(spec.lowerdirs.length).toBe(3);
      expect(await mount(spec, {})).toEqual({ method: 'fsopen' });
      expect(fs.readdirSync(path.join(spec.target, 'data')).sort()).toEqual(['kept.txt', 'link', 'opaque']);
      expect(fs.readdirSync(path.join(spec.target, 'data/opaque'))).toEqual(['new.txt']);
      expect(fs.readFileSync(path.join(spec.target, 'data/link'), 'utf8')).toBe('kept\n');
      fs.writeFileSync(path.join(spec.target, 'data/written'), 'x');
      await unmountOverlay(spec.target);
      expect(fs.readdirSync(driver.paths(c.layer).diff)).toEqual(['data']);
    } finally {
      await store.close();
    }
  });
});

describe('mount counting in the run root', () => {
  // mountpoints.json lives in the run root, which a reboot clears: it is replaced atomically but never flushed (as
  // podman's), so a mount or umount costs no fsync. Flushes are counted on the FileHandle prototype every write uses.
  it('records mounts in mountpoints.json with no fsync or fdatasync', async () => {
    const base = path.join(work, 'store-nosync');
    const img = buildTestImage(path.join(base, 'oci'));
    const store = await Store.open(storeDirs(base));
    const probe = await fs.promises.open(__filename, 'r');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void>; datasync: () => Promise<void> };
    await probe.close();
    const { sync, datasync } = proto;
    let flushes = 0;
    try {
      const committed = await store.commitImage(commitOf(img, ['localhost/mount-nosync:latest']));
      const c = await store.createContainer(committed.id);
      proto.sync = function (this: unknown) { flushes++; return sync.call(this); };
      proto.datasync = function (this: unknown) { flushes++; return datasync.call(this); };
      const target = await store.mountContainer(c.id);
      expect(fs.readdirSync(path.join(target, 'data')).sort()).toEqual(['kept.txt', 'link', 'opaque']);
      expect((await store.mounts()).map((m) => ({ id: m.id, count: m.count }))).toEqual([{ id: c.layer, count: 1 }]);
      expect(await store.unmountContainer(c.id)).toBe(false); // false: no longer mounted
      expect(await store.mounts()).toEqual([]);
      expect(flushes).toBe(0);
    } finally {
      proto.sync = sync;
      proto.datasync = datasync;
      await store.close();
    }
  });
});

describe('rootless: a real unprivileged user', () => {
  const USER = 'carrier-rootless';
  let ids: { uid: number; gid: number };

  const ensureUser = (): { uid: number; gid: number } => {
    if (spawnSync('id', ['-u', USER]).status !== 0) {
      const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
      if (made.status !== 0) throw new Error(`useradd failed: ${made.stderr}`);
    }
    return { uid: Number(execFileSync('id', ['-u', USER]).toString()), gid: Number(execFileSync('id', ['-g', USER]).toString()) };
  };

  const SCRIPT = `
const { mountOverlay, unmountOverlay, overlaySupport } = await import(process.argv[2]);
import fs from 'node:fs';
const spec = JSON.parse(process.argv[3]);
const method = process.argv[4];
const out = { uid: process.getuid(), uidMap: fs.readFileSync('/proc/self/uid_map', 'utf8').trim() };
try {
  out.support = await overlaySupport();
  out.result = await mountOverlay(spec, method === 'auto' ? {} : { method });
  const m = spec.target;
  out.data = fs.readdirSync(m + '/data').sort();
  out.opaque = fs.readdirSync(m + '/data/opaque').sort();
  out.trustedOnly = fs.readdirSync(m + '/data/trusted-only').sort();
  fs.writeFileSync(m + '/written', 'by the user');
  fs.rmSync(m + '/data/kept.txt');
  await unmountOverlay(m);
} catch (err) {
  out.error = { code: err.code, message: err.message };
}
process.stdout.write(JSON.stringify(out));
`;

  function run(args: string[], spec: object, method: string) {
    const script = path.join(work, 'rootless-mount.mjs');
    fs.writeFileSync(script, SCRIPT, { mode: 0o644 });
    const r = spawnSync(
      'setpriv',
      [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--inh-caps=-all', ...args, process.execPath, script, DIST_MOUNT, JSON.stringify(spec), method],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' } },
    );
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout);
  }

  async function userStack(name: string) {
    const layers = whiteoutLayers('user');
    // A trusted.* marker means nothing under userxattr: that directory stays merged.
    layers[0]!.push({ file: 'data/trusted-only/lower.txt', content: 'visible\n' });
    layers[1]!.push({ dir: 'data/trusted-only', opaque: 'trusted' }, { file: 'data/trusted-only/upper.txt', content: 'also\n' });
    const home = freshHome(name);
    const stack = await makeStack(home, layers);
    execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, path.dirname(home)]);
    return { ...stack, spec: await specOf(stack.driver, stack.container) };
  }

  beforeAll(() => {
    ids = ensureUser();
    fs.chmodSync(work, 0o755);
    fs.accessSync(DIST_MOUNT, fs.constants.R_OK); // 'npx tsc -p tsconfig.json' builds it
  });

  it.each(['auto', 'mount'])('inside unshare -Urm, %s mounts natively with userxattr (user.overlay.opaque)', async (method) => {
    const { driver, ids: layerIds, spec } = await userStack(`rootless-${method}`);
    const before = layerIds.map((id) => listing(driver.paths(id).diff));
    const out = run(['unshare', '--user', '--map-root-user', '--mount'], spec, method);
    expect(out.error).toBeUndefined();
    expect(out.uid).toBe(0);
    expect(out.uidMap).toMatch(new RegExp(`^0\\s+${ids.uid}\\s+1$`));
    expect(out.support).toMatchObject({ fsopen: true, lowerdirPlus: true, userxattr: true });
    expect(out.result).toEqual({ method: method === 'auto' ? 'fsopen' : 'mount' });
    expect(out.data).toEqual(['kept.txt', 'opaque', 'trusted-only']);
    expect(out.opaque).toEqual(['new.txt']);
    expect(out.trustedOnly).toEqual(['lower.txt', 'upper.txt']);
    // The writes are the user's, in the container's diff only.
    const written = fs.statSync(path.join(spec.upperdir, 'written'));
    expect([written.uid, written.gid]).toEqual([ids.uid, ids.gid]);
    const wh = fs.lstatSync(path.join(spec.upperdir, 'data/kept.txt'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(layerIds.map((id) => listing(driver.paths(id).diff))).toEqual(before);
  });

  it('outside a user namespace native overlay is not permitted, and the error says what was tried', async () => {
    const { spec } = await userStack('rootless-outside');
    const out = run([], spec, 'auto');
    expect(out.support.fsopen).toBe(false);
    expect(out.error).toBeDefined();
    expect(out.error.message).toContain('mount: ');
    expect(out.error.message).toContain('Operation not permitted');
  });
});

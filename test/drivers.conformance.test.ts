// One conformance suite for every storage driver (overlay and vfs), after containerd's core/snapshots/testsuite:
// the same behaviour asked of each through the Driver interface only. Overlay mounts for real (runs as root).
//
// Needs: root, getfattr/setfattr (Debian package attr).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { createDriver, type Driver } from '../src/drivers/index.js';
import { findMount } from '../src/drivers/mount.js';
import { tempDir, writeTarStream, type TarStreamEntry } from './support/fixtures.js';
import { compareTrees, walkTree } from './support/tree.js';
import { expectCarrierError } from './support/layer.js';

const MTIME = new Date(1_700_000_000_000);
const hexId = (): string => randomBytes(32).toString('hex');

type Spec = { dir: string; mode?: number } | { file: string; content: string; mode?: number; xattr?: [string, string] } | { symlink: string; to: string } | { link: string; to: string } | { fifo: string };

function entry(s: Spec): TarStreamEntry {
  const base = { mtime: MTIME, uid: 0, gid: 0 };
  if ('dir' in s) return { header: { ...base, name: `${s.dir}/`, type: 'directory', mode: s.mode ?? 0o755 } };
  if ('file' in s) {
    const pax = s.xattr ? { pax: { [`SCHILY.xattr.${s.xattr[0]}`]: s.xattr[1] } } : {};
    return { header: { ...base, ...pax, name: s.file, type: 'file', mode: s.mode ?? 0o644 }, content: s.content };
  }
  if ('symlink' in s) return { header: { ...base, name: s.symlink, type: 'symlink', linkname: s.to, mode: 0o777 } };
  if ('link' in s) return { header: { ...base, name: s.link, type: 'link', linkname: s.to, mode: 0o644 } };
  return { header: { ...base, name: s.fifo, type: 'fifo', mode: 0o644 } };
}

/** The tree a test sees: path → what it is (content for files, target for links, mode for directories). */
async function view(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await fs.promises.readdir(dir)).sort()) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      const st = await fs.promises.lstat(p);
      if (st.isDirectory()) {
        out[rel + '/'] = (st.mode & 0o7777).toString(8);
        await walk(p);
      } else if (st.isSymbolicLink()) out[rel] = `-> ${await fs.promises.readlink(p)}`;
      else if (st.isFile()) out[rel] = await fs.promises.readFile(p, 'utf8');
      else out[rel] = 'special';
    }
  };
  await walk(root);
  return out;
}

/** Names of the entries of an uncompressed tar stream, in order. */
async function tarNames(stream: Readable): Promise<string[]> {
  const extract = tar.extract();
  const names: string[] = [];
  const reading = (async () => {
    for await (const e of extract) {
      names.push(e.header.name);
      e.resume();
    }
  })();
  await pipeline(stream, extract);
  await reading;
  return names;
}

async function streamToFile(stream: Readable, file: string): Promise<string> {
  await pipeline(stream, fs.createWriteStream(file));
  return file;
}

const DRIVERS = [
  { label: 'overlay', name: 'overlay' },
  { label: 'vfs', name: 'vfs' },
  // storage.conf mount_program: layers keep aufs `.wh.` whiteouts and every mount goes through fuse-overlayfs
  { label: 'overlay with fuse-overlayfs', name: 'overlay', mountProgram: '/usr/bin/fuse-overlayfs' },
] as const;

describe.each(DRIVERS)('the $label driver', (d) => {
  const { name } = d;
  const extra = 'mountProgram' in d ? { mountProgram: d.mountProgram } : {};
  let work: string;
  let driver: Driver;
  let tars = 0;

  /** A layer `id` on `parent` made from a tar of `specs`. */
  async function layer(specs: Spec[], parent?: string): Promise<string> {
    const id = hexId();
    const file = path.join(work, `layer-${tars++}.tar`);
    await writeTarStream(file, specs.map(entry));
    await driver.create(id, parent);
    await driver.applyDiff(id, parent, file);
    return id;
  }

  beforeEach(async () => {
    work = tempDir(`driver-${name}`);
    driver = createDriver({ driver: name, graphroot: path.join(work, 'root'), ...extra });
    await driver.init();
  });

  afterEach(async () => {
    const home = driver.home;
    for (const id of await fs.promises.readdir(name === 'overlay' ? home : path.join(home, 'dir')).catch(() => [] as string[])) {
      if (/^[0-9a-f]{64}$/.test(id)) await driver.put(id);
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('creates a layer, applies a tar to it, and shows its tree through get until put', async () => {
    const id = await layer([
      { dir: 'etc' },
      { file: 'etc/hostname', content: 'carrier\n' },
      { symlink: 'etc/alias', to: 'hostname' },
      { file: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
      { link: 'bin/tool2', to: 'bin/tool' },
    ]);
    expect(await driver.exists(id)).toBe(true);
    expect(await driver.exists(hexId())).toBe(false);
    const root = await driver.get(id);
    expect(root).toBe(driver.mountPath(id));
    const tree = await view(root);
    expect(tree).toMatchObject({ 'etc/hostname': 'carrier\n', 'etc/alias': '-> hostname', 'bin/tool': '#!/bin/sh\n', 'bin/tool2': '#!/bin/sh\n' });
    const st = await fs.promises.stat(path.join(root, 'bin/tool2'));
    expect(st.ino).toBe((await fs.promises.stat(path.join(root, 'bin/tool'))).ino);
    if (!driver.flat) expect(await findMount(root)).toBeDefined();
    // a second get does not stack a second mount
    expect(await driver.get(id)).toBe(root);
    await driver.put(id);
    expect(await findMount(driver.mountPath(id))).toBeUndefined();
    await driver.put(id); // nothing mounted: fine
    expect(await view(driver.contentDir(id))).toMatchObject({ 'etc/hostname': 'carrier\n' });
    expect(await driver.locate(id)).toBe(driver.contentDir(id));
  });

  it('shows a file of a grandparent through get of the grandchild (transitivity)', async () => {
    const base = await layer([{ file: 'a/from-base', content: 'base\n' }, { file: 'shadowed', content: 'base\n' }]);
    const middle = await layer([{ file: 'b/from-middle', content: 'middle\n' }, { file: 'shadowed', content: 'middle\n' }], base);
    const top = await layer([{ file: 'c/from-top', content: 'top\n' }], middle);
    const tree = await view(await driver.get(top));
    expect(tree).toMatchObject({ 'a/from-base': 'base\n', 'b/from-middle': 'middle\n', 'c/from-top': 'top\n', shadowed: 'middle\n' });
    // a read-write layer on top sees the same tree, and its writes stay in it
    const rw = hexId();
    await driver.createReadWrite(rw, top);
    const rwRoot = await driver.get(rw);
    expect(await view(rwRoot)).toEqual(tree);
    await fs.promises.writeFile(path.join(rwRoot, 'a/from-base'), 'changed\n');
    await driver.put(rw);
    await driver.put(top);
    expect(await view(await driver.get(top))).toMatchObject({ 'a/from-base': 'base\n' });
  });

  it('removes a layer: its directories go, and it no longer exists', async () => {
    const id = await layer([{ file: 'x', content: 'x\n' }]);
    const content = driver.contentDir(id);
    expect(content.startsWith(driver.layerDir(id))).toBe(true);
    await driver.get(id);
    await driver.put(id);
    await driver.remove(id);
    expect(await driver.exists(id)).toBe(false);
    expect(fs.existsSync(content)).toBe(false);
    expect(fs.existsSync(driver.layerDir(id))).toBe(false);
    await expectCarrierError(driver.locate(id));
    await driver.remove(id); // already gone: fine
    if (name === 'overlay') expect(fs.readdirSync(path.join(driver.home, 'l'))).toEqual([]);
  });

  // A driver does not refuse to remove a layer with children: which layers have children is in the store's records,
  // and the store refuses (CARRIER_IN_USE). Asserted here: the parent is untouched; a flat driver's child keeps its
  // whole tree; overlay's child can no longer be mounted (its lower is gone) and is still removable.
  it('removes an intermediate layer: the parent stays intact and the child stays removable', async () => {
    const base = await layer([{ file: 'base', content: 'base\n' }]);
    const middle = await layer([{ file: 'middle', content: 'middle\n' }], base);
    const top = await layer([{ file: 'top', content: 'top\n' }], middle);
    await driver.remove(middle);
    expect(await driver.exists(middle)).toBe(false);
    expect(await view(await driver.get(base))).toMatchObject({ base: 'base\n' });
    await driver.put(base);
    if (driver.flat) {
      expect(await view(await driver.get(top))).toMatchObject({ base: 'base\n', middle: 'middle\n', top: 'top\n' });
    } else {
      await expect(driver.get(top)).rejects.toThrow();
      expect(await findMount(driver.mountPath(top))).toBeUndefined();
    }
    await driver.remove(top);
    expect(await driver.exists(top)).toBe(false);
    expect(await driver.exists(base)).toBe(true);
  });

  it('hides a parent file deleted in a child, and the child diff carries the whiteout', async () => {
    const base = await layer([
      { file: 'a/x', content: 'x\n' },
      { file: 'a/y', content: 'y\n' },
      { file: 'd/old', content: 'old\n' },
    ]);
    const child = await layer([{ dir: 'a' }, { file: 'a/.wh.x', content: '' }, { dir: 'd' }, { file: 'd/.wh..wh..opq', content: '' }, { file: 'd/new', content: 'new\n' }], base);
    const tree = await view(await driver.get(child));
    expect(tree['a/y']).toBe('y\n');
    expect(tree['a/x']).toBeUndefined();
    expect(tree['d/old']).toBeUndefined();
    expect(tree['d/new']).toBe('new\n');
    expect(Object.keys(tree).filter((p) => p.includes('.wh.'))).toEqual([]);
    const names = await tarNames(await driver.diff(child, base));
    expect(names).toContain('a/.wh.x');
    expect(names).toContain('d/new');
    // overlay keeps the opaque marker; vfs compares trees, so the old file shows up deleted instead
    expect(names).toContain(driver.flat ? 'd/.wh.old' : 'd/.wh..wh..opq');
    expect(names).not.toContain('a/y');
  });

  it('gives a base layer the default root mode and a child its parent\'s', async () => {
    const base = await layer([{ file: 'f', content: 'f\n' }]);
    const mode = async (p: string): Promise<number> => (await fs.promises.stat(p)).mode & 0o7777;
    expect(await mode(driver.contentDir(base))).toBe(0o555);
    await fs.promises.chmod(driver.contentDir(base), 0o750);
    const child = await layer([{ file: 'g', content: 'g\n' }], base);
    expect(await mode(driver.contentDir(child))).toBe(0o750);
    const rw = hexId();
    await driver.createReadWrite(rw, child);
    expect(await mode(driver.contentDir(rw))).toBe(0o750);
    expect(await mode(await driver.get(rw))).toBe(0o750);
    const lone = hexId();
    await driver.createReadWrite(lone, undefined);
    expect(await mode(driver.contentDir(lone))).toBe(0o555);
    expect(await view(await driver.get(lone))).toEqual({});
  });

  it('gives every layer of an image filled at once its parent\'s mode (all created first, filled in any order)', async () => {
    const ids = [hexId(), hexId(), hexId()];
    const files: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      files.push(path.join(work, `batch-${i}.tar`));
      await writeTarStream(files[i]!, [entry({ file: `f${i}`, content: `${i}\n` })]);
    }
    for (let i = 0; i < ids.length; i++) await driver.create(ids[i]!, ids[i - 1]);
    const ready = ids.map(() => {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      return { promise, resolve };
    });
    // filled top first: a child's mode does not come from its parent's still-writable directory
    await Promise.all(
      [2, 1, 0].map(async (i) => {
        await driver.applyDiff(ids[i]!, ids[i - 1], files[i]!, i > 0 ? { parentReady: ready[i - 1]!.promise } : {});
        ready[i]!.resolve();
      }),
    );
    for (const id of ids) expect((await fs.promises.stat(driver.contentDir(id))).mode & 0o7777).toBe(0o555);
    expect(await view(await driver.get(ids[2]!))).toMatchObject({ f0: '0\n', f1: '1\n', f2: '2\n' });
  });

  it('mounts a stack of 300 layers', async () => {
    let parent: string | undefined;
    for (let i = 0; i < 300; i++) {
      parent = await layer([{ file: `layers/f${i}`, content: `${i}\n` }, { file: 'top', content: `${i}\n` }], parent);
    }
    const rw = hexId();
    await driver.createReadWrite(rw, parent);
    const tree = await view(await driver.get(rw));
    expect(Object.keys(tree).filter((p) => p.startsWith('layers/f'))).toHaveLength(300);
    expect(tree['layers/f0']).toBe('0\n');
    expect(tree.top).toBe('299\n');
  }, 300_000);

  it('applies its own diff to a fresh layer and gets the same tree back', async () => {
    const base = await layer([
      { file: 'keep', content: 'keep\n' },
      { file: 'gone', content: 'gone\n' },
      { file: 'changed', content: 'before\n' },
      { file: 'opaque/old', content: 'old\n' },
      { dir: 'modes', mode: 0o755 },
    ]);
    const x = await layer(
      [
        { file: 'changed', content: 'after, longer\n' },
        { file: '.wh.gone', content: '' },
        { dir: 'opaque' },
        { file: 'opaque/.wh..wh..opq', content: '' },
        { file: 'opaque/new', content: 'new\n' },
        { dir: 'modes', mode: 0o700 },
        { file: 'new/file', content: 'new file\n', mode: 0o640, xattr: ['user.carrier', 'yes'] },
        { link: 'new/file-link', to: 'new/file' },
        { symlink: 'new/sym', to: '../keep' },
        { fifo: 'new/fifo' },
        { file: 'new/setuid', content: 's\n', mode: 0o4755 },
      ],
      base,
    );
    const diffTar = await streamToFile(await driver.diff(x, base), path.join(work, 'diff.tar'));
    const y = hexId();
    await driver.create(y, base);
    await driver.applyDiff(y, base, diffTar);
    const fields = ['type', 'mode', 'size', 'content', 'target', 'rdev', 'owner', 'xattrs', 'links'] as const;
    const diffs = compareTrees(walkTree(driver.contentDir(x)), walkTree(driver.contentDir(y)), { fields });
    expect(diffs).toEqual([]);
    // files keep their (whole-second) mtimes through the round trip
    const mtimes = compareTrees(walkTree(driver.contentDir(x)), walkTree(driver.contentDir(y)), { fields: ['mtime'], ignore: (p) => !p.includes('.') && !p.startsWith('new/') });
    expect(mtimes).toEqual([]);
    expect(await view(await driver.get(y))).toEqual(await view(await driver.get(x)));
  });

  it('builds a read-write layer on an image layer of a read-only additional image store', async () => {
    const base = await layer([{ file: 'etc/os-release', content: 'ID=base\n' }]);
    const top = await layer([{ file: 'app/run', content: 'run\n' }], base);
    const own = createDriver({ driver: name, graphroot: path.join(work, 'own'), additionalImageStores: [path.join(work, 'root')], ...extra });
    await own.init();
    expect(await own.locate(top)).toBe(driver.contentDir(top));
    const rw = hexId();
    await own.createReadWrite(rw, top);
    try {
      const root = await own.get(rw);
      expect(await view(root)).toMatchObject({ 'etc/os-release': 'ID=base\n', 'app/run': 'run\n' });
      await fs.promises.writeFile(path.join(root, 'written'), 'w\n');
      expect(await tarNames(await own.diff(rw, top))).toContain('written');
    } finally {
      await own.put(rw);
    }
    expect(await view(driver.contentDir(top))).not.toHaveProperty('written');
  });

  it('archives what was written through the mount of a read-write layer, and that archive rebuilds the same tree', async () => {
    const base = await layer([
      { file: 'etc/motd', content: 'hello\n' },
      { file: 'etc/gone', content: 'gone\n' },
      { file: 'cache/a', content: 'a\n' },
      { file: 'cache/b', content: 'b\n' },
      { file: 'bin/tool', content: 'tool\n', mode: 0o755 },
    ]);
    const rw = hexId();
    await driver.createReadWrite(rw, base);
    const root = await driver.get(rw);
    await fs.promises.rm(path.join(root, 'etc/gone'));
    await fs.promises.rm(path.join(root, 'cache'), { recursive: true });
    await fs.promises.mkdir(path.join(root, 'cache'));
    await fs.promises.writeFile(path.join(root, 'cache/c'), 'c\n');
    await fs.promises.appendFile(path.join(root, 'etc/motd'), 'more\n');
    await fs.promises.chmod(path.join(root, 'bin/tool'), 0o700);
    await fs.promises.mkdir(path.join(root, 'srv/data'), { recursive: true });
    await fs.promises.writeFile(path.join(root, 'srv/data/x'), 'x\n');
    const expected = await view(root);
    await driver.put(rw);

    const names = await tarNames(await driver.diff(rw, base));
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('etc/.wh.gone');
    expect(names).toEqual(expect.arrayContaining(['etc/motd', 'bin/tool', 'cache/c', 'srv/data/x']));
    // overlay made cache/ opaque when it was recreated; vfs sees the files it lost
    expect(names).toEqual(expect.arrayContaining(driver.flat ? ['cache/.wh.a', 'cache/.wh.b'] : ['cache/.wh..wh..opq']));
    expect(names.filter((n) => n.startsWith('etc/hostname'))).toEqual([]);

    const copy = hexId();
    const file = await streamToFile(await driver.diff(rw, base), path.join(work, 'rw.tar'));
    await driver.create(copy, base);
    await driver.applyDiff(copy, base, file);
    expect(await view(await driver.get(copy))).toEqual(expected);
  });

  it('rejects a tar that does not match its diff_id, leaving a layer that remove clears', async () => {
    const base = await layer([{ file: 'f', content: 'f\n' }]);
    const id = hexId();
    const file = path.join(work, 'bad.tar');
    await writeTarStream(file, [entry({ file: 'g', content: 'g\n' })]);
    await driver.create(id, base);
    const err = await expectCarrierError(driver.applyDiff(id, base, file, { expectedDiffID: `sha256:${'0'.repeat(64)}` }));
    expect(err.code).toBe('CARRIER_DIGEST_MISMATCH');
    await driver.remove(id);
    expect(await driver.exists(id)).toBe(false);
    expect(await driver.cleanup(new Set([base]))).toEqual([]);
  });

  it('refuses to get an unknown layer and makes nothing for it', async () => {
    const id = hexId();
    const err = await expectCarrierError(driver.get(id));
    expect(err.code).toBe('CARRIER_NOT_FOUND');
    expect(await driver.exists(id)).toBe(false);
    expect(fs.existsSync(path.dirname(driver.mountPath(id)))).toBe(driver.flat);
  });

  it('unmounts a layer that is still mounted before removing it, leaving its parent untouched', async () => {
    const base = await layer([{ file: 'keep', content: 'keep\n' }]);
    const rw = hexId();
    await driver.createReadWrite(rw, base);
    const root = await driver.get(rw);
    await fs.promises.writeFile(path.join(root, 'scratch'), 's\n');
    await driver.remove(rw);
    expect(await findMount(driver.mountPath(rw))).toBeUndefined();
    expect(await driver.exists(rw)).toBe(false);
    expect(await view(driver.contentDir(base))).toEqual({ keep: 'keep\n' });
  });

  it('reports the space a layer takes, counting a hard-linked file once', async () => {
    const id = await layer([{ file: 'a', content: '12345' }, { link: 'b', to: 'a' }, { file: 'dir/c', content: '123' }]);
    expect(await driver.usage(id)).toEqual({ bytes: 8, inodes: 3 });
  });

  it('cleans up layer directories no record names, and keeps the recorded ones', async () => {
    const kept = await layer([{ file: 'k', content: 'k\n' }]);
    const orphan = await layer([{ file: 'o', content: 'o\n' }], kept);
    // a link a crash left without its layer (overlay keeps l/ links)
    if (!driver.flat) fs.symlinkSync(`../${hexId()}/diff`, path.join(driver.home, 'l', 'STRAYSTRAYSTRAYSTRAYSTRAYS'));
    const removed = await driver.cleanup(new Set([kept]));
    expect(removed).toContain(driver.flat ? `vfs/dir/${orphan}` : `overlay/${orphan}`);
    if (!driver.flat) expect(removed).toContain('overlay/l/STRAYSTRAYSTRAYSTRAYSTRAYS');
    expect(await driver.exists(orphan)).toBe(false);
    expect(await driver.exists(kept)).toBe(true);
    expect(await view(await driver.get(kept))).toMatchObject({ k: 'k\n' });
    expect(await driver.cleanup(new Set([kept]))).toEqual([]);
  });
});

describe('the overlay driver diff', () => {
  it('reads a rootless opaque marker (user.overlay.opaque), keeps aufs whiteout files as they are, and drops overlay xattrs', async () => {
    const work = tempDir('driver-overlay-xattr');
    try {
      const driver = createDriver({ driver: 'overlay', graphroot: path.join(work, 'root'), mountProgram: '/usr/bin/fuse-overlayfs' });
      await driver.init();
      const id = hexId();
      const file = path.join(work, 'l.tar');
      await writeTarStream(file, [entry({ dir: 'd' }), entry({ file: 'd/kept', content: 'k\n' }), entry({ file: 'e/.wh.old', content: '' })]);
      await driver.create(id, undefined);
      await driver.applyDiff(id, undefined, file);
      // a store with a mount program keeps aufs whiteouts as files
      expect(fs.readdirSync(path.join(driver.contentDir(id), 'e'))).toEqual(['.wh.old']);
      execFileSync('setfattr', ['-n', 'user.overlay.opaque', '-v', 'y', path.join(driver.contentDir(id), 'd')]);
      const extract = tar.extract();
      const seen: { name: string; pax?: Record<string, string> }[] = [];
      const reading = (async () => {
        for await (const e of extract) {
          seen.push({ name: e.header.name, ...(e.header.pax ? { pax: e.header.pax } : {}) });
          e.resume();
        }
      })();
      await pipeline(await driver.diff(id, undefined), extract);
      await reading;
      expect(seen.map((e) => e.name)).toEqual(['d/', 'd/.wh..wh..opq', 'd/kept', 'e/', 'e/.wh.old']);
      expect(JSON.stringify(seen)).not.toContain('overlay');
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

// The same driver calls as an unprivileged user inside `unshare --user --map-root-user --mount` (rootless podman's
// setting): extraction by the rootless rules, overlay mounted natively with userxattr, opaque directories marked with
// user.overlay.opaque, and diff() reading them. Runs the built package (`npx tsc -p tsconfig.json` first).
describe.each(['overlay', 'vfs'] as const)('the %s driver, rootless', (name) => {
  const USER = 'carrier-rootless';
  const DIST = path.resolve(__dirname, '../dist/drivers/index.js');
  const SCRIPT = `
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
const { createDriver } = await import(process.argv[2]);
const [name, work, tarFile] = process.argv.slice(3);
const view = (root) => {
  const out = {};
  const walk = (dir) => {
    for (const n of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, n);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      if (st.isDirectory()) { out[rel + '/'] = (st.mode & 0o7777).toString(8); walk(p); }
      else out[rel] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(root);
  return out;
};
const result = {};
try {
  const driver = createDriver({ driver: name, graphroot: path.join(work, 'root') });
  await driver.init();
  const base = 'a'.repeat(64), rw = 'b'.repeat(64), copy = 'c'.repeat(64);
  await driver.create(base, undefined);
  await driver.applyDiff(base, undefined, tarFile);
  await driver.createReadWrite(rw, base);
  const root = await driver.get(rw);
  fs.rmSync(path.join(root, 'etc/gone'));
  fs.rmSync(path.join(root, 'cache'), { recursive: true });
  fs.mkdirSync(path.join(root, 'cache'));
  fs.writeFileSync(path.join(root, 'cache/new'), 'new\\n');
  result.expected = view(root);
  await driver.put(rw);
  const diffTar = path.join(work, 'diff.tar');
  await pipeline(await driver.diff(rw, base), fs.createWriteStream(diffTar));
  result.diffBytes = fs.statSync(diffTar).size;
  await driver.create(copy, base);
  await driver.applyDiff(copy, base, diffTar);
  result.actual = view(await driver.get(copy));
  await driver.put(copy);
  result.upperCache = name === 'overlay' ? fs.readdirSync(path.join(driver.contentDir(rw), 'cache')) : undefined;
} catch (err) {
  result.error = { code: err.code, message: err.message, stack: err.stack };
}
process.stdout.write(JSON.stringify(result));
`;

  it('builds, mounts, diffs and rebuilds a read-write layer as an unprivileged user in a user namespace', async () => {
    if (spawnSync('id', ['-u', USER]).status !== 0) {
      const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
      if (made.status !== 0) throw new Error(`useradd failed: ${made.stderr}`);
    }
    const uid = Number(execFileSync('id', ['-u', USER]).toString());
    const gid = Number(execFileSync('id', ['-g', USER]).toString());
    fs.accessSync(DIST, fs.constants.R_OK);
    const work = tempDir(`driver-rootless-${name}`);
    try {
      fs.chmodSync(work, 0o755);
      const tarFile = path.join(work, 'base.tar');
      await writeTarStream(tarFile, [
        entry({ file: 'etc/motd', content: 'hello\n' }),
        entry({ file: 'etc/gone', content: 'gone\n' }),
        entry({ file: 'cache/a', content: 'a\n' }),
      ]);
      const script = path.join(work, 'rootless.mjs');
      fs.writeFileSync(script, SCRIPT);
      execFileSync('chown', ['-R', `${uid}:${gid}`, work]);
      const r = spawnSync(
        'setpriv',
        [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', 'unshare', '--user', '--map-root-user', '--mount', process.execPath, script, DIST, name, work, tarFile],
        { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' } },
      );
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { error?: unknown; expected: Record<string, string>; actual: Record<string, string>; upperCache?: string[] };
      expect(out.error).toBeUndefined();
      expect(out.expected).toMatchObject({ 'etc/motd': 'hello\n', 'cache/new': 'new\n' });
      expect(out.expected['etc/gone']).toBeUndefined();
      expect(out.expected['cache/a']).toBeUndefined();
      expect(out.actual).toEqual(out.expected);
      if (name === 'overlay') {
        expect(out.upperCache).toEqual(['new']);
        // the kernel marked the recreated directory opaque in the user namespace's own xattr
        const xattrs = execFileSync('getfattr', ['--absolute-names', '-d', '-m', '-', path.join(work, 'root/overlay', 'b'.repeat(64), 'diff/cache')]).toString();
        expect(xattrs).toContain('user.overlay.opaque="y"');
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

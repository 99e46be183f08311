// The vfs storage driver against real podman 4.3.1 (`--storage-driver vfs`, rootful): Carrier writes containers/storage's
// vfs layout (vfs/dir/<id> holds each layer's whole tree, records in vfs-layers/, vfs-images/, vfs-containers/), podman
// reads it and the other way round; each layer directory is its parent's tree cloned with reflinks where the
// filesystem has them (loop-mounted XFS) and copied where not (ext4); and the CLI works on a vfs store.
//
// Needs: root, podman, skopeo, docker-registry, xfsprogs, e2fsprogs (Debian packages), `npx tsc -p tsconfig.json` first.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { Store } from '../src/store/store.js';
import { checkoutImage } from '../src/checkout/checkout.js';
import { exportContainer } from '../src/checkout/export.js';
import { buildTestImage, defaultLayers, Podman, requireTools, toDockerArchive, removeWorkDir, type TestImage } from './support/images.js';
import { commitOf, readJson } from './support/store.js';
import { tempDir, prng } from './support/fixtures.js';
import { withLoopFs, usage, xfsHasReflink } from './support/loopfs.js';
import { startRegistry, pushImage, type TestRegistry } from './support/registry.js';
import * as H from './support/hostile.js';
import type { LayerRecord, MountRecord } from '../src/store/records.js';

const execFileP = promisify(execFile);
const CLI = path.resolve(__dirname, '../dist/cli/main.js');
const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
const MTIME = 1_700_000_000;
const MiB = 1024 * 1024;

/** Carrier's Store on the same vfs store podman uses. */
const openVfs = (p: Podman): Promise<Store> => Store.open({ root: p.root, runroot: p.runroot, driver: 'vfs' });

/** The whole tree under `root`: path → type, content, link target, and hard-link group for files with nlink > 1. */
function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      if (st.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else if (st.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`;
      else if (st.isFile()) {
        let v = fs.readFileSync(p, 'utf8');
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (!inodes.has(key)) inodes.set(key, rel);
          v += ` [link ${inodes.get(key)}]`;
        }
        out[rel] = v;
      } else out[rel] = `special ${st.mode.toString(8)}`;
    }
  };
  walk(root);
  return out;
}

async function hashStream(s: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return 'sha256:' + h.digest('hex');
}

/**
 * The default three layers (whiteout, opaque dir) plus a fourth that rewrites a lower file and adds hard links:
 * every layer's export must read its own tree, not a later one's.
 */
function vfsLayers(): ReturnType<typeof defaultLayers> {
  const o = { mtime: MTIME };
  return [
    ...defaultLayers(),
    {
      compression: 'gzip',
      entries: [
        H.dir('etc/', o),
        H.file('etc/hostname', 'rewritten by layer 4\n', o),
        H.dir('hl/', o),
        H.file('hl/a', 'shared by two names\n', o),
        H.hardlink('hl/b', 'hl/a', o),
        H.dir('data/', o),
        H.file('data/.wh.link', '', o),
      ],
    },
  ];
}

const EXPECTED_TREE = {
  data: 'dir',
  'data/kept.txt': 'kept\n',
  'data/opaque': 'dir',
  'data/opaque/new.txt': 'new in layer 2 (a)\n', // old.txt hidden by the opaque dir, gone.txt and link by whiteouts
  etc: 'dir',
  'etc/hostname': 'rewritten by layer 4\n',
  hl: 'dir',
  'hl/a': 'shared by two names\n [link hl/a]',
  'hl/b': 'shared by two names\n [link hl/a]',
  top: 'dir',
  'top/readme': 'top layer a\n'.repeat(50),
};

let work: string;
let img: TestImage;
let n = 0;
const newPodman = (): Podman => new Podman(path.join(work, `p${n++}`), 'vfs');

beforeAll(() => {
  requireTools();
  work = tempDir('vfs');
  img = buildTestImage(path.join(work, 'img'), { label: 'vfs', layers: vfsLayers() });
});

afterAll(() => {
  removeWorkDir(work);
});

describe('podman reads what Carrier writes on vfs', () => {
  it('lays out vfs/dir/<id> trees with vfs-* records; podman lists, mounts and saves the image', async () => {
    const p = newPodman();
    const store = await openVfs(p);
    expect(store.driverName).toBe('vfs');
    const result = await store.commitImage(commitOf(img, ['localhost/vfs:1']));
    const layerIds = result.layers.map((l) => l.id);
    // every layer's export rebuilds its tar byte for byte from its own (whole-tree) directory
    for (const [i, id] of layerIds.entries()) {
      expect(await hashStream(await store.exportLayer(id)), `layer ${i}`).toBe(img.diffIDs[i]);
    }
    await store.close();

    // layout: containers/storage's vfs driver, nothing of overlay's
    for (const d of ['vfs/dir', 'vfs-layers', 'vfs-images', 'vfs-containers']) expect(fs.statSync(path.join(p.root, d)).isDirectory(), d).toBe(true);
    for (const f of ['vfs-layers/layers.lock', 'vfs-images/images.lock', 'vfs-containers/containers.lock', 'storage.lock']) {
      expect(fs.existsSync(path.join(p.root, f)), f).toBe(true);
    }
    expect(fs.existsSync(path.join(p.runroot, 'vfs-layers/mountpoints.lock'))).toBe(true);
    for (const d of ['overlay', 'overlay-layers', 'overlay-images', 'overlay-containers']) expect(fs.existsSync(path.join(p.root, d)), d).toBe(false);
    expect(fs.readdirSync(path.join(p.root, 'vfs/dir')).sort()).toEqual([...layerIds].sort());
    expect(fs.readdirSync(path.join(p.root, 'vfs', 'carrier-staging'))).toEqual([]);
    for (const id of layerIds) {
      expect(fs.existsSync(path.join(p.root, 'vfs-layers', `${id}.tar-split.gz`)), id).toBe(true);
      for (const f of ['link', 'lower', 'diff']) expect(fs.existsSync(path.join(p.root, 'vfs/dir', id, f))).toBe(false);
    }
    const records = readJson<LayerRecord[]>(path.join(p.root, 'vfs-layers/layers.json'));
    expect(records.map((r) => r['diff-digest'])).toEqual(img.diffIDs);
    expect(records.every((r) => r.flags?.incomplete === undefined)).toBe(true);
    // modes as c/storage's vfs driver gives them: a base layer 0555, a child its parent's
    for (const id of layerIds) expect(fs.statSync(path.join(p.root, 'vfs/dir', id)).mode & 0o7777).toBe(0o555);
    // each layer directory is its whole tree at that layer: whiteouts resolved, lower trees untouched
    const dirOf = (i: number): string => path.join(p.root, 'vfs/dir', layerIds[i]!);
    expect(treeOf(dirOf(0))).toMatchObject({ 'data/gone.txt': 'removed by the next layer\n', 'data/opaque/old.txt': 'hidden by the opaque marker\n', 'etc/hostname': 'carrier-a\n' });
    expect(Object.keys(treeOf(dirOf(1))).sort()).toEqual(['data', 'data/kept.txt', 'data/link', 'data/opaque', 'data/opaque/new.txt', 'etc', 'etc/hostname']);
    expect(treeOf(dirOf(3))).toEqual(EXPECTED_TREE);

    const listed = p.images();
    expect(listed.map((i) => [i.Id, i.Names, i.Digest])).toEqual([[img.configDigest.slice(7), ['localhost/vfs:1'], img.manifestDigest]]);
    const mnt = p.run(['image', 'mount', 'localhost/vfs:1']).trim();
    try {
      expect(mnt).toBe(dirOf(3)); // vfs mounts nothing: the top layer's directory is the image's tree
      expect(treeOf(mnt)).toEqual(EXPECTED_TREE);
    } finally {
      p.run(['image', 'unmount', 'localhost/vfs:1']);
    }
    const saved = path.join(p.dir, 'saved.tar');
    p.run(['save', '-q', '-o', saved, 'localhost/vfs:1']);
    const out = path.join(p.dir, 'saved');
    fs.mkdirSync(out);
    await execFileP('tar', ['-xf', saved, '-C', out]);
    const manifest = readJson<{ Layers: string[] }[]>(path.join(out, 'manifest.json'))[0]!;
    expect(manifest.Layers.map((l) => sha(fs.readFileSync(path.join(out, l))))).toEqual(img.diffIDs);
    // podman can make a container of it on the same store, and removes it again
    p.run(['create', '--name', 'pc', 'localhost/vfs:1', '/bin/true']);
    p.run(['rm', 'pc']);
  });

  it('flattened checkout and a container on vfs: the layer dir cloned, "mounted" as itself, exported, removed', async () => {
    const p = newPodman();
    const store = await openVfs(p);
    await store.commitImage(commitOf(img, ['localhost/vfs:2']));
    const top = (await store.image('localhost/vfs:2'))!.topLayer!;

    const co = path.join(p.dir, 'checkout');
    await checkoutImage(store, 'localhost/vfs:2', co);
    expect(treeOf(co)).toEqual(EXPECTED_TREE);

    const c = await store.createContainer('localhost/vfs:2', { names: ['vc'] });
    const cdir = store.layerDiffPath(c.layer);
    expect(cdir).toBe(path.join(p.root, 'vfs/dir', c.layer));
    expect(treeOf(cdir)).toEqual(EXPECTED_TREE);
    expect(fs.statSync(cdir).mode & 0o7777).toBe(0o555);
    expect(fs.existsSync(path.join(p.root, 'vfs-containers', c.id, 'userdata'))).toBe(true);
    expect(fs.existsSync(path.join(p.runroot, 'vfs-containers', c.id, 'userdata'))).toBe(true);
    expect(await store.mountContainer('vc')).toBe(cdir);
    expect(await store.mountContainer(c.id)).toBe(cdir);
    expect(readJson<MountRecord[]>(path.join(p.runroot, 'vfs-layers/mountpoints.json'))).toEqual([{ id: c.layer, path: cdir, count: 2 }]);
    fs.writeFileSync(path.join(cdir, 'etc/written'), 'by the container\n');
    fs.rmSync(path.join(cdir, 'top'), { recursive: true });
    // the image's own tree is untouched by writes in the container's
    expect(treeOf(path.join(p.root, 'vfs/dir', top))).toEqual(EXPECTED_TREE);
    const tar = path.join(p.dir, 'export.tar');
    await exportContainer(store, 'vc', tar);
    const listing = execFileSync('tar', ['-tf', tar]).toString().split('\n').filter((l) => l !== '').sort();
    expect(listing).toContain('etc/written');
    expect(listing.some((l) => l.startsWith('top'))).toBe(false);
    // podman sees the container (ps --external)
    const ps = JSON.parse(p.run(['ps', '-a', '--external', '--format', 'json'])) as { Id: string }[];
    expect(ps.map((x) => x.Id)).toContain(c.id);
    expect(await store.unmountContainer('vc')).toBe(true);
    expect(await store.unmountContainer('vc')).toBe(false);
    expect(readJson<MountRecord[]>(path.join(p.runroot, 'vfs-layers/mountpoints.json'))).toEqual([]);
    await store.deleteContainer('vc');
    expect(fs.existsSync(cdir)).toBe(false);
    expect(fs.existsSync(path.join(p.root, 'vfs-containers', c.id))).toBe(false);
    await store.removeImage('localhost/vfs:2');
    expect(fs.readdirSync(path.join(p.root, 'vfs/dir'))).toEqual([]);
    expect(await store.sweepOrphans()).toEqual([]);
    await store.close();
  });

  it('a failed layer leaves no layer, tree or staging dir behind', async () => {
    const p = newPodman();
    const store = await openVfs(p);
    const bad = commitOf(img, ['localhost/bad:1']);
    bad.layers[2] = { ...bad.layers[2]!, diffID: img.diffIDs[0]! }; // wrong diff digest for layer 3
    await expect(store.commitImage(bad)).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH' });
    expect(await store.layers()).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs/dir'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs/carrier-staging'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs-layers')).filter((f) => f.endsWith('.tar-split.gz'))).toEqual([]);
    await store.close();
  });
  it('a layer a killed writer left incomplete (tree and staging dir half made) is removed on open', async () => {
    const p = newPodman();
    const store = await openVfs(p);
    await store.commitImage(commitOf(img, ['localhost/ok:1']));
    await store.close();
    const half = 'f'.repeat(64);
    const layersJson = path.join(p.root, 'vfs-layers/layers.json');
    const records = readJson<LayerRecord[]>(layersJson);
    records.push({ id: half, parent: records[records.length - 1]!.id, flags: { incomplete: true } } as LayerRecord);
    fs.writeFileSync(layersJson, JSON.stringify(records));
    for (const d of [path.join(p.root, 'vfs/dir', half, 'etc'), path.join(p.root, 'vfs/carrier-staging', half, 'x')]) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'partial'), 'half written');
    }
    const repaired = await openVfs(p);
    expect((await repaired.layers()).map((l) => l.id)).not.toContain(half);
    // what no record references (a crash of an older writer) is swept: trees, staging dirs, tar-splits
    const orphan = 'e'.repeat(64);
    fs.mkdirSync(path.join(p.root, 'vfs/dir', orphan, 'x'), { recursive: true });
    fs.mkdirSync(path.join(p.root, 'vfs/carrier-staging', orphan), { recursive: true });
    fs.writeFileSync(path.join(p.root, 'vfs-layers', `${orphan}.tar-split.gz`), '');
    expect((await repaired.sweepOrphans()).sort()).toEqual([`vfs-layers/${orphan}.tar-split.gz`, `vfs/carrier-staging/${orphan}`, `vfs/dir/${orphan}`]);
    await repaired.close();
    expect(fs.existsSync(path.join(p.root, 'vfs/dir', half))).toBe(false);
    expect(fs.existsSync(path.join(p.root, 'vfs/carrier-staging', half))).toBe(false);
    expect(p.images().map((i) => i.Names)).toEqual([['localhost/ok:1']]);
    expect(treeOf(p.run(['image', 'mount', 'localhost/ok:1']).trim())).toEqual(EXPECTED_TREE);
    p.run(['image', 'unmount', 'localhost/ok:1']);
  });
});

describe('Carrier reads what podman writes on vfs', () => {
  it('lists a podman-loaded image, exports each layer with its exact diff digest, and removes it without leftovers', async () => {
    const p = newPodman();
    const archive = path.join(p.dir, 'docker.tar');
    toDockerArchive(img, archive, 'example.com/podman/vfs:7');
    p.run(['load', '-q', '-i', archive]);
    const podmanId = p.images()[0]!.Id;

    const store = await openVfs(p);
    const images = await store.images();
    expect(images.map((i) => [i.id, i.names])).toEqual([[podmanId, ['example.com/podman/vfs:7']]]);
    expect(podmanId).toBe(img.configDigest.slice(7));
    const layers = await store.layers();
    expect(layers.map((l) => l.diffDigest).sort()).toEqual([...img.diffIDs].sort());
    for (const l of layers) expect(await hashStream(await store.exportLayer(l.id)), l.id).toBe(l.diffDigest);
    const co = path.join(p.dir, 'checkout');
    await checkoutImage(store, podmanId, co);
    expect(treeOf(co)).toEqual(EXPECTED_TREE);
    await store.removeImage('example.com/podman/vfs:7');
    await store.close();

    expect(p.images()).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs/dir'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs-images')).sort()).toEqual(['images.json', 'images.lock']);
    expect(fs.readdirSync(path.join(p.root, 'vfs-layers')).filter((e) => e.endsWith('.tar-split.gz'))).toEqual([]);
  });
});

describe('vfs layer trees share extents where the filesystem can', () => {
  const BIG = 300 * MiB;
  let big: TestImage;
  beforeAll(() => {
    // A 300 MiB base layer, then two small layers on top: three layer trees of ~300 MiB each.
    const o = { mtime: MTIME };
    big = buildTestImage(path.join(work, 'big'), {
      label: 'big',
      layers: [
        { compression: 'none', entries: [H.dir('blob/', o), H.file('blob/big.bin', prng(BIG, 'vfs-big'), o), H.file('blob/small', 'small\n', o)] },
        { compression: 'gzip', entries: [H.dir('blob/', o), H.file('blob/.wh.small', '', o), H.file('blob/two', '2\n', o)] },
        { compression: 'gzip', entries: [H.dir('three/', o), H.file('three/file', '3\n', o)] },
      ],
    });
  }, 120_000);

  async function commitBig(mnt: string): Promise<{ delta: number; store: Store; ids: string[] }> {
    const root = path.join(mnt, 'g');
    const store = await Store.open({ root, runroot: path.join(work, `bigrun${n++}`), driver: 'vfs' });
    const before = usage(mnt).used;
    const r = await store.commitImage(commitOf(big, ['localhost/big:1']));
    const delta = usage(mnt).used - before;
    console.info(`vfs commit of 3 stacked ${BIG / MiB} MiB layer trees on ${path.basename(path.dirname(mnt))}: used space grew ${(delta / MiB).toFixed(1)} MiB`);
    const ids = r.layers.map((l) => l.id);
    for (const id of ids) expect(fs.statSync(path.join(root, 'vfs/dir', id, 'blob/big.bin')).size).toBe(BIG);
    const topTree = path.join(root, 'vfs/dir', ids[2]!);
    expect(fs.readdirSync(path.join(topTree, 'blob')).sort()).toEqual(['big.bin', 'two']);
    expect(fs.readFileSync(path.join(topTree, 'three/file'), 'utf8')).toBe('3\n');
    for (const [i, id] of ids.entries()) expect(await hashStream(await store.exportLayer(id)), `layer ${i}`).toBe(big.diffIDs[i]);
    return { delta, store, ids };
  }

  it('on a loop-mounted XFS (reflink=1), three stacked 300 MiB layer trees use about one copy', async () => {
    await withLoopFs('xfs', 2048, async (mnt) => {
      expect(xfsHasReflink(mnt)).toBe(true);
      const { delta, store } = await commitBig(mnt);
      expect(delta).toBeGreaterThan(BIG * 0.9);
      expect(delta).toBeLessThan(BIG * 1.5);
      await store.removeImage('localhost/big:1');
      await store.close();
    });
  }, 300_000);

  it('on ext4 (no reflink) the same commit works and copies: three trees cost three copies', async () => {
    await withLoopFs('ext4', 2048, async (mnt) => {
      const { delta, store } = await commitBig(mnt);
      expect(delta).toBeGreaterThan(BIG * 2.8);
      await store.removeImage('localhost/big:1');
      await store.close();
    });
  }, 300_000);
});

describe('carrier --storage-driver vfs (CLI)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
    reg = await startRegistry();
    await pushImage(reg.host, img.ociDir, 'lib/vfs:1');
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it('pull, images and rmi work on a vfs store that podman reads', async () => {
    const p = newPodman();
    const env = { ...p.env, XDG_DATA_HOME: path.join(p.dir, 'xdg') };
    const carrier = (args: string[]) => execFileP(process.execPath, [CLI, '--root', p.root, '--runroot', p.runroot, '--storage-driver', 'vfs', ...args], { env });
    const pulled = await carrier(['pull', '-q', '--tls-verify=false', `${reg.host}/lib/vfs:1`]);
    const id = img.configDigest.slice(7);
    expect(pulled.stdout).toBe(`${id}\n`);
    expect(fs.readdirSync(path.join(p.root, 'vfs/dir'))).toHaveLength(img.layers.length);
    expect(fs.existsSync(path.join(p.root, 'overlay'))).toBe(false);
    const listed = JSON.parse((await carrier(['images', '--format', 'json'])).stdout) as { Id: string; Names?: string[] }[];
    expect(listed.map((i) => i.Id)).toEqual([id]);
    expect(p.images().map((i) => [i.Id, i.Names])).toEqual([[id, [`${reg.host}/lib/vfs:1`]]]);
    const mnt = p.run(['image', 'mount', id]).trim();
    expect(treeOf(mnt)).toEqual(EXPECTED_TREE);
    p.run(['image', 'unmount', id]);
    await carrier(['rmi', `${reg.host}/lib/vfs:1`]);
    expect(p.images()).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs/dir'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'vfs-layers')).filter((e) => e.endsWith('.tar-split.gz'))).toEqual([]);
  }, 120_000);
});

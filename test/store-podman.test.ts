// The store against real podman (Debian `podman`, rootful, run with --root/--runroot on the test store): what
// Carrier writes podman reads, what podman writes Carrier reads, both at once, and after a crash.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { Store } from '../src/store/store.js';
import { buildTestImage, requireTools, toDockerArchive, Podman, type PodmanImage, type TestImage } from './support/images.js';
import { commitOf, readJson } from './support/store.js';
import type { ImageRecord } from '../src/store/records.js';

const execFileP = promisify(execFile);
const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
let work: string;
let img: TestImage;

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-podman-'));
  img = buildTestImage(path.join(work, 'img'), { label: 'interop' });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

let n = 0;
function podmanStore(): Podman {
  return new Podman(path.join(work, `p${n++}`));
}


/** The whole visible tree of a mounted image: path → type and content. */
function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      if (st.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else if (st.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`;
      else out[rel] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(root);
  return out;
}

describe('podman reads what Carrier writes', () => {
  it('lists the image with the same id and names, mounts the right tree and saves layers matching the diff_ids', async () => {
    const p = podmanStore();
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    await store.commitImage(commitOf(img, ['localhost/interop:1', 'quay.io/carrier/interop:2']));
    await store.close();

    const listed = p.images();
    expect(listed).toHaveLength(1);
    expect(listed[0]!.Id).toBe(img.configDigest.slice(7));
    expect(listed[0]!.Names).toEqual(['localhost/interop:1', 'quay.io/carrier/interop:2']);
    expect(listed[0]!.Digest).toBe(img.manifestDigest);

    const mnt = p.run(['image', 'mount', 'localhost/interop:1']).trim();
    try {
      expect(treeOf(mnt)).toEqual({
        data: 'dir',
        'data/kept.txt': 'kept\n',
        'data/link': '-> kept.txt',
        'data/opaque': 'dir',
        'data/opaque/new.txt': 'new in layer 2 (a)\n', // old.txt hidden by the opaque dir, gone.txt by its whiteout
        etc: 'dir',
        'etc/hostname': 'carrier-a\n',
        top: 'dir',
        'top/readme': 'top layer a\n'.repeat(50),
      });
    } finally {
      p.run(['image', 'unmount', 'localhost/interop:1']);
    }

    const saved = path.join(work, `saved-${n}.tar`);
    p.run(['save', '-q', '-o', saved, 'localhost/interop:1']);
    const out = path.join(work, `saved-${n}`);
    fs.mkdirSync(out);
    await execFileP('tar', ['-xf', saved, '-C', out]);
    const manifest = readJson<{ Config: string; Layers: string[] }[]>(path.join(out, 'manifest.json'))[0]!;
    const layerDigests = manifest.Layers.map((l) => sha(fs.readFileSync(path.join(out, l))));
    expect(layerDigests).toEqual(img.diffIDs);
  });
});

describe('Carrier reads what podman writes', () => {
  it('lists a podman-loaded image, exports each layer with its exact diff digest, and removes it without leftovers', async () => {
    const p = podmanStore();
    const archive = path.join(work, `docker-${n}.tar`);
    toDockerArchive(img, archive, 'example.com/podman/loaded:7');
    p.load(archive);
    const podmanId = p.images()[0]!.Id;

    const store = await Store.open({ root: p.root, runroot: p.runroot });
    const images = await store.images();
    expect(images.map((i) => [i.id, i.names])).toEqual([[podmanId, ['example.com/podman/loaded:7']]]);
    expect(images[0]!.id).toBe(img.configDigest.slice(7));
    const layers = await store.layers();
    expect(layers.map((l) => l.diffDigest).sort()).toEqual([...img.diffIDs].sort());
    for (const l of layers) {
      const h = createHash('sha256');
      for await (const c of await store.exportLayer(l.id)) h.update(c as Buffer);
      expect('sha256:' + h.digest('hex'), l.id).toBe(l.diffDigest);
    }
    expect(await store.image('example.com/podman/loaded:7')).toBeDefined();
    await store.removeImage('example.com/podman/loaded:7');
    await store.close();

    expect(p.images()).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'overlay')).filter((e) => e !== 'l' && e !== '.has-mount-program')).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'overlay/l'))).toEqual([]);
    expect(fs.readdirSync(path.join(p.root, 'overlay-images')).sort()).toEqual(['images.json', 'images.lock']);
    expect(fs.readdirSync(path.join(p.root, 'overlay-layers')).filter((e) => e.endsWith('.tar-split.gz'))).toEqual([]);
  });
});

describe('podman store as an additional image store', () => {
  it('lists podman images read-only through storage.conf additionalimagestores and refuses to change them', async () => {
    const p = podmanStore();
    const archive = path.join(work, `docker-${n}.tar`);
    toDockerArchive(img, archive, 'example.com/shared/base:1');
    p.load(archive);
    const conf = path.join(work, `additional-${n}.conf`);
    fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\n[storage.options]\nadditionalimagestores = [ "${p.root}" ]\n`);
    const base = path.join(work, `carrier-${n}`);
    const store = await Store.open({ root: path.join(base, 'root'), runroot: path.join(base, 'run'), configFile: conf });
    const found = await store.image('example.com/shared/base:1');
    expect(found).toMatchObject({ id: img.configDigest.slice(7), readOnly: true, names: ['example.com/shared/base:1'] });
    expect((await store.imageBigData(found!.id, 'manifest')).length).toBeGreaterThan(0);
    await expect(store.tag('example.com/shared/base:1', ['mine'])).rejects.toMatchObject({ code: 'EROFS' });
    await expect(store.removeImage('example.com/shared/base:1')).rejects.toMatchObject({ code: 'EROFS' });
    // podman can still write its store while Carrier has it open
    p.run(['tag', 'example.com/shared/base:1', 'example.com/shared/base:2']);
    expect((await store.image('example.com/shared/base:2'))?.id).toBe(found!.id);
    await store.close();
  });
});

describe('Carrier and podman on one store at once', () => {
  // podman 4.3.1's own tag/untag is a read-modify-write across two lock holds (c/common < 0.57 calls SetNames with
  // the names it read before taking the write lock; fixed upstream by "libimage: support parallel tag/untag"), so
  // two writers renaming the *same* image lose updates even when both are podman. Each side therefore renames its
  // own image, while both rewrite the one images.json: a writer that saved without reloading first would drop
  // the other's names, which is the lost update this test looks for.
  it('200 tag/untag operations each lose no update, corrupt no JSON, and never make podman fail', async () => {
    const p = podmanStore();
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    const other = buildTestImage(path.join(work, `img-other-${n}`), { label: 'podman-side' });
    await store.commitImage(commitOf(img, ['localhost/carrier-side:base']));
    await store.commitImage(commitOf(other, ['localhost/podman-side:base']));
    const OPS = 200;
    // Even steps tag a new name; odd steps untag every third name again, or just read.
    const kept = (side: string): string[] =>
      Array.from({ length: OPS / 2 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `localhost/${side}-${i}:t`);
    let podmanDone = 0; // Carrier keeps pace with podman so the two really interleave
    const carrier = (async () => {
      for (let op = 0; op < OPS; op++) {
        while (podmanDone < op && podmanDone < OPS) await new Promise((r) => setTimeout(r, 2));
        const i = Math.floor(op / 2);
        if (op % 2 === 0) await store.tag('carrier-side:base', [`c-${i}:t`]);
        else if (i % 3 === 0) await store.untag('carrier-side:base', [`c-${i}:t`]);
        else await store.images();
      }
    })();
    const podmanErrors: string[] = [];
    const env = { ...process.env, CONTAINERS_STORAGE_CONF: p.conf };
    const pod = (args: string[]) => execFileP('podman', [...p.globalArgs, ...args], { env, maxBuffer: 1 << 28 });
    const podman = (async () => {
      for (let op = 0; op < OPS; op++) {
        const i = Math.floor(op / 2);
        const args =
          op % 2 === 0
            ? ['tag', 'localhost/podman-side:base', `p-${i}:t`]
            : i % 3 === 0
              ? ['untag', 'localhost/podman-side:base', `localhost/p-${i}:t`]
              : ['images', '--format', 'json'];
        try {
          const r = await pod(args);
          if (r.stderr.trim() !== '') podmanErrors.push(`${args.join(' ')}: ${r.stderr}`);
        } catch (err) {
          podmanErrors.push(`${args.join(' ')}: ${(err as Error).message} ${(err as { stderr?: string }).stderr ?? ''}`);
        }
        podmanDone++;
      }
    })();
    await Promise.all([carrier, podman]);
    expect(podmanErrors).toEqual([]);
    const wantCarrier = ['localhost/carrier-side:base', ...kept('c')].sort();
    const wantPodman = ['localhost/podman-side:base', ...kept('p')].sort();
    expect([...(await store.image('carrier-side:base'))!.names].sort()).toEqual(wantCarrier);
    expect([...(await store.image('podman-side:base'))!.names].sort()).toEqual(wantPodman);
    const seenByPodman = p.images();
    expect([...(seenByPodman.find((i) => i.Id === img.configDigest.slice(7))!.Names ?? [])].sort()).toEqual(wantCarrier);
    expect([...(seenByPodman.find((i) => i.Id === other.configDigest.slice(7))!.Names ?? [])].sort()).toEqual(wantPodman);
    expect(readJson<ImageRecord[]>(path.join(p.root, 'overlay-images/images.json'))).toHaveLength(2);
    await store.close();
  }, 300_000);
});

describe('crash recovery that podman accepts', () => {
  it('repairs a layer a killed Carrier left incomplete; podman then reads and mounts the store without complaint', async () => {
    const p = podmanStore();
    const store = await Store.open({ root: p.root, runroot: p.runroot });
    await store.commitImage(commitOf(img, ['localhost/ok:1']));
    await store.close();
    const ready = path.join(work, `ready-${n}`);
    const child = spawn(process.execPath, [path.join(__dirname, 'support/slow-commit.mjs'), p.root, p.runroot, ready], { stdio: 'inherit' });
    for (let i = 0; i < 600 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(fs.existsSync(ready), 'the child never reached mid-apply').toBe(true);
    const half = readJson<{ id: string; flags?: { incomplete?: boolean } }[]>(path.join(p.root, 'overlay-layers/layers.json')).filter((l) => l.flags?.incomplete);
    expect(half).toHaveLength(1);

    const repaired = await Store.open({ root: p.root, runroot: p.runroot });
    expect((await repaired.layers()).filter((l) => l.incomplete)).toEqual([]);
    await repaired.close();
    expect(fs.existsSync(path.join(p.root, 'overlay', half[0]!.id))).toBe(false);

    const env = { ...process.env, CONTAINERS_STORAGE_CONF: p.conf };
    const r = await execFileP('podman', [...p.globalArgs, 'images', '--format', 'json'], { env });
    expect(r.stderr).toBe('');
    expect((JSON.parse(r.stdout) as PodmanImage[]).map((i) => i.Names)).toEqual([['localhost/ok:1']]);
    const mnt = p.run(['image', 'mount', 'localhost/ok:1']).trim();
    expect(fs.readFileSync(path.join(mnt, 'etc/hostname'), 'utf8')).toBe('carrier-a\n');
    p.run(['image', 'unmount', 'localhost/ok:1']);
  });
});

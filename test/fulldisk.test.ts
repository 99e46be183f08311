// Full disk: a store on a tiny loop-mounted ext4 holding a small image. Pulling an image bigger than the free space
// fails with ENOSPC, named in the error, leaves nothing half made (layers.json as before, no stray overlay/<id>
// directory or l/ link, no tar-split, no blob-cache temp file), and the earlier image still exports byte for byte
// and is listed by podman. Once through the library with the blob cache on the same filesystem, once through
// `carrier pull` with the cache elsewhere (so the layer extraction itself runs out of room).
//
// Needs root (losetup, mount) and e2fsprogs.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { Store } from '../src/store/store.js';
import { pull } from '../src/pull.js';
import { Podman, type TestImage } from './support/images.js';
import { withLoopFs, usage } from './support/loopfs.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import { exportChain, podmanImageList, podmanRaw, readLayers, requireCli, runCli } from './support/reliability.js';
import { registryRig } from './support/registry-rig.js';

const FS_MIB = 48;
const o = { mtime: 1_700_000_000 };
let small: TestImage;

const rig = registryRig('cfd', {}, async () => {
  requireCli();
  for (const tool of ['losetup', 'mount', 'mkfs.ext4']) {
    if (![...['/usr/sbin', '/sbin', '/usr/bin', '/bin'], ...(process.env.PATH ?? '').split(':')].some((d) => d && fs.existsSync(path.join(d, tool)))) {
      throw new Error(`${tool} not found: run \`apt-get install ${tool === 'mkfs.ext4' ? 'e2fsprogs' : 'util-linux mount'}\``);
    }
  }
  small = rig.build('small', {
    layers: [
      { compression: 'gzip', entries: [H.dir('etc/', o), H.file('etc/hostname', 'small\n', o), H.file('etc/data', prng(200 * 1024, 'fd-small'), o)] },
      { compression: 'gzip', entries: [H.dir('app/', o), H.file('app/run', '#!/bin/sh\necho hi\n', { ...o, mode: 0o755 }), H.symlink('app/link', 'run', o)] },
    ],
    label: 'fd-small',
  });
  // two 32 MiB layers of random bytes (incompressible, sent uncompressed): 64 MiB, more than the whole filesystem
  const big = rig.build('big', {
    layers: [0, 1].map((i) => ({ compression: 'none' as const, entries: [H.file(`big-${i}.bin`, prng(32 * 1024 * 1024, `fd-big-${i}`), o)] })),
    label: 'fd-big',
  });
  await rig.push(small, 'fd/small:1');
  await rig.push(big, 'fd/big:1', { compress: 'none' });
  fs.rmSync(big.ociDir, { recursive: true, force: true });
});

/** What a failed pull must leave exactly as it was. */
function state(root: string): { layers: string; overlay: string[]; links: string[]; tarSplits: string[]; images: string } {
  const ls = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);
  return {
    layers: fs.readFileSync(path.join(root, 'overlay-layers/layers.json'), 'utf8'),
    overlay: ls(path.join(root, 'overlay')),
    links: ls(path.join(root, 'overlay/l')),
    tarSplits: ls(path.join(root, 'overlay-layers')).filter((f) => f.endsWith('.tar-split.gz')),
    images: fs.readFileSync(path.join(root, 'overlay-images/images.json'), 'utf8'),
  };
}

function tempFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.startsWith('.tmp-') || e.name.endsWith('.tmp')) out.push(path.join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

/** The earlier image is whole: every layer rebuilds to its diff_id, podman lists it without complaint. */
async function checkSmallIntact(p: Podman): Promise<void> {
  const store = await Store.open({ root: p.root, runroot: p.runroot });
  try {
    const chain = await exportChain(store, `${rig.reg.host}/fd/small:1`);
    expect(chain.map((c) => c.exported)).toEqual(small.diffIDs);
    expect(chain.map((c) => c.recorded)).toEqual(small.diffIDs);
    expect(await store.sweepOrphans()).toEqual([]); // nothing stray was left for the sweep to find
  } finally {
    await store.close();
  }
  const listed = podmanRaw(p, ['images']);
  expect(listed.status, listed.stderr).toBe(0);
  expect(listed.stderr).toBe('');
  expect(podmanImageList(p).map((i) => i.Id)).toEqual([small.configDigest.slice(7)]);
}

const figures: Record<string, unknown>[] = [];

describe(`pulls into a ${FS_MIB} MiB ext4 that cannot hold the image`, () => {
  it('library pull, blob cache on the same filesystem: ENOSPC, nothing half made, the earlier image intact', async () => {
    await withLoopFs('ext4', FS_MIB, async (mnt) => {
      const p = new Podman(mnt);
      const cache = path.join(mnt, 'cache');
      const store = await Store.open({ root: p.root, runroot: p.runroot });
      try {
        await pull(store, `${rig.reg.host}/fd/small:1`, { tlsVerify: false, blobCacheDir: cache });
        const before = state(p.root);
        const cacheBefore = fs.readdirSync(path.join(cache, 'sha256')).sort();
        const free = usage(mnt);
        const err = await pull(store, `${rig.reg.host}/fd/big:1`, { tlsVerify: false, blobCacheDir: cache }).then(
          () => undefined,
          (e: unknown) => e as Error & { code?: string },
        );
        expect(err, 'the pull succeeded on a full disk').toBeDefined();
        expect(err!.code, err!.message).toBe('ENOSPC');
        expect(err!.message).toMatch(/ENOSPC|no space/i);
        expect(readLayers(p.root).filter((l) => l.flags?.incomplete)).toEqual([]);
        expect(state(p.root)).toEqual(before);
        expect(tempFiles(mnt)).toEqual([]);
        expect(fs.readdirSync(path.join(cache, 'sha256')).sort()).toEqual(cacheBefore);
        const after = usage(mnt);
        figures.push({ case: 'library, cache on the fs', code: err!.code, message: err!.message, usedBeforeMiB: +(free.used / 2 ** 20).toFixed(1), usedAfterMiB: +(after.used / 2 ** 20).toFixed(1), sizeMiB: +(free.size / 2 ** 20).toFixed(1) });
        // the space came back (within 1 MiB: ext4 metadata)
        expect(Math.abs(after.used - free.used)).toBeLessThan(1 << 20);
      } finally {
        await store.close();
      }
      await checkSmallIntact(p);
    });
  }, 120_000);

  it('carrier pull, blob cache elsewhere: exit 125, the error names ENOSPC, nothing half made, the earlier image intact', async () => {
    await withLoopFs('ext4', FS_MIB, async (mnt) => {
      const p = new Podman(mnt);
      const env = { CARRIER_BLOB_CACHE: path.join(rig.work, 'cache') }; // the cache is off the small filesystem
      const g = ['--root', p.root, '--runroot', p.runroot];
      const first = await runCli([...g, 'pull', '-q', '--tls-verify=false', `${rig.reg.host}/fd/small:1`], env);
      expect(first.code, first.stderr).toBe(0);
      const before = state(p.root);
      const free = usage(mnt);
      const res = await runCli([...g, 'pull', '--tls-verify=false', `${rig.reg.host}/fd/big:1`], env);
      expect(res.code, res.stderr).toBe(125);
      expect(res.stderr).toMatch(/ENOSPC|no space left/i);
      expect(readLayers(p.root).filter((l) => l.flags?.incomplete)).toEqual([]);
      expect(state(p.root)).toEqual(before);
      expect(tempFiles(mnt)).toEqual([]);
      const after = usage(mnt);
      expect(Math.abs(after.used - free.used)).toBeLessThan(1 << 20);
      // the next command works, and lists only the earlier image
      const listed = await runCli([...g, 'images', '--format', 'json'], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { Id: string }[]).map((i) => i.Id)).toEqual([small.configDigest.slice(7)]);
      figures.push({ case: 'CLI, cache elsewhere', exit: res.code, stderr: res.stderr.trim().split('\n').pop(), usedBeforeMiB: +(free.used / 2 ** 20).toFixed(1), usedAfterMiB: +(after.used / 2 ** 20).toFixed(1) });
      await checkSmallIntact(p);
    });
    console.log(`fulldisk summary ${JSON.stringify(figures)}`);
  }, 120_000);
});

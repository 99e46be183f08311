// Hard links in partial pulls (issue 22): only with the user's opt-in (pull's useHardLinks, carrier pull
// --use-hard-links, as containers-storage's use_hard_links), and only for a store file whose owner, mode, mtime and
// xattrs are the new entry's. Tested on ext4, which cannot reflink: without the opt-in every file is a copy.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Store, pull, push } from '../src/index.js';
import { startRegistry, pushImage, type TestRegistry } from './support/registry.js';
import { buildTestImage, removeWorkDir, requireTools, sha256, type TestImage } from './support/images.js';
import { requireCli, runCli } from './support/reliability.js';
import { withLoopFs } from './support/loopfs.js';
import * as H from './support/hostile.js';
import { tempDir, prng } from './support/fixtures.js';

let reg: TestRegistry;
let work: string;
let v2: TestImage;

/** Twelve files; v2 changes app/f07's content and app/f03's mode (its content stays). */
function entries(version: 1 | 2): Buffer[] {
  const out = [H.dir('app')];
  for (let i = 0; i < 12; i++) {
    const name = `app/f${String(i).padStart(2, '0')}`;
    const content = i === 7 ? Buffer.concat([prng(40_000, name), Buffer.from(`v${version}`)]) : prng(i % 2 ? 3000 : 90_000, name);
    out.push(H.file(name, content, { mode: version === 2 && i === 3 ? 0o600 : 0o644 }));
  }
  return out;
}

beforeAll(async () => {
  requireTools();
  work = tempDir('chunked-hardlink');
  reg = await startRegistry();
  const v1 = buildTestImage(path.join(work, 'v1'), { label: 'hl', layers: [{ compression: 'gzip', entries: entries(1) }] });
  v2 = buildTestImage(path.join(work, 'v2'), { label: 'hl', layers: [{ compression: 'gzip', entries: entries(2) }] });
  await pushImage(reg.host, v1.ociDir, 'src/hl:v1');
  await pushImage(reg.host, v2.ociDir, 'src/hl:v2');
  const staging = await Store.open({ root: path.join(work, 'staging', 'root'), runroot: path.join(work, 'staging', 'run'), driver: 'vfs' });
  try {
    for (const tag of ['v1', 'v2']) {
      await pull(staging, `${reg.host}/src/hl:${tag}`, { tlsVerify: false, blobCache: false });
      await push(staging, `${reg.host}/src/hl:${tag}`, `${reg.host}/chunked/hl:${tag}`, { tlsVerify: false, compressionFormat: 'zstd:chunked', blobCache: false });
    }
  } finally {
    await staging.close();
  }
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  removeWorkDir(work);
});

async function readStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The diff directory of the image's top layer. */
async function topDir(store: Store, id: string): Promise<{ dir: string; layer: string }> {
  const img = (await store.images()).find((i) => i.id === id)!;
  return { dir: store.layerDiffPath(img.topLayer!), layer: img.topLayer! };
}

let n = 0;
/** v1 then v2 into a fresh overlay store (vfs would copy the layer's tree) on an ext4 loop file system; returns v1's and v2's file inodes by name. */
async function pullBoth(options: { useHardLinks?: boolean; cli?: boolean }): Promise<{ v1: Map<string, fs.Stats>; v2: Map<string, fs.Stats>; exported: Buffer }> {
  return withLoopFs('ext4', 256, async (mnt) => {
    const root = path.join(mnt, 'root');
    const runroot = path.join(work, `run-${n++}`);
    if (options.cli) {
      requireCli();
      const g = ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay'];
      for (const [tag, extra] of [['v1', []], ['v2', ['--use-hard-links']]] as const) {
        const r = await runCli([...g, 'pull', '-q', '--tls-verify=false', ...extra, `${reg.host}/chunked/hl:${tag}`]);
        expect(r.code, r.stderr).toBe(0);
      }
    }
    const store = await Store.open({ root, runroot, driver: 'overlay' });
    try {
      if (!options.cli) {
        await pull(store, `${reg.host}/chunked/hl:v1`, { tlsVerify: false, blobCache: false });
        await pull(store, `${reg.host}/chunked/hl:v2`, { tlsVerify: false, blobCache: false, ...(options.useHardLinks ? { useHardLinks: true } : {}) });
      }
      const images = await store.images();
      const id1 = images.find((i) => i.names.some((x) => x.endsWith(':v1')))!.id;
      const id2 = images.find((i) => i.names.some((x) => x.endsWith(':v2')))!.id;
      expect(id2).toBe(v2.configDigest.slice(7));
      const stats = async (id: string): Promise<Map<string, fs.Stats>> => {
        const { dir } = await topDir(store, id);
        return new Map(fs.readdirSync(path.join(dir, 'app')).map((f) => [f, fs.lstatSync(path.join(dir, 'app', f))]));
      };
      const exported = await readStream(await store.exportLayer((await topDir(store, id2)).layer));
      return { v1: await stats(id1), v2: await stats(id2), exported };
    } finally {
      await store.close();
    }
  });
}

describe('partial pull hard links', () => {
  it('with useHardLinks, links the store files whose owner, mode, mtime and xattrs match, and copies the others', async () => {
    const { v1, v2: two, exported } = await pullBoth({ useHardLinks: true });
    expect(sha256(exported)).toBe(v2.diffIDs[0]);
    for (const [name, st] of two) {
      const shared = st.ino === v1.get(name)!.ino;
      // f07 changed content, f03 changed mode: those two are new inodes; every other file is v1's, linked.
      expect([name, shared]).toEqual([name, name !== 'f07' && name !== 'f03']);
      if (shared) expect(st.nlink).toBe(2);
    }
    expect(two.get('f03')!.mode & 0o7777).toBe(0o600);
    expect(v1.get('f03')!.mode & 0o7777).toBe(0o644);
  });

  it('without the opt-in makes no hard link, on a file system that cannot reflink either', async () => {
    const { v1, v2: two, exported } = await pullBoth({});
    expect(sha256(exported)).toBe(v2.diffIDs[0]);
    for (const [name, st] of two) {
      expect(st.ino).not.toBe(v1.get(name)!.ino);
      expect(st.nlink).toBe(1);
    }
  });

  it('carrier pull --use-hard-links opts in', async () => {
    const { v1, v2: two } = await pullBoth({ cli: true });
    expect(two.get('f00')!.ino).toBe(v1.get('f00')!.ino);
    expect(two.get('f07')!.ino).not.toBe(v1.get('f07')!.ino);
  });
});

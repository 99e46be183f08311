/**
 * saveImages / `carrier save` against real podman: what Carrier saves, `podman load` takes back with the same image
 * id (docker-archive, with one and several images; oci-archive, recompressed or from the blob cache with the stored
 * manifest kept); what `podman save` writes, `carrier load` takes back likewise. Archive layouts are compared with
 * podman's own save of the same image. Runs as root (podman's overlay store).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/store.js';
import { loadImage, saveImages } from '../src/index.js';
import { tarHeader } from '../src/save/tar.js';
import { buildTestImage, requireTools, toDockerArchive, Podman, sha256, type TestImage, removeWorkDir } from './support/images.js';
import { commitOf } from './support/store.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(repo, 'dist/cli/main.js');
let work: string;
let imgA: TestImage;
let imgB: TestImage;

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-save-'));
  imgA = buildTestImage(path.join(work, 'a'), { label: 'a' });
  imgB = buildTestImage(path.join(work, 'b'), { label: 'b' });
});

afterAll(() => removeWorkDir(work));

let n = 0;
function fresh(): Podman {
  return new Podman(path.join(work, `p${n++}`));
}

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tf', file]).toString().trim().split('\n');
}

function tarRead(file: string, member: string): Buffer {
  return execFileSync('tar', ['-xOf', file, member], { maxBuffer: 1 << 28 });
}

function podmanIds(p: Podman): Record<string, string> {
  const all = JSON.parse(p.run(['images', '--format', 'json'])) as { Id: string; Names?: string[] }[];
  const out: Record<string, string> = {};
  for (const i of all) for (const name of i.Names ?? []) out[name] = i.Id;
  return out;
}

async function carrierStore(p: Podman): Promise<Store> {
  return Store.open({ root: p.root, runroot: p.runroot });
}

describe('carrier save → podman load', () => {
  it('docker-archive: same ids, the layout podman save writes, layers byte-exact', async () => {
    const src = fresh();
    const store = await carrierStore(src);
    try {
      await store.commitImage(commitOf(imgA, ['localhost/a:1']));
      await store.commitImage(commitOf(imgB, ['quay.io/carrier/b:2']));
      const file = path.join(work, 'a.tar');
      const r = await saveImages(store, ['a:1'], { format: 'docker-archive', output: file });
      expect(r.images).toEqual([{ id: imgA.configDigest.slice(7), names: ['localhost/a:1'] }]);
      expect(r.bytes).toBe(fs.statSync(file).size);
      // The same files podman save writes for this image, in the same order (legacy v1 ids aside).
      const ref = path.join(work, 'a-podman.tar');
      src.save(ref, ['localhost/a:1']);
      const shape = (names: string[]): string[] => names.map((x) => x.replace(/^[0-9a-f]{64}\//, 'V1/'));
      expect(shape(tarList(file))).toEqual(shape(tarList(ref)));
      for (const m of ['manifest.json', `${imgA.configDigest.slice(7)}.json`, ...imgA.diffIDs.map((d) => `${d.slice(7)}.tar`)]) {
        expect(tarRead(file, m).equals(tarRead(ref, m)), m).toBe(true);
      }
      expect(Object.keys(JSON.parse(tarRead(file, 'repositories').toString()))).toEqual(['localhost/a']);
      // Headers as podman writes them: 0444, root, mtime 0.
      const verbose = execFileSync('tar', ['-tvf', file, '--numeric-owner', '--full-time']).toString().trim().split('\n');
      expect(verbose.filter((l) => l.startsWith('-')).every((l) => /^-r--r--r-- 0\/0 .* 1970-01-01 00:00:00 /.test(l))).toBe(true);

      const dst = fresh();
      expect(dst.load(file)).toEqual(['localhost/a:1']);
      expect(dst.inspect('localhost/a:1').Id).toBe(imgA.configDigest.slice(7));
      expect(dst.inspect('localhost/a:1').RootFS.Layers).toEqual(imgA.diffIDs);

      // Several images (-m) in one archive, one saved by id (no RepoTags), via the CLI.
      const multi = path.join(work, 'multi.tar');
      execFileSync('node', [cli, '--root', src.root, '--runroot', src.runroot, 'save', '-q', '-m', '-o', multi, 'a:1', 'quay.io/carrier/b:2']);
      const manifest = JSON.parse(tarRead(multi, 'manifest.json').toString()) as { RepoTags: string[] }[];
      expect(manifest.map((m) => m.RepoTags)).toEqual([['localhost/a:1'], ['quay.io/carrier/b:2']]);
      // Layers the two images share (all three: only their configs differ) are written once.
      expect(tarList(multi).filter((x) => /^[0-9a-f]{64}\.tar$/.test(x))).toHaveLength(3);
      expect(manifest.map((m) => (m as unknown as { Layers: string[] }).Layers)).toEqual([imgA.diffIDs, imgB.diffIDs].map((ds) => ds.map((d) => `${d.slice(7)}.tar`)));
      const dst2 = fresh();
      dst2.load(multi);
      expect(podmanIds(dst2)).toEqual({ 'localhost/a:1': imgA.configDigest.slice(7), 'quay.io/carrier/b:2': imgB.configDigest.slice(7) });
      const byId = path.join(work, 'byid.tar');
      await saveImages(store, [imgB.configDigest.slice(7, 19)], { output: byId });
      expect(JSON.parse(tarRead(byId, 'manifest.json').toString())[0].RepoTags).toEqual([]);
      // Without -m, two different images are refused; unknown images exit 125.
      const two = spawnSync('node', [cli, '--root', src.root, '--runroot', src.runroot, 'save', '-o', path.join(work, 'x.tar'), 'a:1', 'quay.io/carrier/b:2']);
      expect(two.status).toBe(125);
      const unknown = spawnSync('node', [cli, '--root', src.root, '--runroot', src.runroot, 'save', '-o', path.join(work, 'y.tar'), 'nosuch:1']);
      expect(unknown.status).toBe(125);
      expect(unknown.stderr.toString()).toMatch(/nosuch:1: image not known/);
      expect(fs.existsSync(path.join(work, 'y.tar'))).toBe(false);
    } finally {
      await store.close();
    }
  }, 180_000);

  it('oci-archive: recompressed with a rewritten manifest, or blobs and manifest from the blob cache as they are', async () => {
    const src = fresh();
    const store = await carrierStore(src);
    const cache = path.join(work, 'blob-cache');
    try {
      await store.commitImage(commitOf(imgA, ['localhost/a:1']));
      // No blob cache: layers gzip-recompressed, the manifest rewritten (OCI media types, new digests).
      const file = path.join(work, 'a-oci.tar');
      const r = await saveImages(store, ['a:1'], { format: 'oci-archive', output: file, blobCache: path.join(work, 'empty-cache') });
      expect(r.layers.map((l) => l.source)).toEqual(['recompressed', 'recompressed', 'recompressed']);
      expect(r.images[0]!.manifestReused).toBe(false);
      const ref = path.join(work, 'a-oci-podman.tar');
      src.save(ref, ['localhost/a:1'], 'oci-archive');
      // The same layout as podman's: same entries, same index.json (podman also gzips and rewrites).
      const index = JSON.parse(tarRead(file, 'index.json').toString());
      const podmanIndex = JSON.parse(tarRead(ref, 'index.json').toString());
      expect(index.manifests[0].annotations).toEqual(podmanIndex.manifests[0].annotations);
      expect(index.manifests[0].annotations).toEqual({ 'org.opencontainers.image.ref.name': 'localhost/a:1' });
      expect(tarRead(file, 'oci-layout').equals(tarRead(ref, 'oci-layout'))).toBe(true);
      expect(tarList(file).filter((x) => !x.startsWith('blobs/sha256/') || x === 'blobs/sha256/')).toEqual(tarList(ref).filter((x) => !x.startsWith('blobs/sha256/') || x === 'blobs/sha256/'));
      const dst = fresh();
      dst.load(file);
      expect(dst.inspect('localhost/a:1').Id).toBe(imgA.configDigest.slice(7));
      expect(dst.inspect('localhost/a:1').Digest).toBe(r.images[0]!.manifestDigest);

      // Uncompressed: layer digests are the diff_ids.
      const plain = path.join(work, 'a-oci-plain.tar');
      const rp = await saveImages(store, ['a:1'], { format: 'oci-archive', output: plain, compression: 'none', blobCache: false });
      expect(rp.layers.map((l) => l.digest)).toEqual(imgA.diffIDs);
      const dstp = fresh();
      dstp.load(plain);
      expect(dstp.inspect('localhost/a:1').Id).toBe(imgA.configDigest.slice(7));

      // The compressed blobs in the cache: written as they are, with the stored manifest bytes (digest kept).
      for (const l of imgA.layers) {
        fs.mkdirSync(path.join(cache, 'sha256'), { recursive: true });
        fs.writeFileSync(path.join(cache, 'sha256', l.digest.slice(7)), l.blob);
      }
      const cached = path.join(work, 'a-oci-cached.tar');
      const rc = await saveImages(store, ['a:1'], { format: 'oci-archive', output: cached, blobCache: cache });
      expect(rc.images[0]!.manifestReused).toBe(true);
      expect(rc.images[0]!.manifestDigest).toBe(imgA.manifestDigest);
      expect(rc.layers.map((l) => l.digest)).toEqual(imgA.layers.map((l) => l.digest));
      expect(tarRead(cached, `blobs/sha256/${imgA.manifestDigest.slice(7)}`).equals(imgA.manifest)).toBe(true);
      const dstc = fresh();
      dstc.load(cached);
      expect(dstc.inspect('localhost/a:1').Id).toBe(imgA.configDigest.slice(7));
      expect(dstc.inspect('localhost/a:1').Digest).toBe(imgA.manifestDigest);

      // oci-dir through the CLI: the same layout in a directory, which skopeo and carrier load read.
      const dir = path.join(work, 'a-oci-dir');
      execFileSync('node', [cli, '--root', src.root, '--runroot', src.runroot, 'save', '-q', '--format', 'oci-dir', '-o', dir, 'a:1']);
      expect(fs.readdirSync(dir).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
      const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${dir}:localhost/a:1`]).toString()) as { rootfs: { diff_ids: string[] } };
      expect(inspected.rootfs.diff_ids).toEqual(imgA.diffIDs);
      const other = fresh();
      const otherStore = await carrierStore(other);
      try {
        const loaded = await loadImage(otherStore, dir);
        expect(loaded.images).toEqual([{ id: imgA.configDigest.slice(7), names: ['localhost/a:1'] }]);
      } finally {
        await otherStore.close();
      }
    } finally {
      await store.close();
    }
  }, 180_000);
});

describe('podman save → carrier load', () => {
  it('docker-archive and oci-archive load with the same image id', async () => {
    const src = fresh();
    const made = path.join(work, 'skopeo-a.tar');
    toDockerArchive(imgA, made, 'localhost/from-podman:1');
    src.load(made);
    for (const format of ['docker-archive', 'oci-archive'] as const) {
      const file = path.join(work, `podman-${format}.tar`);
      src.save(file, ['localhost/from-podman:1'], format);
      const dst = fresh();
      const store = await carrierStore(dst);
      try {
        const r = await loadImage(store, file);
        expect(r.images.map((i) => i.id)).toEqual([imgA.configDigest.slice(7)]);
        expect((await store.requireImage('from-podman:1')).id).toBe(imgA.configDigest.slice(7));
        // And back: carrier save of what it loaded, loaded by podman again, keeps the id.
        const again = path.join(work, `again-${format}.tar`);
        await saveImages(store, ['from-podman:1'], { format, output: again });
        const p2 = fresh();
        p2.load(again);
        expect(p2.inspect('localhost/from-podman:1').Id).toBe(imgA.configDigest.slice(7));
      } finally {
        await store.close();
      }
    }
  }, 180_000);
});

describe('tar headers', () => {
  it('long, non-ASCII names, big ids and xattrs go into PAX records GNU tar reads back', () => {
    const dir = path.join(work, 'pax');
    fs.mkdirSync(dir);
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    const data = Buffer.from('hello\n');
    const pad = Buffer.alloc(512 - data.length);
    const tar = Buffer.concat([
      tarHeader({ name: long, type: 'file', mode: 0o640, size: data.length, uid: 3_000_000, gid: 2_500_000, mtime: 1_700_000_000.5 }), data, pad,
      tarHeader({ name: Buffer.from([0x6e, 0xe9, 0xff]), type: 'symlink', mode: 0o777, linkname: 'x'.repeat(150) }),
      tarHeader({ name: 'x', type: 'file', mode: 0o644, size: 0, xattrs: new Map([['user.carrier', Buffer.from('v')]]) }),
      Buffer.alloc(1024),
    ]);
    const file = path.join(dir, 't.tar');
    fs.writeFileSync(file, tar);
    const listing = execFileSync('tar', ['--xattrs', '-tvf', file, '--numeric-owner']).toString();
    expect(listing).toContain(long);
    expect(listing).toContain('3000000/2500000');
    expect(listing).toContain('x'.repeat(150));
    execFileSync('tar', ['--xattrs', '--xattrs-include=user.*', '-xf', file, '-C', dir]);
    expect(fs.readFileSync(path.join(dir, long), 'utf8')).toBe('hello\n');
    expect(fs.readlinkSync(Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x6e, 0xe9, 0xff])]), { encoding: 'buffer' }).toString()).toBe('x'.repeat(150));
    expect(execFileSync('getfattr', ['-n', 'user.carrier', '--only-values', path.join(dir, 'x')]).toString()).toBe('v');
    expect(sha256(Buffer.alloc(0))).toMatch(/^sha256:/);
  });
});

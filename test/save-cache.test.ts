/**
 * save (and copy from the store to an archive) when a blob in the blob cache no longer verifies: the cache checks
 * only a blob's size, so one with a byte flipped (a crash left it so) is handed out as it is. A file or directory
 * output is written again from the start once the bad blob is evicted (the layer rebuilt from the store); a stream,
 * FIFO or device output has the cached blobs hashed before its first byte. Either way the archive `podman load`s with
 * the same image id, the bad blob is gone from the cache and the good ones stay; a save that still fails leaves no
 * partial file. Runs as root (podman's overlay store).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Store } from '../src/store/store.js';
import { copy, saveImages } from '../src/index.js';
import * as H from './support/hostile.js';
import { buildTestImage, requireTools, Podman, type TestImage, removeWorkDir } from './support/images.js';
import { commitOf } from './support/store.js';

const o = { mtime: 1_700_000_000 };
const cli = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), 'dist/cli/main.js');
let work: string;
let img: TestImage;

beforeAll(() => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-save-cache-'));
  // Three gzip layers; the first one large (incompressible), so its blob streams in many chunks.
  img = buildTestImage(path.join(work, 'img'), {
    label: 'save-cache',
    layers: [
      { compression: 'gzip', entries: [H.dir('data/', o), H.file('data/big.bin', randomBytes(2 << 20), o)] },
      { compression: 'gzip', entries: [H.dir('one/', o), H.file('one/file.txt', 'layer one\n'.repeat(100), o)] },
      { compression: 'gzip', entries: [H.dir('two/', o), H.file('two/file.txt', 'layer two\n'.repeat(100), o)] },
    ],
  });
});

afterAll(() => removeWorkDir(work));

let n = 0;
function dir(): string {
  const d = path.join(work, `case${n++}`);
  fs.mkdirSync(d);
  return d;
}

interface Rig {
  podman: Podman;
  store: Store;
  /** The store's blob cache, holding every layer blob of the stored manifest. */
  cache: string;
  blob(i: number): string;
}

/** A store with the image committed and its blob cache filled, the first layer's cached blob with one byte flipped. */
async function rig(): Promise<Rig> {
  const podman = new Podman(path.join(work, `p${n++}`));
  const store = await Store.open({ root: podman.root, runroot: podman.runroot });
  await store.commitImage(commitOf(img, ['localhost/cached:1']));
  const cache = store.config.blobCache;
  fs.mkdirSync(path.join(cache, 'sha256'), { recursive: true });
  const blob = (i: number): string => path.join(cache, 'sha256', img.layers[i]!.digest.slice(7));
  for (const [i, l] of img.layers.entries()) fs.writeFileSync(blob(i), l.blob);
  // Same size, one byte changed: the cache's size check cannot tell.
  const bytes = fs.readFileSync(blob(0));
  bytes[bytes.length >> 1] ^= 0xff;
  fs.writeFileSync(blob(0), bytes);
  return { podman, store, cache, blob };
}

/** The layers' sources as saveImages reports them: the bad blob's layer rebuilt, the others from the cache. */
const REBUILT_FIRST = ['recompressed', 'blob-cache', 'blob-cache'];

function loadsWithSameId(archive: string): void {
  const p = new Podman(path.join(work, `load${n++}`));
  p.load(archive);
  expect(p.inspect('localhost/cached:1').Id).toBe(img.configDigest.slice(7));
}

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tf', file]).toString().trim().split('\n');
}

describe('save from a blob cache holding a blob that no longer verifies', () => {
  it('oci-archive to a file: written again from the start once the bad blob is evicted; the old file is replaced only when complete', async () => {
    const { store, blob } = await rig();
    try {
      const d = dir();
      const file = path.join(d, 'out.tar');
      fs.writeFileSync(file, 'old\n');
      // Every temporary archive that appears beside the output.
      const temps = new Set<string>();
      const watcher = fs.watch(d, (_event, name) => {
        if (name?.includes('carrier-tmp')) temps.add(name);
      });
      let r;
      try {
        r = await saveImages(store, ['cached:1'], { format: 'oci-archive', output: file });
      } finally {
        watcher.close();
      }
      // The first attempt wrote one (and removed it when the bad blob failed it), the second another.
      expect(temps.size).toBe(2);
      expect(fs.readdirSync(d)).toEqual(['out.tar']);
      expect(r.bytes).toBe(fs.statSync(file).size);
      expect(r.layers.map((l) => l.source)).toEqual(REBUILT_FIRST);
      expect(r.images[0]!.manifestReused).toBe(false);
      expect(fs.existsSync(blob(0))).toBe(false);
      expect([1, 2].map((i) => fs.existsSync(blob(i)))).toEqual([true, true]);
      expect(r.layers.slice(1).map((l) => l.digest)).toEqual(img.layers.slice(1).map((l) => l.digest));
      loadsWithSameId(file);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('oci-dir: the directory is written again from the start; skopeo reads the image back', async () => {
    const { store, blob } = await rig();
    try {
      const out = path.join(dir(), 'layout');
      const r = await saveImages(store, ['cached:1'], { format: 'oci-dir', output: out });
      expect(r.layers.map((l) => l.source)).toEqual(REBUILT_FIRST);
      expect(fs.existsSync(blob(0))).toBe(false);
      // Only the blobs of the image written (none of the first attempt's), and none half written.
      const blobs = fs.readdirSync(path.join(out, 'blobs/sha256')).sort();
      expect(blobs).toEqual([...new Set([...r.layers.map((l) => l.digest), img.configDigest, r.images[0]!.manifestDigest!].map((x) => x.slice(7)))].sort());
      const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${out}:localhost/cached:1`]).toString()) as { rootfs: { diff_ids: string[] } };
      expect(inspected.rootfs.diff_ids).toEqual(img.diffIDs);
      const archive = path.join(dir(), 'from-dir.tar');
      execFileSync('skopeo', ['copy', '-q', `oci:${out}:localhost/cached:1`, `oci-archive:${archive}:localhost/cached:1`]);
      loadsWithSameId(archive);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('oci-archive to a stream: the cached blobs are hashed before the first byte, so the one archive written is whole', async () => {
    const { store, blob } = await rig();
    try {
      const file = path.join(dir(), 'streamed.tar');
      const reader = spawn('sh', ['-c', 'cat > "$1"', 'sh', file], { stdio: ['pipe', 'ignore', 'ignore'] });
      const exited = new Promise<number | null>((resolve) => reader.on('exit', (code) => resolve(code)));
      const r = await saveImages(store, ['cached:1'], { format: 'oci-archive', output: reader.stdin });
      reader.stdin.end();
      expect(await exited).toBe(0);
      expect(fs.statSync(file).size).toBe(r.bytes);
      expect(r.layers.map((l) => l.source)).toEqual(REBUILT_FIRST);
      expect(fs.existsSync(blob(0))).toBe(false);
      expect(tarList(file).filter((x) => x === 'index.json')).toEqual(['index.json']);
      loadsWithSameId(file);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('carrier save --format oci-archive to stdout (a pipe) and -o a FIFO: whole archives, the bad blob evicted', async () => {
    const { podman, store, blob } = await rig();
    await store.close();
    const d = dir();
    const piped = path.join(d, 'piped.tar');
    const sh = spawnSync('sh', ['-c', 'node "$1" --root "$2" --runroot "$3" save -q --format oci-archive cached:1 | cat > "$4"', 'sh', cli, podman.root, podman.runroot, piped]);
    expect(sh.status, sh.stderr.toString()).toBe(0);
    expect(fs.existsSync(blob(0))).toBe(false);
    loadsWithSameId(piped);

    // Broken again, and saved into a FIFO by path.
    fs.writeFileSync(blob(0), Buffer.alloc(img.layers[0]!.size));
    const fifo = path.join(d, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const copied = path.join(d, 'from-fifo.tar');
    const reader = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, copied], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => reader.on('exit', (code) => resolve(code)));
    const r = spawnSync('node', [cli, '--root', podman.root, '--runroot', podman.runroot, 'save', '-q', '--format', 'oci-archive', '-o', fifo, 'cached:1']);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(await exited).toBe(0);
    expect(fs.existsSync(blob(0))).toBe(false);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    loadsWithSameId(copied);
  }, 120_000);

  it('copy containers-storage: → oci-archive: into a FIFO hashes the cached blobs first; into a file it runs again', async () => {
    const { store, blob } = await rig();
    try {
      const d = dir();
      const fifo = path.join(d, 'pipe');
      execFileSync('mkfifo', [fifo]);
      const copied = path.join(d, 'from-fifo.tar');
      const reader = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, copied], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => reader.on('exit', (code) => resolve(code)));
      const r = await copy('containers-storage:cached:1', `oci-archive:${fifo}:localhost/cached:1`, { store });
      expect(await exited).toBe(0);
      expect(r.layers[0]!.state).toBe('recompressed');
      expect(fs.existsSync(blob(0))).toBe(false);
      loadsWithSameId(copied);

      fs.writeFileSync(blob(0), Buffer.alloc(img.layers[0]!.size));
      const file = path.join(d, 'copied.tar');
      const again = await copy('containers-storage:cached:1', `oci-archive:${file}:localhost/cached:1`, { store });
      expect(again.layers[0]!.state).toBe('recompressed');
      expect(fs.existsSync(blob(0))).toBe(false);
      expect(fs.readdirSync(d).sort()).toEqual(['copied.tar', 'from-fifo.tar', 'pipe']);
      loadsWithSameId(file);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('docker-archive never reads the cache: the bad blob does not matter and stays', async () => {
    const { store, blob } = await rig();
    try {
      const file = path.join(dir(), 'docker.tar');
      await saveImages(store, ['cached:1'], { format: 'docker-archive', output: file });
      expect(fs.existsSync(blob(0))).toBe(true);
      loadsWithSameId(file);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('a save that still fails (a layer the store rebuilds no longer matches its diff_id) leaves no partial file, and the old file as it was', async () => {
    const { podman, store, blob } = await rig();
    try {
      // The second layer is not cached, and its file in the store changed after commit: rebuilding it fails.
      fs.unlinkSync(blob(1));
      const overlay = path.join(podman.root, 'overlay');
      const changed = fs
        .readdirSync(overlay)
        .map((l) => path.join(overlay, l, 'diff/one/file.txt'))
        .find((f) => fs.existsSync(f))!;
      fs.writeFileSync(changed, 'changed after commit\n');
      const d = dir();
      const file = path.join(d, 'out.tar');
      fs.writeFileSync(file, 'old\n');
      await expect(saveImages(store, ['cached:1'], { format: 'oci-archive', output: file })).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH' });
      expect(fs.readFileSync(file, 'utf8')).toBe('old\n');
      const fresh = path.join(d, 'new.tar');
      await expect(saveImages(store, ['cached:1'], { format: 'oci-archive', output: fresh })).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH' });
      expect(fs.readdirSync(d)).toEqual(['out.tar']);
      const layout = path.join(d, 'layout');
      await expect(saveImages(store, ['cached:1'], { format: 'oci-dir', output: layout })).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH' });
      expect(fs.readdirSync(d)).toEqual(['out.tar']);
      // The bad cached blob was still found and evicted on the way; the good one stays.
      expect(fs.existsSync(blob(0))).toBe(false);
      expect(fs.existsSync(blob(2))).toBe(true);
    } finally {
      await store.close();
    }
  }, 120_000);
});

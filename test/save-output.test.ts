/**
 * Where `save -o F` and `export -o F` write (issue 18 item 4): a regular file is written beside F and renamed into
 * place only when complete, so a failure leaves no partial F and no temporary file; a FIFO or a device is written as
 * it is and never removed, even when its reader goes away; an existing non-empty file is refused by docker-archive
 * and replaced by oci-archive and export, as podman 4.3.1 does. Runs as root (podman's overlay store).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Store } from '../src/store/store.js';
import { exportContainer, saveImages } from '../src/index.js';
import * as H from './support/hostile.js';
import { buildTestImage, requireTools, Podman, type TestImage, removeWorkDir } from './support/images.js';
import { commitOf } from './support/store.js';

const o = { mtime: 1_700_000_000 };
const cli = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), 'dist/cli/main.js');
let work: string;
let img: TestImage;
let p: Podman;
let store: Store;

beforeAll(async () => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-save-output-'));
  // A layer well over a pipe's buffer, so a reader that goes away makes the writer fail.
  img = buildTestImage(path.join(work, 'img'), {
    label: 'save-output',
    layers: [{ compression: 'none', entries: [H.dir('data/', o), H.file('data/big.bin', randomBytes(2 << 20), o)] }],
  });
  p = new Podman(path.join(work, 'podman'));
  store = await Store.open({ root: p.root, runroot: p.runroot });
  await store.commitImage(commitOf(img, ['localhost/out:1']));
  await store.createContainer('out:1', { names: ['out-c'] });
}, 120_000);

afterAll(async () => {
  await store?.close();
  removeWorkDir(work);
});

let n = 0;
function dir(): string {
  const d = path.join(work, `case${n++}`);
  fs.mkdirSync(d);
  return d;
}

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tf', file]).toString().trim().split('\n');
}

/** A FIFO and a reader that opens it, reads at most 10 bytes and goes away. */
function fifoWithShortReader(d: string): { fifo: string; reader: ChildProcess; exited: Promise<void> } {
  const fifo = path.join(d, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('sh', ['-c', 'head -c 10 "$1" >/dev/null', 'sh', fifo], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => reader.on('exit', () => resolve()));
  return { fifo, reader, exited };
}

describe('save -o / export -o: a FIFO or a device', () => {
  for (const format of ['docker-archive', 'oci-archive'] as const) {
    it(`${format}: a FIFO whose reader goes away fails the save and is still there`, async () => {
      const d = dir();
      const { fifo, exited } = fifoWithShortReader(d);
      await expect(saveImages(store, ['out:1'], { format, output: fifo })).rejects.toThrow();
      await exited;
      expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
      expect(fs.readdirSync(d)).toEqual(['pipe']);
    });
  }

  it('export: a FIFO whose reader goes away fails the export and is still there', async () => {
    const d = dir();
    const { fifo, exited } = fifoWithShortReader(d);
    await expect(exportContainer(store, 'out-c', fifo)).rejects.toThrow();
    await exited;
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(d)).toEqual(['pipe']);
  });

  it('a FIFO with a reader that reads it all gets the whole archive', async () => {
    const d = dir();
    const fifo = path.join(d, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const copy = path.join(d, 'copy.tar');
    const reader = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, copy], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => reader.on('exit', (code) => resolve(code)));
    const r = await saveImages(store, ['out:1'], { format: 'docker-archive', output: fifo });
    expect(await exited).toBe(0);
    expect(fs.statSync(copy).size).toBe(r.bytes);
    expect(tarList(copy)).toContain('manifest.json');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });

  it('/dev/null: save and export write to it, and it stays the character device it was', async () => {
    const before = fs.statSync('/dev/null');
    const r = await saveImages(store, ['out:1'], { format: 'docker-archive', output: '/dev/null' });
    expect(r.bytes).toBeGreaterThan(2 << 20);
    await saveImages(store, ['out:1'], { format: 'oci-archive', output: '/dev/null' });
    await exportContainer(store, 'out-c', '/dev/null');
    const after = fs.statSync('/dev/null');
    expect(after.isCharacterDevice()).toBe(true);
    expect([after.ino, after.rdev, after.mode]).toEqual([before.ino, before.rdev, before.mode]);
    expect(fs.readdirSync('/dev').filter((x) => x.includes('carrier-tmp'))).toEqual([]);
  });
});

describe('save -o / export -o: a regular file', () => {
  it('success: the file holds the archive, and no temporary file is left', async () => {
    const d = dir();
    const file = path.join(d, 'a.tar');
    const r = await saveImages(store, ['out:1'], { format: 'docker-archive', output: file });
    expect(fs.statSync(file).size).toBe(r.bytes);
    expect(tarList(file)).toContain('manifest.json');
    const oci = path.join(d, 'a-oci.tar');
    await saveImages(store, ['out:1'], { format: 'oci-archive', output: oci });
    expect(tarList(oci)).toContain('index.json');
    const exp = path.join(d, 'export.tar');
    const e = await exportContainer(store, 'out-c', exp);
    expect(fs.statSync(exp).size).toBe(e.bytes);
    expect(tarList(exp)).toContain('data/big.bin');
    expect(fs.readdirSync(d).sort()).toEqual(['a-oci.tar', 'a.tar', 'export.tar']);
  });

  it('docker-archive refuses an existing non-empty file and leaves it as it was (podman: "doesn\'t support modifying existing images")', async () => {
    const d = dir();
    const file = path.join(d, 'existing.tar');
    fs.writeFileSync(file, 'precious\n');
    await expect(saveImages(store, ['out:1'], { format: 'docker-archive', output: file })).rejects.toMatchObject({
      code: 'CARRIER_EXISTS',
      message: expect.stringContaining("docker-archive doesn't support modifying existing images"),
    });
    expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');
    expect(fs.readdirSync(d)).toEqual(['existing.tar']);
    // An existing empty file is written, as podman does.
    const empty = path.join(d, 'empty.tar');
    fs.writeFileSync(empty, '');
    await saveImages(store, ['out:1'], { format: 'docker-archive', output: empty });
    expect(tarList(empty)).toContain('manifest.json');
  });

  it('oci-archive and export replace an existing file, as podman does; a symlink to it stays a symlink', async () => {
    const d = dir();
    const file = path.join(d, 'existing.tar');
    fs.writeFileSync(file, 'old\n');
    fs.chmodSync(file, 0o600);
    const link = path.join(d, 'link.tar');
    fs.symlinkSync('existing.tar', link);
    await saveImages(store, ['out:1'], { format: 'oci-archive', output: link });
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(tarList(file)).toContain('index.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    await exportContainer(store, 'out-c', file);
    expect(tarList(file)).toContain('data/big.bin');
    expect(fs.readdirSync(d).sort()).toEqual(['existing.tar', 'link.tar']);
  });

  it('a failure while writing leaves no partial file and no temporary file; an existing file keeps its content', async () => {
    // A separate store whose layer's file is changed after commit: rebuilding it fails its diff_id check mid-write.
    const bad = new Podman(path.join(work, 'podman-bad'));
    const s = await Store.open({ root: bad.root, runroot: bad.runroot });
    try {
      await s.commitImage(commitOf(img, ['localhost/bad:1']));
      const overlay = path.join(bad.root, 'overlay');
      const big = fs
        .readdirSync(overlay)
        .map((l) => path.join(overlay, l, 'diff/data/big.bin'))
        .find((f) => fs.existsSync(f))!;
      fs.writeFileSync(big, randomBytes(2 << 20));
      const d = dir();
      for (const format of ['docker-archive', 'oci-archive'] as const) {
        const file = path.join(d, `${format}.tar`);
        await expect(saveImages(s, ['bad:1'], { format, compression: 'none', output: file })).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH' });
        expect(fs.existsSync(file)).toBe(false);
      }
      const kept = path.join(d, 'kept.tar');
      fs.writeFileSync(kept, 'kept\n');
      // compression 'none': the layer is streamed into the archive (not spooled first), so it fails mid-write.
      await expect(saveImages(s, ['bad:1'], { format: 'oci-archive', compression: 'none', output: kept })).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH' });
      expect(fs.readFileSync(kept, 'utf8')).toBe('kept\n');
      expect(fs.readdirSync(d)).toEqual(['kept.tar']);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('an aborted save or export leaves nothing behind', async () => {
    const d = dir();
    const ac = new AbortController();
    const file = path.join(d, 'aborted.tar');
    // Aborted as soon as the temporary file appears beside the output.
    const watcher = fs.watch(d, () => ac.abort());
    try {
      await expect(saveImages(store, ['out:1'], { format: 'docker-archive', output: file, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
      const ac2 = new AbortController();
      const exp = path.join(d, 'export.tar');
      const w2 = fs.watch(d, () => ac2.abort());
      try {
        await expect(exportContainer(store, 'out-c', exp, { signal: ac2.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
      } finally {
        w2.close();
      }
    } finally {
      watcher.close();
    }
    expect(fs.readdirSync(d)).toEqual([]);
  });
});

describe('carrier save -o (CLI)', () => {
  it('refuses an existing non-empty file with exit 125, and `-o /dev/stdout | head -c10` leaves /dev/stdout in place', () => {
    const d = dir();
    const file = path.join(d, 'existing.tar');
    fs.writeFileSync(file, 'precious\n');
    const r = spawnSync('node', [cli, '--root', p.root, '--runroot', p.runroot, 'save', '-o', file, 'out:1']);
    expect(r.status).toBe(125);
    expect(r.stderr.toString()).toContain("docker-archive doesn't support modifying existing images");
    expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');

    const before = fs.lstatSync('/dev/stdout');
    const sh = spawnSync('sh', ['-c', 'node "$1" --root "$2" --runroot "$3" save -o /dev/stdout out:1 | head -c10 | wc -c', 'sh', cli, p.root, p.runroot]);
    expect(sh.stdout.toString().trim()).toBe('10');
    const after = fs.lstatSync('/dev/stdout');
    expect([after.ino, after.mode]).toEqual([before.ino, before.mode]);
  });
});

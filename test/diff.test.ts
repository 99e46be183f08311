/**
 * `carrier diff` against `podman diff` (podman 4.3.1) on one overlay store: a container podman made and one Carrier
 * made, each changed through its mount (files added, changed and deleted, a directory deleted and made again — an
 * opaque directory over a lower one —, a name a lower layer had whited out added back, a symlink, a hard link, a
 * fifo, a mode change), and an image whose layers carry whiteouts and an opaque directory. Same lines in the same
 * order, same JSON. The changed layer, as the driver archives it, also goes through compressLayer and back. On a vfs store podman takes a directory's entries in Go map order, so there the set is compared.
 *
 * Needs: podman (Debian package), root (podman's overlay store), and `npx tsc -p tsconfig.json` first (the CLI runs
 * from dist/).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { Store, applyLayer, assembleLayer, compressLayer, createContainer, diff, mountContainer, unmountContainer } from '../src/index.js';
import { createDriver } from '../src/drivers/index.js';
import { readAll } from './support/layer.js';
import { tempDir } from './support/fixtures.js';
import { buildTestImage, defaultLayers, Podman, removeWorkDir, requireTools, toOciArchive } from './support/images.js';

const T = 180_000;
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

/** The same changes, made through a container's mounted root file system. */
function mutate(root: string): void {
  const p = (rel: string): string => path.join(root, rel);
  fs.writeFileSync(p('etc/new.conf'), 'added\n');
  fs.writeFileSync(p('etc/hostname'), 'changed, but podman manages it\n');
  fs.appendFileSync(p('data/kept.txt'), 'and changed\n');
  fs.rmSync(p('data/link'));
  fs.rmSync(p('top/readme'));
  fs.rmSync(p('data/opaque'), { recursive: true });
  fs.mkdirSync(p('data/opaque'));
  fs.writeFileSync(p('data/opaque/again.txt'), 'a new directory where the old one was\n');
  fs.writeFileSync(p('data/gone.txt'), 'back after a lower layer deleted it\n');
  fs.mkdirSync(p('newdir/deep/deeper'), { recursive: true });
  fs.writeFileSync(p('newdir/deep/deeper/f'), 'deep\n');
  fs.linkSync(p('newdir/deep/deeper/f'), p('newdir/hard'));
  fs.symlinkSync('/etc/new.conf', p('newdir/link'));
  spawnSync('mkfifo', [p('newdir/fifo')]);
  fs.chmodSync(p('top'), 0o700);
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

let work: string;
let pm: Podman;
let imageId: string;
let archive: string;

function carrier(args: string[], driver = pm): Run {
  const r = spawnSync(process.execPath, [CLI, '--root', driver.root, '--runroot', driver.runroot, '--storage-driver', driver.driver, ...args], {
    env: { ...driver.env, LC_ALL: 'C.UTF-8' },
    encoding: 'utf8',
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** podman on this test's store with the store's own global options (its --tmpdir too), reporting rather than throwing. */
function podman(args: string[], driver = pm): Run {
  const r = spawnSync('podman', [...driver.globalArgs, ...args], {
    env: driver.env,
    encoding: 'utf8',
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function expectSame(args: string[], driver = pm): string {
  const ours = carrier(args, driver);
  const theirs = podman(args, driver);
  expect(theirs.status, theirs.stderr).toBe(0);
  expect(ours.status, ours.stderr).toBe(0);
  expect(ours.stdout).toBe(theirs.stdout);
  return ours.stdout;
}

beforeAll(() => {
  requireTools();
  expect(fs.existsSync(CLI), `${CLI} is missing: run npx tsc -p tsconfig.json`).toBe(true);
  work = tempDir('diff');
  pm = new Podman(path.join(work, 'overlay'));
  archive = path.join(work, 'image.tar');
  toOciArchive(buildTestImage(path.join(work, 'oci'), { layers: defaultLayers('diff') }), archive, 'localhost/difftest:1');
  pm.load(archive);
  imageId = pm.inspect('localhost/difftest:1').Id;
}, T);

afterAll(() => {
  pm?.reset();
  removeWorkDir(work);
});

describe('diff on an overlay store, as podman diff', () => {
  it('lists the changes of a container podman made the same, in lines and in JSON', async () => {
    const id = pm.run(['create', imageId, '/bin/true']).trim();
    mutate(pm.run(['mount', id]).trim());
    pm.run(['umount', id]);

    const lines = expectSame(['diff', id]);
    for (const line of ['C /data', 'D /data/opaque', 'A /data/opaque/again.txt', 'A /data/gone.txt', 'D /top/readme', 'C /top', 'A /newdir/fifo']) {
      expect(lines.split('\n'), line).toContain(line);
    }
    expect(lines).not.toContain('/etc/hostname');
    expectSame(['diff', '--format', 'json', id]);
    expectSame(['container', 'diff', id]);

    const store = await Store.open({ root: pm.root, runroot: pm.runroot, driver: 'overlay' });
    try {
      const result = await diff(store, id);
      expect(result.type).toBe('container');
      expect(result.changes.map((c) => `${c.kind} ${c.path}\n`).join('')).toBe(lines);
    } finally {
      await store.close();
    }
  }, T);

  it("lists the changes of a container Carrier made (podman sees it in the same store) the same", async () => {
    const store = await Store.open({ root: pm.root, runroot: pm.runroot, driver: 'overlay' });
    let id: string;
    try {
      id = (await createContainer(store, imageId, { name: 'carrier-made' })).id;
      mutate(await mountContainer(store, id));
      await unmountContainer(store, id);
    } finally {
      await store.close();
    }
    const lines = expectSame(['diff', id]);
    expect(lines).toContain('A /newdir/deep/deeper/f\n');
    expectSame(['diff', '--format', 'json', 'carrier-made']);
  }, T);

  it("compresses that container's layer, as the driver archives it, in one pass whose tar-split rebuilds the tar", async () => {
    const store = await Store.open({ root: pm.root, runroot: pm.runroot, driver: 'overlay' });
    let layer: string;
    try {
      layer = (await store.container('carrier-made'))!.layer;
    } finally {
      await store.close();
    }
    const driver = createDriver({ driver: 'overlay', graphroot: pm.root });
    const tar = await readAll(await driver.diff(layer, undefined));
    const split = path.join(work, 'layer.tar-split.gz');
    const job = compressLayer(await driver.diff(layer, undefined), { compression: 'zstd', tarSplitPath: split });
    const blob = await readAll(job.stream);
    const r = await job.result;
    expect(r.diffID).toBe('sha256:' + crypto.createHash('sha256').update(tar).digest('hex'));
    expect(r.uncompressedSize).toBe(tar.length);
    expect(r.digest).toBe('sha256:' + crypto.createHash('sha256').update(blob).digest('hex'));
    expect(spawnSync('zstd', ['-dcq'], { input: blob, maxBuffer: 1 << 28 }).stdout.equals(tar)).toBe(true);
    const dir = fs.mkdtempSync(path.join(work, 'applied-'));
    await applyLayer(Readable.from([blob]), dir, { expectedDiffID: r.diffID, expectedDigest: r.digest });
    expect((await readAll(assembleLayer(split, dir))).equals(tar)).toBe(true);
  }, T);

  it("lists an image's top layer against its parent the same", () => {
    expect(expectSame(['diff', imageId])).toBe('A /top\nA /top/readme\n');
  }, T);

  it('refuses what names nothing, and a --format other than json, as podman does (exit 125)', () => {
    const r = carrier(['diff', 'no-such-thing']);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain('no-such-thing');
    expect(podman(['diff', 'no-such-thing']).status).toBe(125);
    const f = carrier(['diff', '--format', 'table', imageId]);
    expect(f.status).toBe(125);
    expect(f.stderr).toContain("only supported value for '--format' is 'json'");
  });

  it('shows an empty diff of an unchanged container as podman does', () => {
    const id = pm.run(['create', imageId, '/bin/true']).trim();
    expectSame(['diff', id]);
    expect(expectSame(['diff', '--format', 'json', id])).toBe('{}\n');
  }, T);
});

describe('diff on a vfs store', () => {
  it('finds the same changes as podman (whose order there is Go map order)', () => {
    const vfs = new Podman(path.join(work, 'vfs'), 'vfs');
    try {
      vfs.load(archive);
      const id = vfs.run(['create', 'localhost/difftest:1', '/bin/true']).trim();
      mutate(vfs.run(['mount', id]).trim());
      vfs.run(['umount', id]);
      const ours = carrier(['diff', id], vfs);
      const theirs = podman(['diff', id], vfs);
      expect(ours.status, ours.stderr).toBe(0);
      expect(theirs.status, theirs.stderr).toBe(0);
      const sorted = (s: string): string[] => s.split('\n').filter(Boolean).sort();
      expect(sorted(ours.stdout)).toEqual(sorted(theirs.stdout));
      expect(sorted(ours.stdout)).toContain('D /data/link');
    } finally {
      vfs.reset();
    }
  }, T);
});

// diff() against containers/storage itself: podman (4.3.1) commits a container whose read-write layer was changed
// through `podman mount`, and the layer it writes is compared, entry by entry, with what Carrier's driver archives
// from the same layer of the same store.
//
// Needs: root, podman, skopeo (Debian packages).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { createDriver } from '../src/drivers/index.js';
import { buildTestImage, Podman, requireTools, removeWorkDir, toDockerArchive, type TestImage } from './support/images.js';
import { tempDir } from './support/fixtures.js';
import { sha256FileSync as sha256File } from './support/tree.js';
import { readJson } from './support/store.js';

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string | null;
}

async function entries(stream: NodeJS.ReadableStream): Promise<Map<string, Entry>> {
  const extract = tar.extract();
  const out = new Map<string, Entry>();
  const reading = (async () => {
    for await (const e of extract) {
      const h = e.header;
      out.set(h.name.replace(/\/$/, ''), {
        type: h.type ?? 'file',
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: h.size ?? 0,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        linkname: h.linkname ?? null,
      });
      e.resume();
    }
  })();
  await pipeline(stream, extract);
  await reading;
  return out;
}

let work: string;
let img: TestImage;

beforeAll(() => {
  requireTools();
  work = tempDir('drivers-podman');
  img = buildTestImage(path.join(work, 'img'), { label: 'drivers' });
});

afterAll(() => removeWorkDir(work));

describe.each(['overlay', 'vfs'] as const)('the %s driver against podman commit', (name) => {
  it('archives a container\'s changes with the entries podman commit writes for them', async () => {
    const p = new Podman(path.join(work, `p-${name}`), name);
    const archive = path.join(work, `image-${name}.tar`);
    toDockerArchive(img, archive, 'localhost/drivers:1');
    p.run(['load', '-q', '-i', archive]);
    const cid = p.run(['create', '--name', 'c', 'localhost/drivers:1', 'true']).trim().split('\n').pop()!;
    const mnt = p.run(['mount', cid]).trim();
    fs.writeFileSync(path.join(mnt, 'etc/added'), 'added\n');
    fs.rmSync(path.join(mnt, 'etc/hostname'));
    fs.rmSync(path.join(mnt, 'data/opaque'), { recursive: true });
    fs.mkdirSync(path.join(mnt, 'data/opaque'));
    fs.writeFileSync(path.join(mnt, 'data/opaque/again.txt'), 'again\n');
    fs.chmodSync(path.join(mnt, 'top/readme'), 0o600);
    fs.symlinkSync('../etc/added', path.join(mnt, 'top/link'));
    fs.mkdirSync(path.join(mnt, 'new/deep'), { recursive: true });
    fs.writeFileSync(path.join(mnt, 'new/deep/file'), 'deep\n');
    fs.linkSync(path.join(mnt, 'new/deep/file'), path.join(mnt, 'new/hard'));
    p.run(['umount', cid]);

    const containers = readJson<{ id: string; layer: string }[]>(path.join(p.root, `${name}-containers/containers.json`));
    const layer = containers.find((c) => c.id === cid)!.layer;
    const layers = readJson<{ id: string; parent?: string }[]>(path.join(p.root, `${name}-layers/layers.json`));
    const parent = layers.find((l) => l.id === layer)!.parent;
    const driver = createDriver({ driver: name, graphroot: p.root });
    const ourTar = path.join(work, `ours-${name}.tar`);
    await pipeline(await driver.diff(layer, parent), fs.createWriteStream(ourTar));
    const ours = await entries(fs.createReadStream(ourTar));

    p.run(['commit', '-q', cid, 'localhost/committed']);
    const saved = path.join(work, `saved-${name}`);
    p.run(['save', '--format', 'oci-dir', '--uncompressed', '-o', saved, 'localhost/committed']);
    const index = readJson<{ manifests: { digest: string }[] }>(path.join(saved, 'index.json'));
    const blob = (d: string): string => path.join(saved, 'blobs/sha256', d.slice(7));
    const manifest = readJson<{ layers: { digest: string }[] }>(blob(index.manifests[0]!.digest));
    const theirs = await entries(fs.createReadStream(blob(manifest.layers.at(-1)!.digest)));

    // the same entries in the same order: podman's walk order (overlay) or its sorted change list (vfs)
    expect([...ours.keys()]).toEqual([...theirs.keys()]);
    expect(theirs.size).toBe(14);
    for (const [n, e] of theirs) {
      const mine = ours.get(n)!;
      if (n.split('/').pop()!.startsWith('.wh.')) {
        expect(mine.type, n).toBe(e.type);
        expect(mine.size, n).toBe(0);
        continue;
      }
      expect(mine, n).toEqual(e);
    }
    // overlay's archive is podman's byte for byte; vfs's differs only in its whiteouts' mtimes, which both take from
    // the clock (containers/storage's naive diff does)
    if (name === 'overlay') expect(sha256File(ourTar)).toBe(sha256File(blob(manifest.layers.at(-1)!.digest)));
  });
});

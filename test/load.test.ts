/**
 * `carrier load` sources: OCI layout directories, oci-archive and docker-archive tars (plain, gzip, zstd) made by
 * the real skopeo and podman, read back and compared with what those tools report; the OCI document parsers; and
 * hostile archives, each refused with its code.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { openImageArchive, type SourceImage, type ImageArchive } from '../src/load/index.js';
import { applyLayer, CarrierError } from '../src/index.js';
import { parseDigest, sha256Digest, digestHex } from '../src/oci/digest.js';
import { parseManifest, parseImageConfig, choosePlatform, hostPlatform, type ImageIndex } from '../src/oci/manifest.js';
import { layerCompression } from '../src/oci/mediatypes.js';
import * as H from './support/hostile.js';
import { tempDir } from './support/fixtures.js';
import { buildTestImage, defaultLayers, requireTools, toDockerArchive, toOciArchive, skopeoRaw, sha256, Podman, type TestImage } from './support/images.js';

const T = 120_000;
let work: string;
let imgA: TestImage;
let imgB: TestImage;
let podman: Podman;

async function readStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function decompressed(blob: Buffer, mediaType: string): Promise<Buffer> {
  if (mediaType.endsWith('gzip')) return zlib.gunzipSync(blob);
  if (mediaType.endsWith('zstd')) return execFileSync('zstd', ['-d', '-q', '-c'], { input: blob, maxBuffer: 1 << 30 });
  return blob;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<CarrierError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(CarrierError);
  expect((err as CarrierError).code, (err as Error).message).toBe(code);
  return err as CarrierError;
}

/** Opens, runs `fn`, always closes. */
async function withArchive<R>(file: string, fn: (a: ImageArchive) => Promise<R>, opts: Parameters<typeof openImageArchive>[1] = {}): Promise<R> {
  const a = await openImageArchive(file, opts);
  try {
    return await fn(a);
  } finally {
    await a.close();
  }
}

/** Every layer stream hashes to its digest, has its size, and (decompressed) is the original layer tar. */
async function checkLayers(image: SourceImage, built: TestImage, uncompressed: boolean): Promise<void> {
  expect(image.layers.map((l) => l.diffID)).toEqual(built.diffIDs);
  for (const [i, l] of image.layers.entries()) {
    const bytes = await readStream(await l.open());
    expect(sha256(bytes)).toBe(l.digest);
    expect(bytes.length).toBe(l.size);
    // Layer tars come back exactly; compressed blobs may have been re-encoded by the tool (skopeo compresses
    // uncompressed layers when writing OCI), so they are compared decompressed.
    const tar = uncompressed ? bytes : await decompressed(bytes, l.mediaType);
    expect(tar.equals(built.layers[i]!.tar), `layer ${i}`).toBe(true);
  }
}

beforeAll(() => {
  requireTools();
  work = tempDir('load');
  imgA = buildTestImage(path.join(work, 'oci-a'), { tag: 'v1' });
  imgB = buildTestImage(path.join(work, 'oci-b'), {
    tag: 'v2',
    label: 'b',
    layers: [defaultLayers('b')[0]!, { compression: 'none', entries: [H.file('b-only.txt', 'image b\n', { mtime: 1_700_000_000 })] }],
  });
  podman = new Podman(path.join(work, 'podman'));
}, T);

afterAll(() => {
  podman?.reset();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------

describe('oci documents', () => {
  it('parseDigest accepts sha256/sha512 lowercase hex only', () => {
    const hex = 'a'.repeat(64);
    expect(parseDigest(`sha256:${hex}`)).toEqual({ algorithm: 'sha256', hex, digest: `sha256:${hex}` });
    expect(parseDigest(`sha512:${'b'.repeat(128)}`).algorithm).toBe('sha512');
    for (const bad of [`sha256:${'A'.repeat(64)}`, `sha256:${hex}0`, `sha256:../${hex.slice(3)}`, `md5:${hex}`, hex, `sha512:${hex}`, '', 'sha256:']) {
      expect(() => parseDigest(bad), bad).toThrow(expect.objectContaining({ code: 'CARRIER_INVALID_DIGEST' }));
    }
    expect(digestHex(sha256Digest(Buffer.from('x')))).toBe(crypto.createHash('sha256').update('x').digest('hex'));
  });

  it('parseManifest types manifests and indexes and refuses contradictions', () => {
    const d = (n: string): object => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(Buffer.from(n)), size: 1 });
    const m = parseManifest(imgA.manifest);
    expect(m.kind).toBe('manifest');
    expect(m.kind === 'manifest' && m.layers.length).toBe(3);
    const idx = parseManifest(fs.readFileSync(path.join(imgA.ociDir, 'index.json')));
    expect(idx.kind).toBe('index');
    const J = (o: object): Buffer => Buffer.from(JSON.stringify(o));
    const bad: [string, Buffer, string?][] = [
      ['index with layers', J({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], layers: [] })],
      ['manifest with manifests', J({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: d('c'), layers: [], manifests: [] })],
      ['declared type differs', imgA.manifest, 'application/vnd.docker.distribution.manifest.v2+json'],
      ['schemaVersion 1', J({ schemaVersion: 1, config: d('c'), layers: [] })],
      ['negative size', J({ schemaVersion: 2, config: d('c'), layers: [{ ...d('l'), size: -1 }] })],
      ['fractional size', J({ schemaVersion: 2, config: d('c'), layers: [{ ...d('l'), size: 1.5 }] })],
      ['bad digest', J({ schemaVersion: 2, config: d('c'), layers: [{ ...d('l'), digest: 'sha256:../../etc/passwd' }] })],
      ['unknown type', J({ schemaVersion: 2, mediaType: 'text/plain', config: d('c'), layers: [] })],
      ['ambiguous', J({ schemaVersion: 2, config: d('c'), layers: [], manifests: [] })],
      ['not json', Buffer.from('{')],
    ];
    for (const [label, bytes, declared] of bad) {
      expect(() => parseManifest(bytes, declared), label).toThrow(expect.objectContaining({ code: 'CARRIER_INVALID_MANIFEST' }));
    }
    expect(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20))).toThrow(expect.objectContaining({ code: 'CARRIER_LIMIT_EXCEEDED' }));
  });

  it('parseImageConfig validates rootfs', () => {
    const c = parseImageConfig(imgA.config);
    expect(c).toMatchObject({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: imgA.diffIDs } });
    const J = (o: object): Buffer => Buffer.from(JSON.stringify(o));
    for (const bad of [
      J({ os: 'linux', architecture: 'amd64', rootfs: { type: 'other', diff_ids: [] } }),
      J({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: ['nope'] } }),
      J({ architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } }),
    ]) {
      expect(() => parseImageConfig(bad)).toThrow(expect.objectContaining({ code: 'CARRIER_INVALID_MANIFEST' }));
    }
  });

  it('choosePlatform and hostPlatform', () => {
    const e = (architecture: string, variant?: string): object => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256(Buffer.from(architecture + (variant ?? ''))),
      size: 10,
      platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
    });
    const index = parseManifest(
      Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [e('amd64'), e('arm64'), e('arm', 'v6'), e('arm', 'v7'), e('386')] })),
    ) as ImageIndex;
    expect(choosePlatform(index, { os: 'linux', architecture: 'amd64' })?.platform?.architecture).toBe('amd64');
    expect(choosePlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.platform?.architecture).toBe('arm64');
    expect(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' })?.platform?.variant).toBe('v7');
    expect(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v8' })?.platform?.variant).toBe('v7');
    expect(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v5' })).toBeUndefined();
    expect(choosePlatform(index, { os: 'linux', architecture: 's390x' })).toBeUndefined();
    const host = hostPlatform();
    expect(host.os).toBe('linux');
    expect(host.architecture).toBe({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' }[process.arch as string] ?? host.architecture);
    expect(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe('gzip');
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar+zstd')).toBe('zstd');
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar')).toBe('none');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('formats', () => {
  it('oci-dir: the layout as built, bytes exact', async () => {
    await withArchive(imgA.ociDir, async (a) => {
      expect(a.format).toBe('oci-dir');
      expect(a.images).toHaveLength(1);
      const im = a.images[0]!;
      expect(im.names).toEqual(['v1']);
      expect(im.manifest.equals(imgA.manifest)).toBe(true);
      expect(im.manifestDigest).toBe(imgA.manifestDigest);
      expect(im.manifestMediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(im.config.equals(skopeoRaw(`oci:${imgA.ociDir}:v1`, 'config'))).toBe(true);
      expect(im.configDigest).toBe(imgA.configDigest);
      expect(im.manifest.equals(skopeoRaw(`oci:${imgA.ociDir}:v1`))).toBe(true);
      expect(im.layers.map((l) => l.mediaType)).toEqual(imgA.layers.map((l) => l.mediaType));
      await checkLayers(im, imgA, false);
    });
  }, T);

  it('oci-dir layers apply with their digest, size and diffID', async () => {
    await withArchive(imgA.ociDir, async (a) => {
      for (const l of a.images[0]!.layers) {
        const dir = tempDir('load-apply');
        try {
          const r = await applyLayer(await l.open(), dir, { expectedDigest: l.digest, expectedSize: l.size, expectedDiffID: l.diffID });
          expect(r.diffDigest).toBe(l.diffID);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    });
  }, T);

  it('oci-archive written by skopeo', async () => {
    const file = path.join(work, 'a.oci.tar');
    toOciArchive(imgA, file, 'example.com/carrier/a:v1');
    await withArchive(file, async (a) => {
      expect(a.format).toBe('oci-archive');
      const im = a.images[0]!;
      // skopeo writes the reference part after the file name verbatim as ref.name.
      expect(im.names).toEqual(['example.com/carrier/a:v1']);
      expect(im.manifest.equals(skopeoRaw(`oci-archive:${file}`))).toBe(true);
      expect(im.manifestDigest).toBe(sha256(im.manifest));
      expect(im.configDigest).toBe(sha256(skopeoRaw(`oci-archive:${file}`, 'config')));
      expect(im.configDigest).toBe(imgA.configDigest);
      await checkLayers(im, imgA, false);
    });
  }, T);

  it('docker-archive written by skopeo: manifest as containers/image generates it', async () => {
    const file = path.join(work, 'a.docker.tar');
    toDockerArchive(imgA, file, 'example.com/carrier/a:v1');
    await withArchive(file, async (a) => {
      expect(a.format).toBe('docker-archive');
      const im = a.images[0]!;
      expect(im.names).toEqual(['example.com/carrier/a:v1']);
      expect(im.manifestMediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      // Byte-identical to skopeo's view of the same archive, so the manifest digest is the one podman load records.
      expect(im.manifest.toString()).toBe(skopeoRaw(`docker-archive:${file}`).toString());
      expect(im.config.equals(skopeoRaw(`docker-archive:${file}`, 'config'))).toBe(true);
      expect(im.configDigest).toBe(imgA.configDigest);
      await checkLayers(im, imgA, true);
      for (const l of im.layers) expect(l.digest).toBe(l.diffID);
    });
    // podman load records the same digest and image id.
    podman.load(file);
    const info = podman.inspect('example.com/carrier/a:v1');
    await withArchive(file, async (a) => {
      expect(info.Digest).toBe(a.images[0]!.manifestDigest);
      expect('sha256:' + info.Id).toBe(a.images[0]!.configDigest);
      expect(info.RootFS.Layers).toEqual(a.images[0]!.layers.map((l) => l.diffID));
    });
  }, T);

  it('podman save: docker-archive with several images (-m), and oci-archive', async () => {
    const fb = path.join(work, 'b.docker.tar');
    toDockerArchive(imgB, fb, 'quay.io/carrier/b:v2');
    podman.load(fb);
    const multi = path.join(work, 'multi.tar');
    podman.save(multi, ['example.com/carrier/a:v1', 'quay.io/carrier/b:v2']);
    await withArchive(multi, async (a) => {
      expect(a.format).toBe('docker-archive');
      expect(a.images.map((i) => i.names)).toEqual([['example.com/carrier/a:v1'], ['quay.io/carrier/b:v2']]);
      expect(a.images.map((i) => i.configDigest)).toEqual([imgA.configDigest, imgB.configDigest]);
      for (const [n, im] of a.images.entries()) {
        expect(im.manifest.toString()).toBe(skopeoRaw(`docker-archive:${multi}:@${n}`).toString());
        await checkLayers(im, n === 0 ? imgA : imgB, true);
      }
      expect(a.images[1]!.manifestDigest).toBe(podman.inspect('quay.io/carrier/b:v2').Digest);
    });
    const ociFile = path.join(work, 'podman.oci.tar');
    podman.save(ociFile, ['quay.io/carrier/b:v2'], 'oci-archive');
    await withArchive(ociFile, async (a) => {
      expect(a.format).toBe('oci-archive');
      // podman writes the full name as ref.name (and `podman load` names the image with it).
      expect(a.images[0]!.names).toEqual(['quay.io/carrier/b:v2']);
      expect(a.images[0]!.configDigest).toBe(imgB.configDigest);
      expect(a.images[0]!.layers.map((l) => l.diffID)).toEqual(imgB.diffIDs);
      for (const l of a.images[0]!.layers) expect(sha256(await readStream(await l.open()))).toBe(l.digest);
    });
  }, T);

  it('gzip- and zstd-compressed archives; the temp file goes with close()', async () => {
    const file = path.join(work, 'a.docker.tar');
    if (!fs.existsSync(file)) toDockerArchive(imgA, file, 'example.com/carrier/a:v1');
    const gz = path.join(work, 'a.docker.tar.gz');
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(file)));
    const zst = path.join(work, 'a.oci.tar.zst');
    const ociFile = path.join(work, 'a2.oci.tar');
    toOciArchive(imgA, ociFile, 'v1');
    fs.writeFileSync(zst, H.zstd(fs.readFileSync(ociFile)));
    const tmpDir = tempDir('load-tmp');
    try {
      for (const [f, format] of [[gz, 'docker-archive'], [zst, 'oci-archive']] as const) {
        const a = await openImageArchive(f, { tmpDir });
        expect(a.format).toBe(format);
        expect(fs.readdirSync(tmpDir)).toHaveLength(1);
        expect(a.images[0]!.configDigest).toBe(imgA.configDigest);
        await checkLayers(a.images[0]!, imgA, format === 'docker-archive');
        await a.close();
        expect(fs.readdirSync(tmpDir)).toHaveLength(0);
      }
    } finally {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
  }, T);

  it('docker-archive with gzip layer files: served decompressed, sized like containers/image does', async () => {
    const dir = path.join(work, 'gz-layers');
    fs.mkdirSync(dir);
    const parts: Buffer[] = [H.file(`${imgA.configDigest.slice(7)}.json`, imgA.config)];
    const names = imgA.layers.map((l, i) => {
      const name = `layer${i}.tar.gz`;
      parts.push(H.file(name, zlib.gzipSync(l.tar)));
      return name;
    });
    parts.unshift(H.file('manifest.json', JSON.stringify([{ Config: `${imgA.configDigest.slice(7)}.json`, RepoTags: ['gz:layers'], Layers: names }])));
    const file = path.join(dir, 'archive.tar');
    fs.writeFileSync(file, H.tar(...parts));
    await withArchive(file, async (a) => {
      const im = a.images[0]!;
      expect(im.manifest.toString()).toBe(skopeoRaw(`docker-archive:${file}`).toString());
      await checkLayers(im, imgA, true);
    });
  }, T);
});

// ---------------------------------------------------------------------------------------------------------------

describe('hostile archives', () => {
  const cfgName = (): string => `${imgA.configDigest.slice(7)}.json`;
  const dockerManifest = (o: object = {}): Buffer =>
    Buffer.from(JSON.stringify([{ Config: cfgName(), RepoTags: ['h:1'], Layers: imgA.layers.map((_, i) => `l${i}.tar`), ...o }]));
  const layerFiles = (): Buffer[] => imgA.layers.map((l, i) => H.file(`l${i}.tar`, l.tar));
  const write = (name: string, b: Buffer): string => {
    const f = path.join(work, `hostile-${name}.tar`);
    fs.writeFileSync(f, b);
    return f;
  };
  const sane = (): Buffer[] => [H.file('manifest.json', dockerManifest()), H.file(cfgName(), imgA.config), ...layerFiles()];

  it('the well-formed hand-made docker-archive loads', async () => {
    await withArchive(write('ok', H.tar(...sane())), async (a) => expect(a.images[0]!.names).toEqual(['h:1']));
  });

  it('entry names with .. or absolute paths', async () => {
    await expectCode(openImageArchive(write('dotdot', H.tar(...sane(), H.file('../escape', 'x')))), 'CARRIER_UNSAFE_PATH');
    await expectCode(openImageArchive(write('dotdot-inner', H.tar(H.file('a/../../x', 'x'), ...sane()))), 'CARRIER_UNSAFE_PATH');
    await expectCode(openImageArchive(write('abs', H.tar(...sane(), H.file('/etc/x', 'x')))), 'CARRIER_UNSAFE_PATH');
    for (const spelling of ['pax', 'gnu'] as const) {
      await expectCode(openImageArchive(write(`dotdot-${spelling}`, H.tar(...sane(), H.file('../../x', 'x', { spelling })))), 'CARRIER_UNSAFE_PATH');
    }
    // The manifest points outside the archive.
    await expectCode(
      openImageArchive(write('cfg-escape', H.tar(H.file('manifest.json', dockerManifest({ Config: '../../etc/passwd' })), ...layerFiles()))),
      'CARRIER_UNSAFE_PATH',
    );
  });

  it('duplicate entries', async () => {
    await expectCode(openImageArchive(write('dup', H.tar(...sane(), H.file('manifest.json', '[]')))), 'CARRIER_DUPLICATE_ENTRY');
    await expectCode(openImageArchive(write('dup-dot', H.tar(...sane(), H.file('./l0.tar', 'x')))), 'CARRIER_DUPLICATE_ENTRY');
  });

  it('manifest.json and index.json over 4 MiB', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    await expectCode(openImageArchive(write('big-manifest', H.tar(H.file('manifest.json', big)))), 'CARRIER_LIMIT_EXCEEDED');
    const dir = path.join(work, 'big-index');
    buildTestImage(dir, { tag: 'x' });
    fs.writeFileSync(path.join(dir, 'index.json'), big);
    await expectCode(openImageArchive(dir), 'CARRIER_LIMIT_EXCEEDED');
  });

  it('missing files, layer/diff_id count mismatch, config digest mismatch', async () => {
    await expectCode(openImageArchive(write('missing-layer', H.tar(H.file('manifest.json', dockerManifest()), H.file(cfgName(), imgA.config)))), 'CARRIER_INVALID_ARCHIVE');
    await expectCode(openImageArchive(write('missing-config', H.tar(H.file('manifest.json', dockerManifest()), ...layerFiles()))), 'CARRIER_INVALID_ARCHIVE');
    await expectCode(
      openImageArchive(write('count', H.tar(H.file('manifest.json', dockerManifest({ Layers: ['l0.tar', 'l1.tar'] })), H.file(cfgName(), imgA.config), ...layerFiles()))),
      'CARRIER_INVALID_MANIFEST',
    );
    const tampered = Buffer.from(imgA.config.toString().replace('"amd64"', '"arm64"'));
    await expectCode(openImageArchive(write('cfg-digest', H.tar(H.file('manifest.json', dockerManifest()), H.file(cfgName(), tampered), ...layerFiles()))), 'CARRIER_DIGEST_MISMATCH');
    // OCI: the config blob no longer matches its descriptor.
    const dir = path.join(work, 'oci-tampered');
    const img = buildTestImage(dir, { tag: 'x' });
    fs.writeFileSync(path.join(dir, 'blobs/sha256', img.configDigest.slice(7)), Buffer.from(img.config.toString().replace('"amd64"', '"arm64"')));
    await expectCode(openImageArchive(dir), 'CARRIER_DIGEST_MISMATCH');
    // OCI: a layer blob is missing.
    const dir2 = path.join(work, 'oci-missing');
    const img2 = buildTestImage(dir2, { tag: 'x' });
    fs.rmSync(path.join(dir2, 'blobs/sha256', img2.layers[1]!.digest.slice(7)));
    await expectCode(openImageArchive(dir2), 'CARRIER_INVALID_ARCHIVE');
  });

  it('symlinks leading out of the archive or the layout', async () => {
    await expectCode(
      openImageArchive(write('symlink-out', H.tar(H.file('manifest.json', dockerManifest()), H.file(cfgName(), imgA.config), H.symlink('l0.tar', '../../../etc/passwd'), ...layerFiles().slice(1)))),
      'CARRIER_UNSAFE_PATH',
    );
    await expectCode(
      openImageArchive(write('symlink-abs', H.tar(H.file('manifest.json', dockerManifest()), H.file(cfgName(), imgA.config), H.symlink('l0.tar', '/etc/passwd'), ...layerFiles().slice(1)))),
      'CARRIER_UNSAFE_PATH',
    );
    // A relative symlink inside the archive is followed (podman save writes <id>/layer.tar -> ../<hex>.tar).
    await withArchive(
      write('symlink-in', H.tar(H.file('manifest.json', dockerManifest({ Layers: ['x/layer.tar', 'l1.tar', 'l2.tar'] })), H.file(cfgName(), imgA.config), H.symlink('x/layer.tar', '../l0.tar'), ...layerFiles())),
      async (a) => expect(sha256(await readStream(await a.images[0]!.layers[0]!.open()))).toBe(imgA.diffIDs[0]),
    );
    // OCI dir: a blob that is a symlink to a file outside; a blobs/sha256 that is a symlink to a dir outside.
    const outside = path.join(work, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    const dir = path.join(work, 'oci-symlink-blob');
    const img = buildTestImage(dir, { tag: 'x' });
    const blob = path.join(dir, 'blobs/sha256', img.configDigest.slice(7));
    fs.renameSync(blob, path.join(outside, 'config'));
    fs.symlinkSync(path.join(outside, 'config'), blob);
    await expectCode(openImageArchive(dir), 'CARRIER_UNSAFE_PATH');
    const dir2 = path.join(work, 'oci-symlink-dir');
    buildTestImage(dir2, { tag: 'x' });
    fs.renameSync(path.join(dir2, 'blobs/sha256'), path.join(outside, 'sha256'));
    fs.symlinkSync(path.join(outside, 'sha256'), path.join(dir2, 'blobs/sha256'));
    await expectCode(openImageArchive(dir2), 'CARRIER_UNSAFE_PATH');
  });

  it('digests are validated before they become paths; documents that contradict their type', async () => {
    const dir = path.join(work, 'oci-bad-digest');
    const img = buildTestImage(dir, { tag: 'x' });
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
    index.manifests[0].digest = 'sha256:../../../../etc/passwd';
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
    await expectCode(openImageArchive(dir), 'CARRIER_INVALID_MANIFEST');
    index.manifests[0].digest = img.manifestDigest;
    index.layers = [];
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
    await expectCode(openImageArchive(dir), 'CARRIER_INVALID_MANIFEST');
    // A manifest whose body says it is an index.
    delete index.layers;
    index.manifests[0].mediaType = 'application/vnd.oci.image.index.v1+json';
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
    await expectCode(openImageArchive(dir), 'CARRIER_INVALID_MANIFEST');
  });

  it('truncated and malformed tars, non-archives', async () => {
    const whole = H.tar(...sane());
    await expectCode(openImageArchive(write('truncated', whole.subarray(0, 512 + 100))), 'CARRIER_TRUNCATED');
    const corrupt = Buffer.from(whole);
    corrupt[0] = corrupt[0]! ^ 0xff;
    await expectCode(openImageArchive(write('not-tar', corrupt)), 'CARRIER_INVALID_ARCHIVE');
    const badSecond = Buffer.from(whole);
    const second = 512 + Math.ceil(dockerManifest().length / 512) * 512;
    badSecond[second + 10] = badSecond[second + 10]! ^ 0xff;
    await expectCode(openImageArchive(write('bad-checksum', badSecond)), 'CARRIER_BAD_TAR');
    await expectCode(openImageArchive(write('neither', H.tar(H.file('hello.txt', 'hi')))), 'CARRIER_INVALID_ARCHIVE');
    await expectCode(openImageArchive(write('bad-gzip', Buffer.concat([zlib.gzipSync(whole).subarray(0, 200)]))), 'CARRIER_BAD_COMPRESSION');
    // A PAX size record applies to the next real entry, not to a GNU long-name header between them: read the
    // other way, the 'L' data would swallow the file header and the archive would not parse.
    const m = dockerManifest();
    const smuggled = H.tar(H.pax([['size', String(m.length)]]), H.gnuLong('L', 'manifest.json'), H.file('placeholder', m), H.file(cfgName(), imgA.config), ...layerFiles());
    await withArchive(write('pax-smuggle', smuggled), async (a) => expect(a.images[0]!.names).toEqual(['h:1']));
    // A PAX size that runs past the end of the file.
    const past = H.tar(H.pax([['size', '99999999']]), H.file('manifest.json', m), H.file(cfgName(), imgA.config), ...layerFiles());
    await expectCode(openImageArchive(write('pax-past-end', past)), 'CARRIER_TRUNCATED');
  });

  it('an aborted open rejects with ABORT_ERR', async () => {
    const ac = new AbortController();
    ac.abort();
    await expectCode(openImageArchive(imgA.ociDir, { signal: ac.signal }), 'ABORT_ERR');
  });
});


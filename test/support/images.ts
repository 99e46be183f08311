/**
 * Real OCI images built by code: layer tars from the hostile.ts tar helpers, config/manifest/index JSON with their
 * digests, written as an OCI image layout directory; then converted with the real skopeo (docker-archive,
 * oci-archive) and loaded/saved with the real podman in a private store.
 *
 * Debian packages used: skopeo, podman (plus gzip, zstd from fixtures.ts). Must run as root (podman's overlay store).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { execFileSync, spawnSync } from 'node:child_process';
import * as H from './hostile.js';
import { run } from './fixtures.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export interface LayerSpec {
  /** Tar entries (hostile.ts builders: H.file, H.dir, H.symlink, ...); the end-of-archive marker is added. */
  entries: Buffer[];
  compression: LayerCompression;
}

export interface BuiltLayer {
  /** The uncompressed tar. */
  tar: Buffer;
  /** The blob as stored in the layout (compressed or not). */
  blob: Buffer;
  digest: string;
  size: number;
  mediaType: string;
  diffID: string;
}

export interface TestImage {
  ociDir: string;
  /** The `org.opencontainers.image.ref.name` of the image in index.json. */
  tag: string;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  diffIDs: string[];
  layers: BuiltLayer[];
}

export interface TestImageOptions {
  layers?: LayerSpec[];
  /** ref.name annotation (default 'latest'). */
  tag?: string;
  architecture?: string;
  os?: string;
  /** Changes the config (and so the image id) without changing the layers. */
  label?: string;
}

export const sha256 = (b: Buffer): string => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

const MTIME = 1_700_000_000;

/**
 * Three layers: a gzip base with files and dirs, a gzip layer with a `.wh.` whiteout and a `.wh..wh..opq` opaque
 * directory over the base's content, and an uncompressed top layer.
 */
export function defaultLayers(seed = 'a'): LayerSpec[] {
  const o = { mtime: MTIME };
  return [
    {
      compression: 'gzip',
      entries: [
        H.dir('etc/', o),
        H.file('etc/hostname', `carrier-${seed}\n`, o),
        H.dir('data/', o),
        H.file('data/gone.txt', 'removed by the next layer\n', o),
        H.file('data/kept.txt', 'kept\n', o),
        H.dir('data/opaque/', o),
        H.file('data/opaque/old.txt', 'hidden by the opaque marker\n', o),
        H.symlink('data/link', 'kept.txt', o),
      ],
    },
    {
      compression: 'gzip',
      entries: [
        H.dir('data/', o),
        H.file('data/.wh.gone.txt', '', o),
        H.dir('data/opaque/', o),
        H.file('data/opaque/.wh..wh..opq', '', o),
        H.file('data/opaque/new.txt', `new in layer 2 (${seed})\n`, o),
      ],
    },
    {
      compression: 'none',
      entries: [H.dir('top/', o), H.file('top/readme', `top layer ${seed}\n`.repeat(50), o)],
    },
  ];
}

function compress(tar: Buffer, c: LayerCompression): { blob: Buffer; mediaType: string } {
  switch (c) {
    case 'gzip':
      return { blob: zlib.gzipSync(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
    case 'zstd':
      return { blob: H.zstd(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' };
    default:
      return { blob: tar, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
  }
}

function writeBlob(ociDir: string, b: Buffer): string {
  const d = sha256(b);
  fs.writeFileSync(path.join(ociDir, 'blobs/sha256', d.slice(7)), b);
  return d;
}

/** Writes an OCI image layout with one image into `dir` (created if needed). */
export function buildTestImage(dir: string, opts: TestImageOptions = {}): TestImage {
  const ociDir = dir;
  fs.mkdirSync(path.join(ociDir, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(ociDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const tag = opts.tag ?? 'latest';
  const layers: BuiltLayer[] = (opts.layers ?? defaultLayers()).map((spec) => {
    const tar = H.tar(...spec.entries);
    const { blob, mediaType } = compress(tar, spec.compression);
    const digest = writeBlob(ociDir, blob);
    return { tar, blob, digest, size: blob.length, mediaType, diffID: sha256(tar) };
  });
  const diffIDs = layers.map((l) => l.diffID);
  const config = Buffer.from(
    JSON.stringify({
      created: '2023-11-14T22:13:20Z',
      architecture: opts.architecture ?? 'amd64',
      os: opts.os ?? 'linux',
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'], Labels: { 'carrier.test': opts.label ?? tag } },
      rootfs: { type: 'layers', diff_ids: diffIDs },
      history: layers.map((_, i) => ({ created: '2023-11-14T22:13:20Z', created_by: `layer ${i}` })),
    }),
  );
  const configDigest = writeBlob(ociDir, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const manifestDigest = writeBlob(ociDir, manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ],
  };
  fs.writeFileSync(path.join(ociDir, 'index.json'), JSON.stringify(index));
  return { ociDir, tag, config, configDigest, manifest, manifestDigest, diffIDs, layers };
}

// ---------------------------------------------------------------------------------------------------------------
// Real tools

const missing = new Set<string>();

/** Throws, naming the Debian packages, when skopeo or podman is not installed. */
export function requireTools(): void {
  for (const tool of ['skopeo', 'podman']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      missing.add(tool);
    }
  }
  if (missing.size > 0) {
    throw new Error(`${[...missing].join(' and ')} not found: run \`apt-get install skopeo podman\``);
  }
}

/** `skopeo copy oci:DIR:tag docker-archive:FILE:name` (skopeo writes uncompressed layer files). */
export function toDockerArchive(img: TestImage, file: string, name: string): void {
  run('skopeo', ['copy', '-q', `oci:${img.ociDir}:${img.tag}`, `docker-archive:${file}:${name}`]);
}

/** `skopeo copy oci:DIR:tag oci-archive:FILE[:ref]`. */
export function toOciArchive(img: TestImage, file: string, ref?: string): void {
  run('skopeo', ['copy', '-q', `oci:${img.ociDir}:${img.tag}`, `oci-archive:${file}${ref === undefined ? '' : ':' + ref}`]);
}

/** `skopeo inspect --raw` (the manifest bytes) and `--config --raw` (the config bytes) of any transport ref. */
export function skopeoRaw(ref: string, what: 'manifest' | 'config' = 'manifest'): Buffer {
  return run('skopeo', ['inspect', '--raw', ...(what === 'config' ? ['--config'] : []), ref]);
}

/** An image as `podman images --format json` lists it. */
export interface PodmanImage {
  Id: string;
  Names?: string[];
  Digest?: string;
}

/** A private podman store (graphroot/runroot under `dir`), with the storage.conf podman insists on. */
export class Podman {
  readonly root: string;
  readonly runroot: string;
  /** podman's own --tmpdir (libpod's state, /run/libpod by default): this store's alone, not the machine's. */
  readonly tmpdir: string;
  readonly conf: string;

  constructor(
    readonly dir: string,
    readonly driver: 'overlay' | 'vfs' = 'overlay',
  ) {
    this.root = path.join(dir, 'root');
    this.runroot = path.join(dir, 'run');
    this.tmpdir = path.join(dir, 'tmp');
    this.conf = path.join(dir, 'storage.conf');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(this.conf, `[storage]\ndriver = "${driver}"\ngraphroot = "${this.root}"\nrunroot = "${this.runroot}"\n`);
  }

  /**
   * The global options every podman call on this store takes: its root, run root, driver and a tmpdir of its own, so
   * no two tests (nor a test and another podman on the machine) share libpod's state directory.
   */
  get globalArgs(): string[] {
    return ['--root', this.root, '--runroot', this.runroot, '--storage-driver', this.driver, '--tmpdir', this.tmpdir];
  }

  /** The environment podman runs with (its storage.conf). */
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, CONTAINERS_STORAGE_CONF: this.conf, LC_ALL: 'C.UTF-8' };
  }

  run(args: string[]): string {
    try {
      return execFileSync('podman', [...this.globalArgs, ...args], {
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 28,
      }).toString();
    } catch (err) {
      const e = err as { stderr?: Buffer; status?: number };
      throw new Error(`podman ${args.join(' ')} failed (status ${e.status}): ${e.stderr?.toString() ?? String(err)}`);
    }
  }

  /** `podman images --format json`, one entry per image (podman 4.3 repeats an image once per name). */
  images(): PodmanImage[] {
    const all = JSON.parse(this.run(['images', '--format', 'json'])) as PodmanImage[];
    return all.filter((img, i) => all.findIndex((o) => o.Id === img.Id) === i);
  }

  /** `podman load -i FILE`; returns the names podman printed ("Loaded image: ..."). */
  load(file: string): string[] {
    const out = this.run(['load', '-i', file]);
    return [...out.matchAll(/Loaded image(?:\(s\))?: (.+)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()));
  }

  /** `podman save` of one or more images; several docker-archive images need `-m`. */
  save(file: string, names: string[], format: 'docker-archive' | 'oci-archive' = 'docker-archive'): void {
    this.run(['save', '-q', ...(names.length > 1 ? ['-m'] : []), '--format', format, '-o', file, ...names]);
  }

  /** `podman image inspect` → { Id, Digest, RepoTags, RootFS.Layers, ... }. */
  inspect(name: string): { Id: string; Digest: string; RepoTags: string[]; RootFS: { Layers: string[] } } {
    return (JSON.parse(this.run(['image', 'inspect', name])) as { Id: string; Digest: string; RepoTags: string[]; RootFS: { Layers: string[] } }[])[0]!;
  }

  reset(): void {
    try {
      this.run(['system', 'reset', '-f']);
    } catch {
      /* best effort */
    }
  }
}

/**
 * Removes a test's work directory after unmounting whatever is mounted below it: podman bind-mounts each graphroot's
 * overlay/ onto itself, and image mounts may be left by a failed test (deepest first).
 */
export function removeWorkDir(work: string | undefined): void {
  if (!work) return;
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(work + '/'))
    .sort()
    .reverse();
  for (const m of mounts) spawnSync('umount', [m]);
  fs.rmSync(work, { recursive: true, force: true });
}

/**
 * Runnable test images, built offline: Debian's static busybox (package busybox-static) as /bin/busybox with the
 * applets linked to it, the host's /etc/os-release, a passwd/group with a non-root user, and a second layer with a
 * whiteout, an opaque directory and a non-executable file. Written as an OCI layout (TestImage) that commitOf()
 * turns into a Store commit, or that skopeo/podman can read.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as H from './hostile.js';
import { sha256, type BuiltLayer, type TestImage } from './images.js';

export const BUSYBOX = '/bin/busybox';

export const APPLETS = [
  'sh', 'cat', 'ls', 'id', 'echo', 'env', 'pwd', 'touch', 'mkdir', 'test', 'sleep', 'stat', 'printf', 'grep', 'true',
  'false', 'ip', 'hostname', 'wc', 'rm', 'kill', 'head', 'tr', 'sed', 'cp', 'mv', 'ps', 'mount', 'whoami', 'tail',
];

/** Throws with the Debian package to install when busybox is missing or not static. */
export function requireBusybox(): void {
  let ok = false;
  try {
    const head = fs.readFileSync(BUSYBOX).subarray(0, 4096).toString('latin1');
    ok = head.startsWith('\x7fELF') && !head.includes('ld-linux');
  } catch {
    ok = false;
  }
  if (!ok) throw new Error(`${BUSYBOX} (static) not found: run \`apt-get install busybox-static\``);
}

export const OS_RELEASE = (() => {
  try {
    return fs.readFileSync('/etc/os-release', 'utf8');
  } catch {
    return 'PRETTY_NAME="Carrier Test Linux"\nNAME="Carrier Test Linux"\nID=carriertest\n';
  }
})();

const MTIME = 1_700_000_000;

export interface RunnableImageOptions {
  /** Changes the config (and so the image id) without changing the layers. */
  label?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  /** Extra layers on top ([path, content] files). */
  extraLayers?: [string, string][][];
}

function layerOf(entries: Buffer[], gzip: boolean): BuiltLayer {
  const tar = H.tar(...entries);
  const blob = gzip ? zlib.gzipSync(tar) : tar;
  return {
    tar,
    blob,
    digest: sha256(blob),
    size: blob.length,
    mediaType: gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
    diffID: sha256(tar),
  };
}

/** The distro-ish base: busybox, /etc (os-release, passwd, group), home and data directories. */
export function baseLayers(): BuiltLayer[] {
  requireBusybox();
  const o = { mtime: MTIME };
  const root = { ...o, uid: 0, gid: 0 };
  const base: Buffer[] = [
    H.dir('bin/', root),
    H.file('bin/busybox', fs.readFileSync(BUSYBOX), { ...root, mode: 0o755 }),
    ...APPLETS.map((a) => H.symlink(`bin/${a}`, 'busybox', root)),
    H.dir('usr/', root),
    H.symlink('usr/bin', '../bin', root),
    H.dir('etc/', root),
    H.file('etc/os-release', OS_RELEASE, root),
    H.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App User:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', root),
    H.file('etc/group', 'root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n', root),
    H.dir('root/', { ...root, mode: 0o700 }),
    H.dir('home/', root),
    H.dir('home/app/', { ...o, uid: 1000, gid: 1000, mode: 0o755 }),
    H.dir('tmp/', { ...root, mode: 0o1777 }),
    H.dir('data/', root),
    H.file('data/gone.txt', 'removed by the next layer\n', root),
    H.file('data/kept.txt', 'kept\n', root),
    H.dir('data/opaque/', root),
    H.file('data/opaque/old.txt', 'hidden by the opaque marker\n', root),
  ];
  const second: Buffer[] = [
    H.dir('data/', root),
    H.file('data/.wh.gone.txt', '', root),
    H.dir('data/opaque/', root),
    H.file('data/opaque/.wh..wh..opq', '', root),
    H.file('data/opaque/new.txt', 'new in layer 2\n', root),
    H.file('bin/notexec', 'not a program\n', { ...root, mode: 0o644 }),
    H.dir('work/', root),
    H.file('work/hello.sh', '#!/bin/sh\necho "hello from $0 as $(id -u)"\n', { ...root, mode: 0o755 }),
  ];
  return [layerOf(base, true), layerOf(second, false)];
}

/** Writes the runnable image as an OCI layout under `dir`. */
export function buildRunnableImage(dir: string, opts: RunnableImageOptions = {}): TestImage {
  fs.mkdirSync(path.join(dir, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const write = (b: Buffer): string => {
    const d = sha256(b);
    fs.writeFileSync(path.join(dir, 'blobs/sha256', d.slice(7)), b);
    return d;
  };
  const layers = baseLayers();
  for (const extra of opts.extraLayers ?? []) {
    layers.push(layerOf(extra.map(([p, c]) => H.file(p, c, { mtime: MTIME })), false));
  }
  for (const l of layers) write(l.blob);
  const config: Record<string, unknown> = {
    Env: opts.env ?? ['PATH=/usr/local/bin:/usr/bin:/bin', 'IMAGE_VAR=from-image'],
    Cmd: opts.cmd ?? ['/bin/sh', '-c', 'cat /etc/os-release'],
    WorkingDir: opts.workdir ?? '/work',
    Labels: { 'carrier.test': opts.label ?? 'runnable' },
  };
  if (opts.entrypoint) config.Entrypoint = opts.entrypoint;
  if (opts.user) config.User = opts.user;
  const configBuf = Buffer.from(
    JSON.stringify({
      created: '2023-11-14T22:13:20Z',
      architecture: 'amd64',
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
      history: layers.map((_, i) => ({ created: '2023-11-14T22:13:20Z', created_by: `layer ${i}` })),
    }),
  );
  const configDigest = write(configBuf);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBuf.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const manifestDigest = write(manifest);
  const tag = 'latest';
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { ociDir: dir, tag, config: configBuf, configDigest, manifest, manifestDigest, diffIDs: layers.map((l) => l.diffID), layers };
}

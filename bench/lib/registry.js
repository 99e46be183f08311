// An OCI layout of fixture layers, a local registry to serve it, and pushing it there with skopeo: what the pull and
// scaling suites pull from.
//
// Each image variant is an OCI layout whose layer blobs are hard links to the fixture files, pushed as it is (skopeo
// copies blobs that already have the right compression without recompressing them), and the pushed manifest is read
// back from the registry and compared with the layout's, so what the contenders pull is known byte for byte. Pushing
// the compressed files ourselves rather than letting skopeo compress also sidesteps skopeo's blob-info cache, which
// may answer a request for a zstd copy of a layer with a gzip blob it pushed earlier.
//
// The registry (Debian's docker-registry, the CNCF distribution registry) keeps its storage in bench/work/registry/
// between benchmark runs: an image already there with the same manifest is not pushed again.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exists } from './fixture.js';
import { run, sha256 } from './util.js';

const hostArch = () => ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' })[process.arch] ?? process.arch;

const LAYER_TYPE = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/**
 * An OCI layout at `dir` holding one image per compression (tags `gzip`, `zstd`) made of `layers` (each with tar,
 * gzip, zstd paths and meta). Layer blobs are hard links to the fixture files. Returns per tag the manifest bytes,
 * digests and layer descriptors.
 */
export async function writeLayout(dir, name, layers) {
  await fs.promises.rm(dir, { recursive: true, force: true });
  const blobs = path.join(dir, 'blobs', 'sha256');
  await fs.promises.mkdir(blobs, { recursive: true });
  const put = async (bytes) => {
    const d = sha256(bytes);
    await fs.promises.writeFile(path.join(blobs, d.slice(7)), bytes);
    return d;
  };
  const images = {};
  const index = [];
  for (const c of ['gzip', 'zstd']) {
    const descs = [];
    for (const l of layers) {
      const target = path.join(blobs, l.meta[c].digest.slice(7));
      if (!(await exists(target))) {
        try {
          await fs.promises.link(l[c], target);
        } catch {
          await fs.promises.copyFile(l[c], target);
        }
      }
      descs.push({ mediaType: LAYER_TYPE[c], digest: l.meta[c].digest, size: l.meta[c].size });
    }
    const diffIds = layers.map((l) => l.meta.tar.digest);
    const config = Buffer.from(
      JSON.stringify({
        created: '2026-01-01T00:00:00Z',
        architecture: hostArch(),
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: layers.map((_, i) => ({ created: '2026-01-01T00:00:00Z', created_by: `carrier bench ${name} layer ${i + 1}` })),
      }),
    );
    const configDigest = await put(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: descs,
      }),
    );
    const manifestDigest = await put(manifest);
    index.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: manifestDigest,
      size: manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': c },
    });
    images[c] = { manifest, manifestDigest, configDigest, diffIds, layers: descs };
  }
  await fs.promises.writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: index }));
  await fs.promises.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return images;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A `docker-registry serve` configuration: filesystem storage in `dataDir` (upload purging off), listening on `addr`;
 * read-only when `readonly`, over TLS with `tls` ({ cert, key }), a pull-through cache of `proxy` (a URL) when given.
 */
export function registryYaml({ dataDir, addr, readonly = false, tls, proxy }) {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    '    readonly:',
    `      enabled: ${readonly}`,
    'http:',
    `  addr: ${addr}`,
    ...(tls ? ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`] : []),
    ...(proxy ? ['proxy:', `  remoteurl: ${proxy}`] : []),
    '',
  ].join('\n');
}

/**
 * Starts `docker-registry serve` on a free 127.0.0.1 port, plain http, storage in `dataDir` (kept between runs).
 * Resolves with { host, url, version, stop() }.
 */
export async function startRegistry(dataDir) {
  await fs.promises.mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = path.join(dataDir, '..', 'registry.yml');
  await fs.promises.writeFile(config, registryYaml({ dataDir, addr: host }));
  const logFile = path.join(dataDir, '..', 'registry.log');
  const fd = fs.openSync(logFile, 'w');
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const kill = () => child.kill('SIGKILL');
  // stopped with the benchmark, however it ends (Ctrl-C included)
  const onSignal = (sig) => {
    kill();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', kill);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const url = `http://${host}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${fs.readFileSync(logFile, 'utf8').slice(-1500)}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const version = (await run('docker-registry', ['--version'], { allowFail: true })).stdout.trim();
  return {
    host,
    url,
    pid: child.pid,
    version,
    async stop() {
      process.off('exit', kill);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The manifest the registry serves for repo:tag (bytes), or null. */
export async function fetchManifest(reg, repo, tag) {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  return res.ok ? body : null;
}

/**
 * Makes sure `repo:tag` in the registry is exactly `image` (manifest bytes equal; then every blob it names is there
 * with the right size), pushing it from the OCI layout with skopeo if not.
 */
export async function ensurePushed(reg, layoutDir, tag, repo, image, log) {
  const check = async () => {
    const got = await fetchManifest(reg, repo, tag);
    if (!got) return 'missing';
    if (!got.equals(image.manifest)) {
      const doc = JSON.parse(got.toString());
      const want = image.layers.map((l) => `${l.mediaType} ${l.digest}`).join(', ');
      const have = (doc.layers ?? []).map((l) => `${l.mediaType} ${l.digest}`).join(', ');
      return `the registry serves a different manifest (${sha256(got)}; layers ${have}; expected ${want})`;
    }
    for (const d of [image.configDigest, ...image.layers.map((l) => l.digest)]) {
      const res = await fetch(`${reg.url}/v2/${repo}/blobs/${d}`, { method: 'HEAD' });
      if (!res.ok) return `blob ${d} missing (${res.status})`;
    }
    return null;
  };
  const before = await check();
  if (!before) return { pushed: false };
  const t0 = Date.now();
  log?.(`  pushing ${repo}:${tag} with skopeo ...`);
  await run('skopeo', [
    'copy', '-q', '--retry-times', '0', '--dest-tls-verify=false', '--preserve-digests',
    `oci:${layoutDir}:${tag}`, `docker://${reg.host}/${repo}:${tag}`,
  ], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  const after = await check();
  if (after) throw new Error(`after pushing ${repo}:${tag}: ${after}`);
  return { pushed: true, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Makes `repo:<compression>` in the registry the image of `layers` for each of `compressions`, through an OCI layout
 * in bench/work/fixtures/<layoutName> (removed afterwards). Returns { images: writeLayout's, pushed: { compression:
 * ensurePushed's } }.
 */
export async function pushLayers(reg, workDir, { layoutName, name, repo, layers, compressions, log }) {
  const layoutDir = path.join(workDir, 'fixtures', layoutName);
  const images = await writeLayout(layoutDir, name, layers);
  const pushed = {};
  for (const c of compressions) pushed[c] = await ensurePushed(reg, layoutDir, c, repo, images[c], log);
  await fs.promises.rm(layoutDir, { recursive: true, force: true });
  return { images, pushed };
}

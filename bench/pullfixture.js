// Images for the pull benchmark, a local registry to serve them, and pushing them there with skopeo.
//
// Two images, each in a gzip (gzip -6) and a zstd (zstd -3) variant, built from real files on this machine:
//   distro      one layer: the apply suite's /usr-based layer (bench/fixture.js), ≈200 MiB tar / ≈7k entries
//   smallfiles  three layers with ≈50k entries between them, mostly small files (every file ≤ 1 MiB of whole /usr
//               subtrees) topped up with larger files to ≈1 GiB of tar
// The layers are compressed once by the command-line tools and cached in bench/work/fixtures/; each variant is an
// OCI layout whose layer blobs are hard links to those files, pushed as it is (skopeo copies blobs that already
// have the right compression without recompressing them), and the pushed manifest is read back from the registry
// and compared with the layout's, so what the contenders pull is known byte for byte. Pushing the compressed files
// ourselves rather than letting skopeo compress also sidesteps skopeo's blob-info cache, which may answer a request
// for a zstd copy of a layer with a gzip blob it pushed earlier.
//
// The registry (Debian's docker-registry, the CNCF distribution registry) keeps its storage in bench/work/registry/
// between benchmark runs: an image already there with the same manifest is not pushed again.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  listUnits, collectUnit, listKey, exists, TAR_CREATE, compressAll, describe, pruneStale,
} from './fixture.js';
import { run, MiB } from './util.js';

const SMALL = 1 * MiB;

/**
 * The small-files image's selection: whole /usr subtrees in a fixed pseudo-random order with their files ≤ 1 MiB
 * until there are `targetEntries` entries, then the larger files held back from those subtrees (hash order) until the
 * tar is about `targetBytes`; split into `layers` groups of subtrees with about the same number of bytes each.
 */
export function selectSmallFiles({ targetBytes, targetEntries, layers = 3 }) {
  const units = listUnits('smallfiles ');
  const order = (p) => createHash('sha1').update('smallfiles ' + p).digest('hex');
  const header = (p) => 512 + (Buffer.byteLength(p) > 99 ? 1024 : 0);
  const blocks = (n) => Math.ceil(n / 512) * 512;

  const chosen = [];
  const held = [];
  let count = 0;
  let bytes = 0;
  const inodes = new Set();
  for (const u of units) {
    if (count >= targetEntries * 0.97) break;
    const unit = collectUnit(u);
    if (!unit.entries.length) continue;
    const keep = [];
    let ub = 0;
    for (const e of unit.entries) {
      if (e.type === 'f' && e.size > SMALL) {
        held.push({ ...e, unit: u });
        continue;
      }
      keep.push(e);
      ub += header(e.path) + (e.type === 'f' && !inodes.has(e.ino) ? blocks(e.size) : 0);
    }
    if (count + keep.length > targetEntries * 1.02) continue;
    if (bytes + ub > targetBytes) continue;
    for (const e of keep) if (e.type === 'f') inodes.add(e.ino);
    chosen.push({ rel: u, entries: keep, bytes: ub });
    count += keep.length;
    bytes += ub;
  }
  // top up with the held-back large files of the chosen subtrees
  const taken = new Set(chosen.map((c) => c.rel));
  held.sort((a, b) => (order(a.path) < order(b.path) ? -1 : 1));
  const byUnit = new Map(chosen.map((c) => [c.rel, c]));
  for (const e of held) {
    if (bytes >= targetBytes * 0.97) break;
    if (!taken.has(e.unit) || inodes.has(e.ino)) continue;
    const b = header(e.path) + blocks(e.size);
    if (bytes + b > targetBytes * 1.02) continue;
    inodes.add(e.ino);
    const c = byUnit.get(e.unit);
    c.entries.push(e);
    c.bytes += b;
    bytes += b;
    count++;
  }
  // split: biggest subtrees first, each to the layer with the fewest bytes so far
  const groups = Array.from({ length: layers }, () => ({ units: [], bytes: 0 }));
  for (const c of [...chosen].sort((a, b) => b.bytes - a.bytes || (a.rel < b.rel ? -1 : 1))) {
    const g = groups.reduce((m, x) => (x.bytes < m.bytes ? x : m));
    g.units.push(c);
    g.bytes += c.bytes;
  }
  return groups.map((g) => {
    const all = new Map();
    for (const unit of g.units) {
      const parts = unit.rel.split('/');
      for (let i = 1; i < parts.length; i++) {
        const a = parts.slice(0, i).join('/');
        if (!all.has(a)) all.set(a, { path: a, type: 'd', size: 0, mtime: Math.floor(fs.lstatSync('/' + a).mtimeMs) });
      }
      for (const e of unit.entries) all.set(e.path, e);
    }
    const entries = [...all.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    return { entries, units: g.units.map((u) => u.rel), estimatedTarBytes: g.bytes };
  });
}

/** Builds (or reuses) the small-files image's layers: [{ tar, gzip, zstd, meta, entries, counts }]. */
export async function buildSmallFilesLayers(workDir, { targetBytes, targetEntries, log }) {
  const t0 = Date.now();
  const groups = selectSmallFiles({ targetBytes, targetEntries });
  const key = listKey(groups.flatMap((g) => g.entries), `smallfiles v1 ${targetBytes} ${targetEntries} ${groups.map((g) => g.entries.length).join(',')}`);
  const root = path.join(workDir, 'fixtures');
  const dir = path.join(root, `smallfiles-${key}`);
  await fs.promises.mkdir(dir, { recursive: true });
  const spec = JSON.stringify({ smallfiles: true, targetBytes, targetEntries });
  await fs.promises.writeFile(path.join(dir, 'spec.json'), spec);
  await pruneStale(root, path.basename(dir), spec, log);
  const layers = [];
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    const tarPath = path.join(dir, `layer${i}.tar`);
    if (!(await exists(tarPath))) {
      log?.(`building small-files layer ${i + 1}/${groups.length}: ${g.entries.length} entries of /usr (${g.units.length} subtrees) ...`);
      const listPath = path.join(dir, `layer${i}.list.nul`);
      await fs.promises.writeFile(listPath, g.entries.map((e) => e.path + '\0').join(''));
      await run('tar', ['-c', ...TAR_CREATE, '-f', `${tarPath}.tmp`, '-C', '/', '--null', '-T', listPath]);
      await fs.promises.rename(`${tarPath}.tmp`, tarPath);
    }
    const { gz, zst } = await compressAll(tarPath, { parallel: true, log });
    const meta = await describe(tarPath, gz, zst);
    const counts = { dirs: 0, files: 0, symlinks: 0 };
    for (const e of g.entries) counts[{ d: 'dirs', f: 'files', l: 'symlinks' }[e.type]]++;
    layers.push({ tar: tarPath, gzip: gz, zstd: zst, meta, entries: g.entries.length, counts });
  }
  return { key, dir, layers, took: (Date.now() - t0) / 1000 };
}

const hostArch = () => ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' })[process.arch] ?? process.arch;
const sha256 = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');

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
 * Starts `docker-registry serve` on a free 127.0.0.1 port, plain http, storage in `dataDir` (kept between runs).
 * Resolves with { host, url, version, stop() }.
 */
export async function startRegistry(dataDir) {
  await fs.promises.mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = path.join(dataDir, '..', 'registry.yml');
  await fs.promises.writeFile(
    config,
    [
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
      'http:',
      `  addr: ${host}`,
      '',
    ].join('\n'),
  );
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

// The pull contenders: every way of getting an image from the local registry onto disk that the pull and scaling
// suites (and benchPull) compare. Each is a command (or two) timed from spawn to exit, given a fresh empty directory `dir` (on the same
// file system as everything else) and a short fresh run directory `runDir` (podman refuses run roots longer than 50
// characters). Every command runs under /usr/bin/time when it is installed, for its peak RSS (ru_maxrss: the largest
// resident set of the process or any descendant it waited for).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleTree } from './machine.js';

const pureNodePull = path.join(path.dirname(fileURLToPath(import.meta.url)), 'purenode-pull.js');

export const TIME_BIN = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/**
 * Runs one command; resolves { seconds, code, stdout, stderr, peakKiB (from /usr/bin/time), cpuSeconds (user +
 * system time of the command and the children it waited for, from /usr/bin/time), treePeakKiB (when `sample`) }.
 * Never rejects on a non-zero exit (the caller decides).
 */
export function timedCommand(cmd, args, { env, cwd, sample = false } = {}) {
  return new Promise((resolve, reject) => {
    let rssFile;
    let argv = [cmd, ...args];
    if (TIME_BIN) {
      rssFile = path.join(fs.mkdtempSync('/tmp/cbt-'), 'rss');
      argv = [TIME_BIN, '-f', '%U %S %M', '-o', rssFile, ...argv];
    }
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const sampler = sample ? sampleTree(child.pid) : null;
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const treePeakKiB = sampler?.stop();
      let peakKiB;
      let cpuSeconds;
      if (rssFile) {
        try {
          const lines = fs.readFileSync(rssFile, 'utf8').trim().split('\n');
          const [user, sys, rss] = lines[lines.length - 1].split(' ').map(Number);
          peakKiB = rss;
          cpuSeconds = user + sys;
        } catch {}
        fs.rmSync(path.dirname(rssFile), { recursive: true, force: true });
      }
      resolve({
        seconds,
        code: signal ? signal : code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        peakKiB: Number.isFinite(peakKiB) ? peakKiB : undefined,
        cpuSeconds: Number.isFinite(cpuSeconds) ? cpuSeconds : undefined,
        treePeakKiB,
      });
    });
  });
}

/** A `pull -q` into a store (carrier's or podman's): timed, failing on a non-zero exit; the last stdout line is the id. */
async function storePull(what, cmd, args, env, sample) {
  const r = await timedCommand(cmd, args, { env, sample });
  if (r.code !== 0) throw fail(what, r);
  return { seconds: r.seconds, peakKiB: r.peakKiB, treePeakKiB: r.treePeakKiB, id: r.stdout.trim().split('\n').pop() };
}

function fail(what, r) {
  const text = (r.stderr || r.stdout).trim().split('\n').filter((l) => !/Command exited with non-zero status/.test(l));
  return new Error(`${what} exited ${r.code}: ${text.slice(-3).join(' | ').slice(0, 600)}`);
}

/**
 * ref = { host, url, repo, tag, name: `${host}/${repo}:${tag}` }; carrierCli = path of the copied dist/cli/bin.cjs (the bundled CLI, as installed).
 * Each contender's run(ref, dir, runDir, { sample }) resolves { seconds, peakKiB, treePeakKiB, id, parts?, mode? }.
 */
export function makePullContenders({ carrierCli }) {
  const list = [];
  if (carrierCli) {
    // the default (layers flushed with syncfs before they are recorded complete), and --no-sync, which flushes
    // nothing, as podman does: the like-for-like durability comparison; and, for gzip images, the default with zlib's
    // inflate instead of ISA-L's igzip (the inflater carrier uses where libisal.so.2 loads), to show what igzip earns
    const variants = [
      ['carrier', 'carrier pull', []],
      ['carrier-nosync', 'carrier pull --no-sync', ['--no-sync']],
      ['carrier-zlib', 'carrier pull, zlib inflate', [], { CARRIER_INFLATE: 'zlib' }],
    ];
    for (const [id, label, extra, extraEnv] of variants) {
      list.push({
        id,
        label,
        command: `${extraEnv ? Object.entries(extraEnv).map(([k, v]) => `${k}=${v} `).join('') : ''}carrier --root R --runroot RR pull --tls-verify=false -q ${extra.join(' ')}${extra.length ? ' ' : ''}IMG (XDG_DATA_HOME=fresh: empty blob cache)`,
        store: 'overlay',
        gzipOnly: Boolean(extraEnv),
        async run(ref, dir, runDir, { sample } = {}) {
          const root = path.join(dir, 'root');
          const xdg = path.join(dir, 'xdg');
          fs.mkdirSync(xdg, { recursive: true });
          const env = { ...process.env, XDG_DATA_HOME: xdg, ...extraEnv };
          delete env.CONTAINERS_STORAGE_CONF;
          return storePull(label, process.execPath,
            [carrierCli, '--root', root, '--runroot', runDir, 'pull', '--tls-verify=false', '-q', ...extra, ref.name], env, sample);
        },
        graphroot: (dir) => path.join(dir, 'root'),
      });
    }
  }
  list.push({
    id: 'podman',
    label: 'podman pull',
    command: 'podman --root R --runroot RR --storage-driver overlay pull -q --tls-verify=false IMG (CONTAINERS_STORAGE_CONF: overlay, R, RR)',
    store: 'overlay',
    async run(ref, dir, runDir, { sample } = {}) {
      const root = path.join(dir, 'root');
      const conf = path.join(dir, 'storage.conf');
      fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runDir}"\n`);
      const env = { ...process.env, CONTAINERS_STORAGE_CONF: conf };
      return storePull('podman pull', 'podman',
        ['--root', root, '--runroot', runDir, '--storage-driver', 'overlay', 'pull', '-q', '--tls-verify=false', ref.name], env, sample);
    },
    graphroot: (dir) => path.join(dir, 'root'),
  });
  list.push({
    id: 'skopeo-umoci',
    label: 'skopeo copy + umoci unpack',
    command: 'skopeo copy --src-tls-verify=false docker://IMG oci:D/oci:latest && umoci unpack --image D/oci:latest D/bundle',
    // variant -> umoci's complaint, for images whose layers umoci cannot unpack (umoci 0.4.7 has no zstd): for those,
    // skopeo copy recompresses the layers to gzip on the way (--dest-compress-format gzip), which is what a user of
    // that umoci has to do, and the row says so
    recompressed: new Map(),
    async run(ref, dir, _runDir, { sample } = {}) {
      const oci = path.join(dir, 'oci');
      const bundle = path.join(dir, 'bundle');
      const gzip = this.recompressed.has(ref.variant);
      const s = await timedCommand(
        'skopeo',
        [
          'copy', '-q', '--retry-times', '0', '--src-tls-verify=false',
          ...(gzip ? ['--dest-compress', '--dest-compress-format', 'gzip'] : []),
          `docker://${ref.name}`, `oci:${oci}:latest`,
        ],
        { sample },
      );
      if (s.code !== 0) throw fail('skopeo copy', s);
      const u = await timedCommand('umoci', ['unpack', '--image', `${oci}:latest`, bundle], { sample });
      if (u.code !== 0) {
        const msg = (u.stderr || u.stdout).trim();
        if (!gzip && /not correct mediatype|unsupported.*media ?type|unknown.*compression/i.test(msg)) {
          // found out in the warm-up: do this run again the way that works
          this.recompressed.set(ref.variant, msg.split('\n').pop().replace(/^\s*⨯\s*/, '').slice(0, 300));
          fs.rmSync(oci, { recursive: true, force: true });
          fs.rmSync(bundle, { recursive: true, force: true });
          return this.run(ref, dir, _runDir, { sample });
        }
        throw fail('umoci unpack', u);
      }
      const parts = { skopeo: s.seconds, umoci: u.seconds };
      const max = (a, b) => (a === undefined && b === undefined ? undefined : Math.max(a ?? 0, b ?? 0));
      return {
        seconds: s.seconds + u.seconds,
        peakKiB: max(s.peakKiB, u.peakKiB),
        treePeakKiB: max(s.treePeakKiB, u.treePeakKiB),
        parts,
        mode: gzip ? 'recompressed' : 'full',
      };
    },
    rootfs: (dir) => path.join(dir, 'bundle', 'rootfs'),
  });
  list.push({
    id: 'pure-node',
    label: 'pure Node: undici + zlib/fzstd + tar-stream + crypto',
    command: 'node bench/lib/purenode-pull.js URL REPO TAG D (one directory per layer, no records)',
    async run(ref, dir, _runDir, { sample } = {}) {
      const out = path.join(dir, 'layers');
      fs.mkdirSync(out, { recursive: true });
      const r = await timedCommand(process.execPath, [pureNodePull, ref.url, ref.repo, ref.tag, out], { sample });
      if (r.code !== 0) throw fail('pure-node pull', r);
      const res = JSON.parse(r.stdout.trim().split('\n').pop());
      return { seconds: r.seconds, peakKiB: r.peakKiB, treePeakKiB: r.treePeakKiB, id: res.id, layers: res.layers };
    },
    layerDir: (dir, i) => path.join(dir, 'layers', String(i)),
  });
  // The floor: what the pull could not beat with its bytes already on this machine, each half on its own (the
  // layer blobs and tars are read from the page cache, as the registry's files are). Layers 3 at a time, as the pulls.
  list.push({
    id: 'floor-decompress',
    label: 'floor: decompress the layer blobs to /dev/null',
    command: 'gzip -dc / zstd -dc of every layer blob > /dev/null, 3 at a time (xargs -P3)',
    floor: true,
    async run(ref, _dir, _runDir, { sample } = {}) {
      const tool = ref.compression === 'zstd' ? 'zstd' : 'gzip';
      const r = await timedCommand(
        'sh',
        ['-c', `printf '%s\\0' "$@" | xargs -0 -P3 -n1 ${tool} -dc > /dev/null`, 'sh', ...ref.blobs],
        { sample },
      );
      if (r.code !== 0) throw fail('decompress', r);
      return { seconds: r.seconds, peakKiB: r.peakKiB, treePeakKiB: r.treePeakKiB };
    },
  });
  list.push({
    id: 'floor-tar',
    label: 'floor: GNU tar -xf of the plain layer tars',
    command: 'tar --numeric-owner -xpf LAYER.tar -C D/<n> for every layer, 3 at a time (xargs -P3)',
    floor: true,
    async run(ref, dir, _runDir, { sample } = {}) {
      const pairs = ref.tars.flatMap((t, i) => [t, path.join(dir, 'layers', String(i))]);
      const r = await timedCommand(
        'sh',
        [
          '-c',
          `printf '%s\\0' "$@" | xargs -0 -P3 -n2 sh -c 'mkdir -p "$2" && exec tar --numeric-owner -xpf "$1" -C "$2"' sh`,
          'sh', ...pairs,
        ],
        { sample },
      );
      if (r.code !== 0) throw fail('tar -xf', r);
      return { seconds: r.seconds, peakKiB: r.peakKiB, treePeakKiB: r.treePeakKiB };
    },
  });
  return list;
}

/**
 * One run of pull contender `c` for `ref`: a fresh run root under `runBase`, a fresh scratch file system from
 * `scratch(bytes, fn)` (bench/lib/scratch.js), `timed(fn)` around the pull itself (bench/lib/roundrobin.js). Resolves the
 * contender's result; throws when its image id is not `configDigest` (when given).
 */
export async function pullOnScratch(c, ref, { scratch, bytes, runBase, timed, configDigest }) {
  const runDir = fs.mkdtempSync(path.join(runBase, 'r'));
  try {
    return await scratch(bytes, async (dir) => {
      const r = await timed(() => c.run(ref, dir, runDir, {}));
      if (configDigest && r.id !== undefined && r.id !== configDigest.slice(7)) throw new Error(`image id ${r.id} != config digest ${configDigest.slice(7)}`);
      return r;
    });
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

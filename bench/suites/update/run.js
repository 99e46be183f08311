// The update suite (`npm run bench -- --suite update`, issue 22): an image's v1 is in the store, pull its v2. v1 is the
// pull suite's distro-sized layer (real files of /usr); v2 is that layer with one small file changed (`one`), or with
// every regular file changed (`all`: the first byte of each file's content flipped, sizes and headers kept). All three
// are pushed by Carrier's own `push --compression-format zstd:chunked` to a registry of the suite's own.
//
// A run: a fresh scratch file system, a fresh store (and an empty blob cache) on it; v1 is pulled from the loopback
// registry (not timed), then v2 is pulled over the link being measured, timed from spawn to exit; the image id is
// checked. Contenders, round-robin:
//   carrier          carrier pull (--partial=auto, the default): fetches only the files the store lacks when cheaper
//   carrier-hardlinks  the same with --use-hard-links: unchanged files hard-linked (owner, mode, mtime, xattrs equal)
//   carrier-full     carrier pull --partial=never: the whole layer blob
//   podman           podman pull (partial pulls off, podman's default)
//   podman-partial   podman pull with `pull_options = {enable_partial_images = "true"}` in the storage.conf given to it
//                    (podman 4.3.1 reads only the older `io.containers.zstd-chunked.*` annotations: here a full pull)
// Links: the loopback registry (stores on ext4, and again on XFS with reflinks), and the 100 Mbit/s, 50 ms shaped link (bench/lib/shaped-link.js) where the machine
// allows one (root, ip netns, tc).
import fs from 'node:fs';
import path from 'node:path';
import { buildFixture } from '../../lib/fixture.js';
import { startRegistry } from '../../lib/registry.js';
import { startShapedLink, SHAPED_LINKS } from '../../lib/shaped-link.js';
import { timedCommand } from '../../lib/pullers.js';
import { tarImage, withStore } from '../../lib/store.js';
import { roundRobin, timings } from '../../lib/roundrobin.js';
import { run, median, sha256File, MiB } from '../../lib/util.js';

export const UPDATE_CONFIG = {
  quick: { runs: 0, distro: { targetBytes: 50 * MiB, targetEntries: 1750 }, links: ['loopback', 'loopback-xfs'] },
  full: { runs: 5, distro: { targetBytes: 200 * MiB, targetEntries: 7000 }, links: ['loopback', 'loopback-xfs', '100mbit-50ms'] },
};

const SCENARIOS = [
  { id: 'one', title: 'one small file changed' },
  { id: 'all', title: 'every file changed' },
];

/** The regular files of a tar as [offset of content, size, name] (ustar/pax headers, 512-byte blocks). */
function tarFiles(buf) {
  const out = [];
  let at = 0;
  let paxSize;
  while (at + 512 <= buf.length) {
    const h = buf.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const type = String.fromCharCode(h[156] || 0x30);
    let size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    if (paxSize !== undefined) size = paxSize;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/, '');
    if (type === 'x') {
      const m = /\d+ size=(\d+)\n/.exec(buf.subarray(at + 512, at + 512 + size).toString('latin1'));
      paxSize = m ? Number(m[1]) : undefined;
    } else {
      paxSize = undefined;
      if (type === '0' && size > 0) out.push([at + 512, size, name]);
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** v2 tars made from v1's: `one` changes the content of one small file, `all` of every file (same sizes). */
async function makeVariants(fixture, dir, log) {
  const files = {};
  const v1 = await fs.promises.readFile(fixture.tar);
  const regular = tarFiles(v1);
  for (const s of SCENARIOS) {
    const p = path.join(dir, `${s.id}.tar`);
    files[s.id] = p;
    if (fs.existsSync(p)) continue;
    const t = Buffer.from(v1);
    const change = s.id === 'one' ? [regular.filter(([, size]) => size >= 1024 && size <= 8192).sort((a, b) => a[1] - b[1])[0]] : regular;
    for (const [off] of change) t[off] ^= 0xff;
    await fs.promises.writeFile(`${p}.tmp`, t);
    await fs.promises.rename(`${p}.tmp`, p);
    log(`  update fixture ${s.id}: ${change.length} of ${regular.length} regular files changed (${s.id === 'one' ? `${change[0][2]}, ${change[0][1]} bytes` : 'every one'})`);
  }
  return files;
}

/** Pushes v1 and the v2s as zstd:chunked from a staging Carrier store (API of the copied build). */
async function pushImages(ctx, reg, repo, tars, staging) {
  const { push } = await import(new URL(`file://${ctx.carrier.entry}`).href);
  const out = {};
  await withStore(ctx.carrier.entry, { root: path.join(staging, 'root'), runroot: path.join(staging, 'run'), driver: 'overlay' }, async (store) => {
    for (const [tag, tar] of Object.entries(tars)) {
      const diffID = await sha256File(tar);
      const img = tarImage([{ tar, diffID, size: fs.statSync(tar).size }], { Cmd: ['/bin/sh'] });
      const committed = await store.commitImage({ ...img, names: [`localhost/update:${tag}`] });
      const r = await push(store, `localhost/update:${tag}`, `${reg.host}/${repo}:${tag}`, { tlsVerify: false, compressionFormat: 'zstd:chunked', blobCache: false });
      const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      const manifest = await res.json();
      const layer = manifest.layers[0];
      if (!layer.annotations?.['io.github.containers.zstd-chunked.tarsplit-position']) throw new Error(`${repo}:${tag} was not pushed as zstd:chunked`);
      out[tag] = { id: committed.id ?? img.configDigest.slice(7), configDigest: img.configDigest, manifestDigest: r.manifestDigest, layerDigest: layer.digest, layerSize: layer.size, tarSize: fs.statSync(tar).size };
    }
  });
  return out;
}

function failed(what, r) {
  const text = (r.stderr || r.stdout).trim().split('\n').filter((l) => !/Command exited with non-zero status/.test(l));
  return new Error(`${what} exited ${r.code}: ${text.slice(-3).join(' | ').slice(0, 500)}`);
}

const PARTIAL_LINE = /partially: fetching ([0-9.]+ ?[KMG]?i?B), skipping ([0-9.]+ ?[KMG]?i?B)/;

/** ctx: bench/run.js's suite context */
export async function runUpdateSuite(ctx) {
  const { log, workDir } = ctx;
  const { started, cfg, runs } = ctx.begin('update', UPDATE_CONFIG);
  if (!ctx.carrier.entry) throw new Error('carrier is not loadable: nothing to compare');
  const cli = path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs');
  const version = async (cmd) => ((await run(cmd, ['--version'], { allowFail: true }).catch(() => ({ stdout: 'not installed' }))).stdout.trim().split('\n')[0]);
  const tools = { podman: await version('podman'), registry: await version('docker-registry') };
  log(`tools: ${Object.values(tools).join('; ')}`);

  const fixture = await buildFixture(workDir, { ...cfg.distro, log });
  const dir = path.join(workDir, 'update', fixture.key);
  fs.mkdirSync(dir, { recursive: true });
  const tars = { v1: fixture.tar, ...(await makeVariants(fixture, dir, log)) };
  const base = `/tmp/cbup${process.pid}`;
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  const regData = path.join(workDir, 'update', 'registry');
  fs.rmSync(regData, { recursive: true, force: true });
  const stops = [];
  const notes = [];
  try {
    const reg = await startRegistry(path.join(regData, 'data'));
    stops.push(() => reg.stop());
    const repo = `bench/update-${fixture.key}`;
    const t0 = Date.now();
    const images = await ctx.scratch(4 * 1024 ** 3, (staging) => pushImages(ctx, reg, repo, tars, staging));
    log(`update images: carrier pushed v1, ${SCENARIOS.map((s) => s.id).join(', ')} as zstd:chunked in ${((Date.now() - t0) / 1000).toFixed(1)} s (${Object.entries(images).map(([t, i]) => `${t} ${(i.layerSize / MiB).toFixed(1)} MiB`).join(', ')})`);

    const links = [];
    for (const id of cfg.links) {
      if (id === 'loopback') links.push({ id, title: 'loopback, plain http', host: reg.host });
      // The same, with every contender's store on a fresh XFS (reflink on, mkfs.xfs's default) instead of ext4: where
      // a partial pull clones the files the store already has instead of writing them again.
      else if (id === 'loopback-xfs') links.push({ id, title: 'loopback, plain http, store on XFS (reflinks)', host: reg.host, fsType: 'xfs' });
      else if (ctx.opts.shaped !== false) {
        // The pull suite's link, under a name and addresses of this suite's own: the network namespace, devices and
        // addresses are machine-wide, and another benchmark process may be running the pull suite's at the same time.
        const spec = { ...SHAPED_LINKS.find((l) => l.id === id), id: `u${id}`, registryIp: '10.22.2.2', hostIp: '10.22.2.1' };
        try {
          const link = await startShapedLink(path.join(regData, 'data'), path.join(base, id), spec);
          stops.push(() => link.stop());
          links.push({ id, title: spec.title, host: link.host });
        } catch (e) {
          notes.push(`shaped link ${id} not measured: ${e.message.split('\n')[0]}`);
          log(`  !! shaped link ${id}: ${e.message.split('\n')[0]}`);
        }
      }
    }

    const carrier = (extra) => async (d, runDir, ref, { v1 }) => {
      const env = { ...process.env, XDG_DATA_HOME: path.join(d, 'xdg'), XDG_CONFIG_HOME: path.join(d, 'config') };
      for (const k of ['CONTAINERS_STORAGE_CONF', 'CARRIER_BLOB_CACHE', 'CONTAINERS_REGISTRIES_CONF']) delete env[k];
      const g = [cli, '--root', path.join(d, 'root'), '--runroot', runDir];
      const first = await timedCommand(process.execPath, [...g, 'pull', '-q', '--tls-verify=false', v1], { env });
      if (first.code !== 0) throw failed('carrier pull v1', first);
      return () => timedCommand(process.execPath, [...g, 'pull', '--tls-verify=false', ...extra, ref], { env });
    };
    const podman = (partial) => async (d, runDir, ref, { v1 }) => {
      const root = path.join(d, 'root');
      const conf = path.join(d, 'storage.conf');
      fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runDir}"\n` +
        (partial ? '[storage.options]\npull_options = {enable_partial_images = "true", use_hard_links = "false"}\n' : ''));
      const env = { ...process.env, CONTAINERS_STORAGE_CONF: conf };
      const g = ['--root', root, '--runroot', runDir, '--tmpdir', path.join(d, 'tmp'), '--storage-driver', 'overlay'];
      const first = await timedCommand('podman', [...g, 'pull', '-q', '--tls-verify=false', v1], { env });
      if (first.code !== 0) throw failed('podman pull v1', first);
      return () => timedCommand('podman', [...g, 'pull', '-q', '--tls-verify=false', ref], { env });
    };
    const contenders = [
      { id: 'carrier', label: 'carrier pull (--partial=auto)', command: 'carrier --root R --runroot RR pull --tls-verify=false V2', prepare: carrier([]) },
      { id: 'carrier-hardlinks', label: 'carrier pull --use-hard-links', command: 'carrier --root R --runroot RR pull --tls-verify=false --use-hard-links V2', prepare: carrier(['--use-hard-links']) },
      { id: 'carrier-full', label: 'carrier pull --partial=never', command: 'carrier --root R --runroot RR pull --tls-verify=false --partial=never V2', prepare: carrier(['--partial=never']) },
      { id: 'podman', label: 'podman pull', command: 'podman --root R --runroot RR --tmpdir T --storage-driver overlay pull -q --tls-verify=false V2', prepare: podman(false) },
      { id: 'podman-partial', label: 'podman pull, enable_partial_images', command: 'podman … pull -q --tls-verify=false V2 (storage.conf: pull_options = {enable_partial_images = "true"})', prepare: podman(true) },
    ];

    const fetched = new Map();
    const items = links.flatMap((link) => SCENARIOS.flatMap((s) => contenders.map((k) => ({
      id: `${link.id} ${s.id} ${k.id}`,
      contender: k.id,
      run: async ({ timed, round }) => {
        const runDir = fs.mkdtempSync(path.join(base, 'r'));
        try {
          return await ctx.scratch(4 * 1024 ** 3 + 6 * images.v1.tarSize, async (d) => {
            fs.mkdirSync(path.join(d, 'tmp'), { recursive: true });
            const pullV2 = await k.prepare(d, runDir, `${link.host}/${repo}:${s.id}`, { v1: `${reg.host}/${repo}:v1` });
            const r = await timed(async () => {
              const x = await pullV2();
              return { ...x };
            });
            if (r.code !== 0) throw failed(`${k.id} pull v2`, r);
            const id = r.stdout.trim().split('\n').pop();
            if (id !== images[s.id].configDigest.slice(7)) throw new Error(`image id ${id} != ${images[s.id].configDigest.slice(7)}`);
            if (round === 0 && k.id.startsWith('carrier') && k.id !== 'carrier-full') {
              const m = PARTIAL_LINE.exec(r.stderr);
              fetched.set(`${link.id} ${s.id} ${k.id}`, m ? { partial: true, fetching: m[1], skipping: m[2] } : { partial: false });
            }
            return { seconds: r.seconds, peakKiB: r.peakKiB, cpu: r.cpuSeconds };
          }, link.fsType ? { fsType: link.fsType } : undefined);
        } finally {
          fs.rmSync(runDir, { recursive: true, force: true });
        }
      },
    }))));
    log(`\nupdate: v1 in the store, pull v2 (${SCENARIOS.map((s) => s.title).join('; ')}) over ${links.map((l) => l.id).join(', ')}; warm-up + ${runs}`);
    const cells = await roundRobin(ctx, items, runs, {
      failPrefix: 'run failed: ',
      onWarm: (it, r) => {
        const [l, s] = it.id.split(' ');
        const f = fetched.get(`${l} ${s} ${it.contender}`);
        log(`  ${it.id.padEnd(36)} ${r.seconds.toFixed(2).padStart(7)} s, ${r.cpu?.toFixed(2) ?? '?'} CPU-s${f ? (f.partial ? `; partial: fetched ${f.fetching}, skipped ${f.skipping}` : '; fetched whole') : ''}`);
      },
      onRound: (round, seconds) => {
        if (round > 0) log(`  update round ${round}/${runs} done in ${seconds.toFixed(1)} s`);
      },
    });
    const rows = [];
    for (const link of links) {
      for (const s of SCENARIOS) {
        for (const k of contenders) {
          const cell = cells.get(`${link.id} ${s.id} ${k.id}`);
          if (!cell) continue;
          const cpu = cell.results.map((r) => r.cpu).filter((x) => x !== undefined);
          rows.push({
            link: link.id, linkTitle: link.title, scenario: s.id, scenarioTitle: s.title, contender: k.id, label: k.label, command: k.command,
            ...timings(cell), cpuMedian: cpu.length ? median(cpu) : undefined, peakRssKiB: cell.peakKiB,
            fetched: fetched.get(`${link.id} ${s.id} ${k.id}`),
            problems: cell.problems, notes: cell.notes, disturbed: cell.disturbed,
          });
        }
      }
    }
    return {
      ...ctx.reportHead('update', started, { runs, config: cfg, tools }),
      image: { key: fixture.key, entries: fixture.entries, tarSize: images.v1.tarSize, layers: Object.fromEntries(Object.entries(images).map(([t, i]) => [t, { layerSize: i.layerSize, layerDigest: i.layerDigest, configDigest: i.configDigest }])) },
      scenarios: SCENARIOS,
      links: links.map(({ id, title, fsType }) => ({ id, title, fsType: fsType ?? 'ext4' })),
      rows,
      notes,
      disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    fs.rmSync(base, { recursive: true, force: true });
  }
}

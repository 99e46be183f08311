// The pull suite's network scenarios (issue 21): the distro gzip image pulled
// - over plain http and over TLS (a second docker-registry on the same storage with `http.tls`, its certificate from a
//   CA made for the run, given to carrier and podman with --cert-dir, as podman users give one), carrier against
//   podman, wall time and CPU-seconds (user + sys of the process tree, GNU time) per pull;
// - over shaped links when the machine allows (bench/lib/shaped-link.js: the registry in its own network namespace
//   behind a veth pair, tc rate limit, a delaying relay for the round trip), plain http;
// - through a pull-through cache (docker-registry in proxy mode, warm, a registries.conf mirror on this side of the
//   slowest link) against that link direct;
// - by 4 carrier processes at once into 4 stores that share one blob cache, against one pull alone, through a relay
//   that counts blob GETs: each blob is downloaded once (the cache's per-digest lock).
// Every run: a fresh store on a fresh scratch file system, an empty blob cache; contenders round-robin.
import fs from 'node:fs';
import path from 'node:path';
import { makeCa, startRegistryOn, startCountingRelay, timedCpu, freePort } from '../../lib/netlab.js';
import { startShapedLink, ownShapedLink, SHAPED_LINKS } from '../../lib/shaped-link.js';
import { roundRobin, timings } from '../../lib/roundrobin.js';
import { median } from '../../lib/util.js';

function failed(what, r) {
  return new Error(`${what} exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 500)}`);
}

/** `carrier pull -q` into a fresh store under `dir` with an empty blob cache; `cacheDir` shares one instead. */
function carrierPull(cli, ref, dir, runDir, { certDir, cacheDir, registriesConf } = {}) {
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(xdg, { recursive: true });
  const env = { ...process.env, XDG_DATA_HOME: xdg, XDG_CONFIG_HOME: path.join(dir, 'config') };
  delete env.CONTAINERS_STORAGE_CONF;
  delete env.CARRIER_BLOB_CACHE;
  if (registriesConf) env.CONTAINERS_REGISTRIES_CONF = registriesConf;
  else delete env.CONTAINERS_REGISTRIES_CONF;
  const access = certDir ? ['--cert-dir', certDir] : ['--tls-verify=false'];
  return timedCpu(process.execPath, [cli, ...(cacheDir ? ['--blob-cache', cacheDir] : []), '--root', path.join(dir, 'root'), '--runroot', runDir, 'pull', '-q', ...access, ref], { env });
}

function podmanPull(ref, dir, runDir, { certDir } = {}) {
  const root = path.join(dir, 'root');
  const conf = path.join(dir, 'storage.conf');
  fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runDir}"\n`);
  const access = certDir ? ['--cert-dir', certDir] : ['--tls-verify=false'];
  return timedCpu('podman', ['--root', root, '--runroot', runDir, '--storage-driver', 'overlay', 'pull', '-q', ...access, ref], { env: { ...process.env, CONTAINERS_STORAGE_CONF: conf } });
}

/**
 * The link alone: `curl` fetching the image's layer blobs (in parallel) over the same link, TLS and relay, discarding
 * them. What the link and its relay give one client: a TLS handshake, a round trip and the bytes.
 */
function curlBlobs(link, v, caFile) {
  const urls = v.blobDigests.flatMap((d) => ['-o', '/dev/null', `https://${link.host}/v2/${v.ref.repo}/blobs/${d}`]);
  return timedCpu('curl', ['-sS', '-f', ...(v.blobDigests.length > 1 ? ['-Z'] : []), '--cacert', caFile, ...urls]);
}

// Applies the last layer's blob from a local file with carrier's applyLayer in a child process and prints the
// seconds it took (the import excluded): the apply tail the link floor adds.
const APPLY_LOCAL = `const c = await import(process.argv[1]);
const t0 = process.hrtime.bigint();
await c.applyLayer(process.argv[2], process.argv[3]);
console.log(Number(process.hrtime.bigint() - t0) / 1e9);`;

/** One timed pull on a fresh scratch file system; checks the image id. */
async function onScratch(ctx, v, runBase, fn) {
  const runDir = fs.mkdtempSync(path.join(runBase, 'r'));
  try {
    return await ctx.scratch(4 * 1024 ** 3 + 8 * v.tarSize + 8 * v.compressedSize, (dir) => fn(dir, runDir));
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

function checkId(what, r, v) {
  if (r.code !== 0) throw failed(what, r);
  const id = r.stdout.trim().split('\n').pop();
  if (id !== v.configDigest.slice(7)) throw new Error(`${what}: image id ${id} != ${v.configDigest.slice(7)}`);
  return { seconds: r.seconds, cpu: r.cpu, peakKiB: r.peakKiB };
}

// a contender --only left out has no cell: it has no row either
const rowsOf = (cells, items, extra) =>
  items.filter((it) => cells.has(it.id)).map((it) => {
    const cell = cells.get(it.id);
    const cpu = cell.results.map((r) => r.cpu).filter((x) => x !== undefined);
    return { ...extra(it, cell), contender: it.contender, ...timings(cell), cpuMedian: cpu.length ? median(cpu) : undefined, problems: cell.problems, disturbed: cell.disturbed };
  });

/**
 * ctx: the suite context; v: the distro/gzip variant; dataDir: the suite registry's storage; carrierCli: dist/cli/bin.cjs (the bundled CLI, as installed).
 * Returns { links: [...], linkRows: [...], concurrentRows: [...], notes: [...] } for report.js.
 */
export async function runNetworkScenarios(ctx, { v, dataDir, carrierCli, carrierEntry, runs }) {
  const { log } = ctx;
  const dir = path.join(ctx.workDir, 'network');
  fs.rmSync(dir, { recursive: true, force: true });
  const runBase = `/tmp/cbn${process.pid}`;
  fs.mkdirSync(runBase, { recursive: true });
  const notes = [];
  const stops = [];
  try {
    // ---- links: plain http and TLS on loopback, then the shaped ones --------------------------------------------
    const shaped = SHAPED_LINKS.map((_, i) => ownShapedLink(i));
    const ca = await makeCa(path.join(dir, 'ca'), ['127.0.0.1', ...shaped.map((l) => l.registryIp)]);
    const tls = await startRegistryOn(dataDir, dir, { addr: `127.0.0.1:${await freePort()}`, tls: ca, name: 'tls' });
    stops.push(() => tls.stop());
    const links = [
      { id: 'http', title: 'loopback, plain http', host: v.ref.host },
      { id: 'tls', title: 'loopback, TLS (--cert-dir)', host: tls.host, certDir: ca.certDir },
    ];
    if (ctx.opts.shaped !== false) {
      for (const spec of shaped) {
        try {
          const link = await startShapedLink(dataDir, path.join(dir, spec.id), spec, { tls: ca });
          stops.push(() => link.stop());
          links.push({ id: spec.id, title: spec.title, host: link.host, certDir: ca.certDir, floorSeconds: v.compressedSize / (spec.rateMbit * 125_000), spec });
        } catch (e) {
          notes.push(`shaped link ${spec.id} not measured: ${e.message.split('\n')[0]}`);
          log(`  !! shaped link ${spec.id}: ${e.message.split('\n')[0]}`);
        }
      }
    }
    const ref = (link) => `${link.host}/${v.ref.repo}:${v.ref.tag}`;
    const pullItems = links.flatMap((link) => [
      ...(carrierCli ? [{ id: `${link.id} carrier`, contender: 'carrier', link }] : []),
      { id: `${link.id} podman`, contender: 'podman', link },
      ...(link.spec ? [{ id: `${link.id} curl`, contender: 'curl', link }] : []),
    ]).map((it) => ({
      ...it,
      run: it.contender === 'curl'
        ? ({ timed }) => timed(async () => {
          const r = await curlBlobs(it.link, v, ca.ca);
          if (r.code !== 0) throw failed('curl', r);
          return { seconds: r.seconds, cpu: r.cpu };
        })
        : ({ timed }) => onScratch(ctx, v, runBase, (d, runDir) => timed(async () => checkId(`${it.id}`, it.contender === 'carrier'
          ? await carrierPull(carrierCli, ref(it.link), d, runDir, { certDir: it.link.certDir })
          : await podmanPull(ref(it.link), d, runDir, { certDir: it.link.certDir }), v))),
    }));
    // The floor's apply tail, measured among the pulls: the last layer applied from its local blob.
    const tailItem = carrierEntry && links.some((l) => l.spec)
      ? [{
          id: 'apply tail', contender: 'carrier',
          run: ({ timed }) => onScratch(ctx, v, runBase, (d) => timed(async () => {
            const out = path.join(d, 'layer');
            fs.mkdirSync(out);
            const r = await timedCpu(process.execPath, ['--input-type=module', '-e', APPLY_LOCAL, carrierEntry, v.ref.blobs.at(-1), out]);
            const seconds = Number(r.stdout.trim());
            if (r.code !== 0 || !Number.isFinite(seconds)) throw failed('applyLayer from a local blob', r);
            return { seconds, cpu: r.cpu };
          })),
        }]
      : [];
    const linkItems = [...pullItems, ...tailItem];
    log(`\npull network scenarios: ${v.id} over ${links.map((l) => l.id).join(', ')}; carrier and podman round-robin (warm-up + ${runs})`);
    const linkCells = await roundRobin(ctx, linkItems, runs, {
      name: 'network ',
      failPrefix: 'run failed: ',
      onWarm: (it, r) => log(`  ${it.id.padEnd(24)} ${r.seconds.toFixed(2).padStart(7)} s, ${r.cpu?.toFixed(2) ?? '?'} CPU-s`),
    });
    const tail = linkCells.get('apply tail');
    const applyTailSeconds = tail && Number.isFinite(tail.median) ? tail.median : undefined;
    for (const l of links) if (l.floorSeconds !== undefined && applyTailSeconds !== undefined) l.floorWithTailSeconds = l.floorSeconds + applyTailSeconds;
    const linkRows = rowsOf(linkCells, pullItems, (it) => ({ link: it.link.id, linkTitle: it.link.title, floorSeconds: it.link.floorSeconds }));

    // ---- a pull-through cache on this side of the slowest link, against the link itself ----------------------------
    const cacheRows = [];
    const slow = [...links].reverse().find((l) => l.spec);
    if (carrierCli && slow) {
      const proxy = await startRegistryOn(path.join(dir, 'proxy-data'), dir, {
        addr: `127.0.0.1:${await freePort()}`, name: 'proxy', proxy: `https://${slow.host}`, env: { SSL_CERT_FILE: ca.ca },
      });
      stops.push(() => proxy.stop());
      const conf = path.join(dir, 'registries-mirror.conf');
      fs.writeFileSync(conf, `[[registry]]\nlocation = "${slow.host}"\n[[registry.mirror]]\nlocation = "${proxy.host}"\ninsecure = true\n`);
      const items = [
        { id: `direct over ${slow.title}`, contender: 'carrier', mirror: false },
        { id: 'through a pull-through cache (warm) on this side', contender: 'carrier', mirror: true },
      ].map((it) => ({
        ...it,
        run: ({ timed }) => onScratch(ctx, v, runBase, (d, runDir) => timed(async () => {
          const conf_ = it.mirror ? conf : undefined;
          return checkId(it.id, await carrierPull(carrierCli, ref(slow), d, runDir, { certDir: slow.certDir, registriesConf: conf_ }), v);
        })),
      }));
      // warmed once, untimed: the cache then holds the image, as it would after the first machine of a fleet pulled it
      await onScratch(ctx, v, runBase, async (d, runDir) => checkId('warming the pull-through cache', await carrierPull(carrierCli, ref(slow), d, runDir, { certDir: slow.certDir, registriesConf: conf }), v));
      log(`\npull: ${v.id} through a pull-through cache (docker-registry proxy mode, a registries.conf mirror) against ${slow.title} direct`);
      const cells = await roundRobin(ctx, items, runs, {
        name: 'mirror ',
        failPrefix: 'run failed: ',
        onWarm: (it, r) => log(`  ${it.id.padEnd(50)} ${r.seconds.toFixed(2).padStart(7)} s, ${r.cpu?.toFixed(2)} CPU-s`),
      });
      cacheRows.push(...rowsOf(cells, items, (it) => ({ scenario: it.id, link: slow.id })));
    }

    // ---- one download per blob: 4 pulls at once sharing one blob cache, against one ---------------------------------
    const concurrentRows = [];
    if (carrierCli) {
      const relay = await startCountingRelay(v.ref.url);
      stops.push(() => relay.stop());
      const relayRef = `${relay.host}/${v.ref.repo}:${v.ref.tag}`;
      const group = (n, shared) => async ({ timed }) =>
        onScratch(ctx, v, runBase, (d, runDir) => timed(async () => {
          relay.blobGets.clear();
          const t0 = process.hrtime.bigint();
          const cache = path.join(d, 'shared-cache');
          const results = await Promise.all(Array.from({ length: n }, (_, i) => {
            const sd = path.join(d, `s${i}`);
            const rd = path.join(runDir, String(i));
            fs.mkdirSync(sd, { recursive: true });
            fs.mkdirSync(rd, { recursive: true });
            return carrierPull(carrierCli, relayRef, sd, rd, shared ? { cacheDir: cache } : {});
          }));
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          results.forEach((r, i) => checkId(`pull ${i + 1} of ${n}`, r, v));
          const layerGets = v.blobDigests.reduce((a, dg) => a + (relay.blobGets.get(dg) ?? 0), 0);
          return { seconds, cpu: results.reduce((a, r) => a + (r.cpu ?? 0), 0), layerGets };
        }));
      const items = [
        { id: 'one pull', contender: 'carrier', n: 1, run: group(1, false) },
        { id: '4 pulls, one shared blob cache', contender: 'carrier', n: 4, run: group(4, true) },
        { id: '4 pulls, a blob cache each', contender: 'carrier', n: 4, run: group(4, false) },
      ];
      log(`\npull: 4 carrier pulls of ${v.id} at once (4 stores) against one, through a relay counting blob GETs`);
      const cells = await roundRobin(ctx, items, runs, {
        name: 'concurrent ',
        failPrefix: 'run failed: ',
        onWarm: (it, r) => log(`  ${it.id.padEnd(32)} ${r.seconds.toFixed(2).padStart(7)} s, ${r.cpu?.toFixed(2)} CPU-s, ${r.layerGets} layer GETs (${v.blobDigests.length} layer(s))`),
      });
      concurrentRows.push(...rowsOf(cells, items, (it, cell) => ({
        scenario: it.id,
        pulls: it.n,
        layerGets: [cell.warmResult, ...cell.results].filter(Boolean).map((r) => r.layerGets),
        layers: v.blobDigests.length,
      })));
    }
    return {
      image: v.id,
      compressedSize: v.compressedSize,
      links: links.map(({ id, title, floorSeconds, floorWithTailSeconds, spec }) => ({ id, title, floorSeconds, floorWithTailSeconds, spec })),
      ...(applyTailSeconds !== undefined ? { applyTailSeconds } : {}),
      linkRows,
      cacheRows,
      concurrentRows,
      notes,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    fs.rmSync(runBase, { recursive: true, force: true });
  }
}

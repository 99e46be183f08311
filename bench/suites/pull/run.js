// The pull suite (`npm run bench -- --suite pull`): carrier pull against podman pull, skopeo copy + umoci unpack and a
// pure-Node pipeline, from a docker-registry this suite starts on 127.0.0.1 (plain http), for two images in a gzip and
// a zstd variant each (distro: bench/lib/fixture.js, smallfiles: fixture.js). For the gzip variants carrier also runs
// with CARRIER_INFLATE=zlib, so the rows show what ISA-L's igzip (the default where libisal.so.2 loads) earns.
//
// Method (bench/run.js): every run pulls into a fresh store or directory on a fresh file system of its own
// (bench/lib/scratch.js), with a fresh short run root under /tmp; carrier also gets a fresh empty blob cache
// (XDG_DATA_HOME) there. For each image variant the contenders run round-robin, one warm-up round then N timed
// rounds, each command timed from spawn to exit. Before each run: wait for a quiet machine, GC, sync; a run during
// which other processes used the CPUs is redone. The floor rows decompress the layer blobs to /dev/null and extract
// the plain layer tars with GNU tar, from local files.
//
// The warm-up round checks: carrier's image id equals podman's (and the config digest); the layer records
// (overlay-layers/layers.json) agree on diff-digest, compressed-diff-digest and diff-size; carrier's manifest digest
// record equals podman's; every diff/ directory carrier made matches its layer tar's headers exactly; umoci's rootfs
// and the pure-Node layers exist and the pure-Node pipeline verified every digest. It also samples the RSS of the
// whole process tree of every contender (every 50 ms); every run records the peak RSS of the largest process through
// /usr/bin/time.
import fs from 'node:fs';
import path from 'node:path';
import { buildFixture } from '../../lib/fixture.js';
import { startRegistry, pushLayers } from '../../lib/registry.js';
import { makePullContenders, TIME_BIN } from '../../lib/pullers.js';
import { median, fmtDuration, run, MiB } from '../../lib/util.js';
import { treeManifest, tarManifest, classifyDiff, some } from '../../lib/tree.js';
import { timings, roundRobin, timed } from '../../lib/roundrobin.js';
import { buildSmallFilesLayers } from './fixture.js';
import { runDefaultLayout } from './default-layout.js';
import { runNetworkScenarios } from './network.js';

export const PULL_CONFIG = {
  quick: {
    runs: 0,
    distro: { targetBytes: 50 * MiB, targetEntries: 1750 },
    smallfiles: { targetBytes: 128 * MiB, targetEntries: 6400 },
  },
  full: {
    runs: 5,
    distro: { targetBytes: 200 * MiB, targetEntries: 7000 },
    smallfiles: { targetBytes: 1024 * MiB, targetEntries: 50000 },
  },
};

async function toolVersions() {
  const first = async (cmd, args) => {
    try {
      const r = await run(cmd, args, { allowFail: true });
      return (r.stdout || r.stderr).trim().split('\n')[0] || 'unavailable';
    } catch {
      return 'not installed';
    }
  };
  return {
    podman: await first('podman', ['--version']),
    skopeo: await first('skopeo', ['--version']),
    umoci: await first('umoci', ['--version']),
    registry: await first('docker-registry', ['--version']),
    time: TIME_BIN ? `${TIME_BIN} -f %M` : 'not installed (sampling only)',
  };
}

const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));

/** ctx: bench/run.js's suite context (opts, quick, log, workDir, carrier, quiet, settle, isDisturbed, scratch, …) */
export async function runPullSuite(ctx) {
  const { opts, log, workDir } = ctx;
  const { started, cfg, runs } = ctx.begin('pull', PULL_CONFIG);
  const tools = await toolVersions();
  log(`tools: ${tools.podman}; ${tools.skopeo}; ${tools.umoci}; ${tools.registry}; ${TIME_BIN ? '/usr/bin/time for peak RSS' : 'no /usr/bin/time (peak RSS from sampling only)'}`);
  const missing = ['podman', 'skopeo', 'registry'].filter((t) => /not installed|unavailable/.test(tools[t]));
  if (missing.length) throw new Error(`${missing.join(', ')} not found: apt-get install -y podman skopeo docker-registry`);
  const noUmoci = /not installed/.test(tools.umoci);
  if (noUmoci) log('  !! umoci not installed: no skopeo + umoci rows (install it with: apt-get install -y umoci)');

  // ---- fixtures, registry, push -----------------------------------------------------------------------------
  const distro = await buildFixture(workDir, { ...cfg.distro, log });
  log(
    `distro image: 1 layer, ${distro.entries} entries; tar ${(distro.meta.tar.size / MiB).toFixed(1)} MiB, gzip ` +
      `${(distro.meta.gzip.size / MiB).toFixed(1)} MiB, zstd ${(distro.meta.zstd.size / MiB).toFixed(1)} MiB`,
  );
  const small = await buildSmallFilesLayers(workDir, { ...cfg.smallfiles, log });
  const sum = (k, c) => small.layers.reduce((a, l) => a + (k === 'entries' ? l.entries : l.meta[c].size), 0);
  log(
    `small-files image: ${small.layers.length} layers, ${sum('entries')} entries (${small.layers.map((l) => l.entries).join(' + ')}); ` +
      `tar ${(sum('size', 'tar') / MiB).toFixed(1)} MiB, gzip ${(sum('size', 'gzip') / MiB).toFixed(1)} MiB, zstd ${(sum('size', 'zstd') / MiB).toFixed(1)} MiB ` +
      `(ready in ${small.took.toFixed(1)} s)`,
  );
  const distroLayer = { tar: distro.tar, gzip: distro.gzip, zstd: distro.zstd, meta: distro.meta, entries: distro.entries, counts: distro.counts };
  const imageDefs = [
    { name: 'distro', title: 'distro-sized single layer', key: distro.key, layers: [distroLayer] },
    { name: 'smallfiles', title: 'three layers of small files', key: small.key, layers: small.layers },
  ];
  const registryRoot = path.join(workDir, 'registry');
  // the registry's storage outlives a run; when the fixtures change (the machine's /usr did), start it empty again
  const stateFile = path.join(registryRoot, 'images.json');
  let state = {};
  try {
    state = readJson(stateFile);
  } catch {}
  const mode = ctx.quick ? 'quick' : 'full';
  const keys = imageDefs.map((d) => `${d.name}-${d.key}`).join(',');
  if (state[mode] && state[mode] !== keys) {
    log('registry: the fixture images changed since the last run; emptying bench/work/registry/data');
    fs.rmSync(path.join(registryRoot, 'data'), { recursive: true, force: true });
    state = {};
  }
  const reg = await startRegistry(path.join(registryRoot, 'data'));
  log(`registry: ${tools.registry} on ${reg.url} (storage in bench/work/registry/data)`);
  const variants = [];
  try {
    for (const def of imageDefs) {
      const repo = `bench/${def.name}-${def.key}`;
      const compressions = ['gzip', 'zstd'];
      const { images, pushed: pushes } = await pushLayers(reg, workDir, { layoutName: `oci-${def.name}-${def.key}`, name: def.name, repo, layers: def.layers, compressions, log });
      for (const c of compressions) {
        const pushed = pushes[c];
        const img = images[c];
        variants.push({
          id: `${def.name}/${c}`,
          image: def.name,
          title: def.title,
          compression: c,
          ref: {
            host: reg.host, url: reg.url, repo, tag: c, name: `${reg.host}/${repo}:${c}`, variant: `${def.name}/${c}`,
            compression: c, blobs: def.layers.map((l) => l[c]), tars: def.layers.map((l) => l.tar),
          },
          layers: def.layers,
          manifestDigest: img.manifestDigest,
          configDigest: img.configDigest,
          diffIds: img.diffIds,
          blobDigests: img.layers.map((l) => l.digest),
          compressedSize: img.layers.reduce((a, l) => a + l.size, 0),
          tarSize: def.layers.reduce((a, l) => a + l.meta.tar.size, 0),
          entries: def.layers.reduce((a, l) => a + l.entries, 0),
          pushed,
        });
      }
    }
    fs.writeFileSync(stateFile, JSON.stringify({ ...state, [mode]: keys }) + '\n');
    log(`pushed with skopeo and verified (manifest bytes and blobs as built): ${variants.map((v) => `${v.ref.repo}:${v.ref.tag}${v.pushed.pushed ? '' : ' (already there)'}`).join(', ')}`);

    const contenders = makePullContenders({
      carrierCli: ctx.carrier.entry ? path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs') : null,
    })
      .filter((c) => !opts.only || opts.only.test(c.id))
      .filter((c) => !(noUmoci && c.id === 'skopeo-umoci'));
    if (!ctx.carrier.entry) log(`\n!! carrier not loadable: the pull suite runs the other contenders only`);

    const runBase = `/tmp/cbp${process.pid}`;
    fs.rmSync(runBase, { recursive: true, force: true });
    fs.mkdirSync(runBase, { recursive: true });
    let runSeq = 0;

    const warmRecords = new Map();
    const tarManifests = new Map();
    const key = (v, c) => `${v.id} ${c.id}`;

    const verify = async (v, c, r, dir, cell) => {
      const p = cell.problems;
      const wantId = v.configDigest.slice(7);
      if (r.id !== undefined && r.id !== wantId) p.push(`image id ${r.id} != config digest ${wantId}`);
      if (c.graphroot) {
        const root = c.graphroot(dir);
        try {
          const layers = readJson(path.join(root, 'overlay-layers', 'layers.json'));
          const images = readJson(path.join(root, 'overlay-images', 'images.json'));
          const rec = {
            id: r.id,
            image: images.map((i) => ({ id: i.id, digest: i.digest, layer: i.layer })),
            layers: layers
              .map((l) => ({ id: l.id, parent: l.parent, diff: l['diff-digest'], compressed: l['compressed-diff-digest'], diffSize: l['diff-size'], compressedSize: l['compressed-size'] }))
              .sort((a, b) => v.diffIds.indexOf(a.diff) - v.diffIds.indexOf(b.diff)),
          };
          warmRecords.set(key(v, c), rec);
          const diffs = rec.layers.map((l) => l.diff);
          if (diffs.join() !== v.diffIds.join()) p.push(`layer records' diff-digests ${diffs.join(', ')} != the config's diff_ids ${v.diffIds.join(', ')}`);
          const comp = rec.layers.map((l) => l.compressed);
          if (comp.join() !== v.blobDigests.join()) p.push(`layer records' compressed-diff-digests ${comp.join(', ')} != the manifest's ${v.blobDigests.join(', ')}`);
          if (images.length !== 1 || images[0].id !== wantId || images[0].digest !== v.manifestDigest) {
            p.push(`image records ${JSON.stringify(rec.image)} != [{id ${wantId}, digest ${v.manifestDigest}}]`);
          }
          if (c.id.startsWith('carrier')) {
            // every diff/ tree against its tar's headers (the apply suite's check)
            for (const l of rec.layers) {
              const i = v.diffIds.indexOf(l.diff);
              if (i < 0) continue;
              const tarPath = v.layers[i].tar;
              if (!tarManifests.has(tarPath)) tarManifests.set(tarPath, await tarManifest(tarPath));
              const want = tarManifests.get(tarPath);
              const got = treeManifest(path.join(root, 'overlay', l.id, 'diff'));
              if (got.digest === want.digest) continue;
              const d = classifyDiff(want, got);
              if (d.other.length) p.push(`layer ${i + 1}: ${d.other.length} entries differ from the tar headers: ${some(d.other)}`);
              if (d.dirMtime.length) cell.notes.push(`layer ${i + 1}: directory mtime not restored on ${d.dirMtime.length}: ${some(d.dirMtime)}`);
              if (d.symlinkMtime.length) cell.notes.push(`layer ${i + 1}: symlink mtime not restored on ${d.symlinkMtime.length}: ${some(d.symlinkMtime)}`);
            }
          }
        } catch (e) {
          p.push(`cannot read the store's records: ${e.message.split('\n')[0]}`);
        }
      }
      if (c.rootfs) {
        const rootfs = c.rootfs(dir);
        if (!fs.existsSync(rootfs) || fs.readdirSync(rootfs).length === 0) p.push(`${rootfs} missing or empty`);
      }
      if (c.layerDir) {
        if ((r.layers ?? []).map((l) => l.diffDigest).join() !== v.diffIds.join()) p.push(`diff digests ${JSON.stringify(r.layers)} != diff_ids`);
        v.layers.forEach((_, i) => {
          const d = c.layerDir(dir, i);
          if (!fs.existsSync(d) || fs.readdirSync(d).length === 0) p.push(`layer directory ${i} missing or empty`);
        });
      }
    };

    // the cross-check: carrier's records against podman's
    const crossCheck = (v, cells) => {
      const a = warmRecords.get(`${v.id} carrier`);
      const b = warmRecords.get(`${v.id} podman`);
      if (!a || !b) return;
      const cell = cells.get(`${v.id} carrier`);
      if (a.id !== b.id) cell.problems.push(`image id ${a.id} != podman's ${b.id}`);
      const fields = ['id', 'parent', 'diff', 'compressed', 'diffSize', 'compressedSize'];
      const show = (x) => x.layers.map((l) => fields.map((f) => l[f] ?? '-').join(' ')).join(' / ');
      if (show(a) !== show(b)) cell.problems.push(`layer records differ from podman's: carrier ${show(a)} | podman ${show(b)}`);
      if (JSON.stringify(a.image) !== JSON.stringify(b.image)) cell.problems.push(`image record ${JSON.stringify(a.image)} != podman's ${JSON.stringify(b.image)}`);
      v.crossCheck = {
        carrierId: a.id,
        podmanId: b.id,
        idsEqual: a.id === b.id,
        recordsEqual: show(a) === show(b),
        imageRecordEqual: JSON.stringify(a.image) === JSON.stringify(b.image),
        layers: a.layers.map((l) => ({ id: l.id, diffDigest: l.diff, compressedDigest: l.compressed, diffSize: l.diffSize })),
      };
      log(
        `  check ${v.id}: carrier id ${a.id.slice(0, 12)} ${a.id === b.id ? '==' : '!='} podman id ${b.id?.slice(0, 12)}; ` +
          `layer records (id, parent, diff-digest, compressed-diff-digest, sizes) ${show(a) === show(b) ? 'equal' : 'DIFFER'}; ` +
          `image record ${v.crossCheck.imageRecordEqual ? 'equal' : 'DIFFERS'}`,
      );
    };

    // one fresh file system per run (bench/lib/scratch.js): the tree, the blob cache or OCI layout, the store records;
    // per round every image variant, its contenders round-robin
    const items = variants.flatMap((v) => contenders.filter((c) => !c.gzipOnly || v.compression === 'gzip').map((c) => ({
      id: key(v, c),
      contender: c.id,
      run: async ({ round, attempt, cell }) => {
        const runDir = path.join(runBase, String(runSeq++));
        fs.mkdirSync(runDir, { recursive: true });
        try {
          const fsBytes = 4 * 1024 ** 3 + 3 * v.tarSize + 2 * v.compressedSize;
          return await ctx.scratch(fsBytes, async (dir) => {
            const res = await timed(ctx, () => c.run(v.ref, dir, runDir, { sample: round === 0 }));
            if (round === 0 && !ctx.willRedo(res, attempt)) {
              cell.treePeakKiB = res.treePeakKiB;
              await verify(v, c, res, dir, cell);
            }
            return res;
          });
        } finally {
          fs.rmSync(runDir, { recursive: true, force: true });
        }
      },
    })));

    log(`\npull warm-up round (checks ids, layer records, carrier's trees; samples whole-tree RSS):`);
    const waited0 = ctx.quietWaited();
    const cells = await roundRobin(ctx, items, runs, {
      failPrefix: 'run failed: ',
      onWarm: (it, r) => {
        const rss = r.peakKiB ? `, peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB` : '';
        const tree = r.treePeakKiB ? ` (tree ${(r.treePeakKiB / 1024).toFixed(0)} MiB sampled)` : '';
        const parts = r.parts ? ` [${Object.entries(r.parts).map(([k, s]) => `${k} ${s.toFixed(2)} s`).join(', ')}]` : '';
        const [v, c] = it.id.split(' ');
        log(`  ${v.padEnd(16)} ${c.padEnd(16)} ${r.seconds.toFixed(2).padStart(7)} s${parts}${rss}${tree}`);
      },
      onRound: (round, seconds, cells) => {
        if (round > 0) {
          log(`  pull round ${round}/${runs} done in ${seconds.toFixed(1)} s`);
          return;
        }
        for (const v of variants) crossCheck(v, cells);
        for (const [k, cell] of cells) for (const p of cell.problems) log(`  !! ${k}: ${p}`);
        for (const [k, cell] of cells) for (const n of cell.notes) log(`  note ${k}: ${n}`);
        const roundSeconds = seconds - (ctx.quietWaited() - waited0);
        // the warm-up round also samples RSS and checks trees: take the run times plus a fixed allowance per run
        const perRound = [...cells.values()].reduce((a, cell) => a + (cell.warm ?? 0), 0) + cells.size * 1.5;
        log(
          `\n${runs} timed pull rounds of ${contenders.length} contenders × ${variants.length} images: about ${fmtDuration(perRound * runs)} ` +
            `(the warm-up round took ${fmtDuration(roundSeconds)} including its checks)`,
        );
      },
    });

    // the pull users actually get (issue 21): the distro gzip image into the default layout on the host file system
    const distroGzip = variants.find((v) => v.id === 'distro/gzip');
    const defaultLayout = distroGzip
      ? await runDefaultLayout(ctx, {
          variant: distroGzip,
          cli: ctx.carrier.entry ? path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs') : null,
          runs,
          runBase,
        })
      : undefined;

    fs.rmSync(runBase, { recursive: true, force: true });

    const rows = [];
    for (const v of variants) {
      for (const c of contenders) {
        const cell = cells.get(key(v, c));
        if (!cell) continue; // left out by --only
        const parts = cell.results.map((r) => r.parts).filter(Boolean);
        const mode = [cell.warmResult, ...cell.results].find((r) => r?.mode && r.mode !== 'full')?.mode;
        const recompressed = c.recompressed?.get(v.id);
        rows.push({
          variant: v.id,
          contender: c.id,
          label: recompressed ? 'skopeo copy --dest-compress-format gzip + umoci unpack ‡' : c.label,
          command: c.command,
          mode: mode ?? 'full',
          recompressed,
          ...timings(cell),
          parts: parts.length ? Object.fromEntries(Object.keys(parts[0]).map((k) => [k, median(parts.map((p) => p[k]))])) : undefined,
          peakRssKiB: cell.peakKiB,
          medianPeakRssKiB: cell.peaks.length ? median(cell.peaks) : undefined,
          treePeakKiB: cell.treePeakKiB,
          problems: cell.problems,
          notes: cell.notes,
          disturbed: cell.disturbed,
        });
      }
    }
    if (noUmoci) {
      for (const v of variants) {
        const i = rows.findIndex((r) => r.variant === v.id && r.contender === 'podman');
        rows.splice(i + 1, 0, {
          variant: v.id, contender: 'skopeo-umoci', label: 'skopeo copy + umoci unpack', command: '', mode: 'full',
          missing: 'umoci is not installed: apt-get install -y umoci (Debian 12 ships 0.4.7)',
          runs: [], median: NaN, min: NaN, max: NaN, problems: [], notes: [], disturbed: 0,
        });
      }
    }
    // the isolated rows of the same image from this run, beside the default layout's (ratios within one run)
    if (defaultLayout) {
      defaultLayout.isolated = Object.fromEntries(
        rows.filter((r) => r.variant === defaultLayout.variant).map((r) => [r.contender, { median: r.median, min: r.min, max: r.max }]),
      );
    }
    // TLS, shaped links and concurrent pulls of one image (network.js), a scenario block of its own
    const network = distroGzip
      ? await runNetworkScenarios(ctx, { v: distroGzip, dataDir: path.join(registryRoot, 'data'), carrierCli: contenders.find((c) => c.id === 'carrier') ? path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs') : null, carrierEntry: ctx.carrier.entry ?? null, runs })
      : undefined;
    const report = {
      ...ctx.reportHead('pull', started, { runs, config: cfg, tools }),
      network,
      registry: { version: reg.version, url: reg.url },
      images: variants.map((v) => ({
        id: v.id,
        title: v.title,
        ref: `${v.ref.repo}:${v.ref.tag}`,
        layers: v.layers.map((l) => ({ tar: l.meta.tar, [v.compression]: l.meta[v.compression], entries: l.entries, counts: l.counts })),
        entries: v.entries,
        tarSize: v.tarSize,
        compressedSize: v.compressedSize,
        manifestDigest: v.manifestDigest,
        configDigest: v.configDigest,
        crossCheck: v.crossCheck,
      })),
      rows,
      defaultLayout,
      disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
    };
    return report;
  } finally {
    await reg.stop();
  }
}

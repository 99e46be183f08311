// The scaling suite (`npm run bench -- --suite scaling`): pull time and peak RSS as the image grows, against podman
// (and skopeo copy + umoci unpack in a full run), from the same local registry as the pull suite.
//
//   size series    one gzip layer of real files from /usr whose tar doubles: 64, 128, 256, 512 MiB (≈35 entries
//                  per MiB, the distro layer's density)
//   layers series  the 64 MiB layer's files split into 1, 10, 100 and 300 gzip layers (the same bytes in all)
//
// Every run pulls into a fresh store on a fresh file system (bench/lib/scratch.js); per image the contenders run
// round-robin, one warm-up then N timed rounds; peak RSS is the largest single process's (GNU time %M), the
// largest over the timed runs. The warm-up checks that every pulled image's id is its config digest.
import fs from 'node:fs';
import path from 'node:path';
import { buildFixture, buildSplitLayers } from '../../lib/fixture.js';
import { startRegistry, pushLayers } from '../../lib/registry.js';
import { makePullContenders, pullOnScratch } from '../../lib/pullers.js';
import { timings, roundRobin } from '../../lib/roundrobin.js';
import { MiB } from '../../lib/util.js';

export const SCALING_CONFIG = {
  quick: { runs: 0, sizesMiB: [8, 16, 32, 64], layers: [1, 10, 100, 300], layersMiB: 16, contenders: ['carrier', 'podman'] },
  full: { runs: 5, sizesMiB: [64, 128, 256, 512], layers: [1, 10, 100, 130, 300], layersMiB: 64, contenders: ['carrier', 'podman', 'skopeo-umoci'] },
};
const ENTRIES_PER_MIB = 35;

export async function runScalingSuite(ctx) {
  const { opts, log, workDir } = ctx;
  const { started, cfg, runs } = ctx.begin('scaling', SCALING_CONFIG);
  if (!ctx.carrier.entry) throw new Error('carrier is not loadable: nothing to scale');

  // ---- images --------------------------------------------------------------------------------------------------
  const points = [];
  for (const mib of cfg.sizesMiB) {
    const fx = await buildFixture(workDir, { targetBytes: mib * MiB, targetEntries: mib * ENTRIES_PER_MIB, parallel: true, log });
    points.push({ series: 'size', x: mib, name: `size-${mib}m`, key: fx.key, layers: [fx], fixture: fx });
  }
  const base = points.find((p) => p.x === cfg.layersMiB)?.fixture ??
    (await buildFixture(workDir, { targetBytes: cfg.layersMiB * MiB, targetEntries: cfg.layersMiB * ENTRIES_PER_MIB, parallel: true, log }));
  for (const n of cfg.layers) {
    const split = n === 1 ? { key: base.key, layers: [base] } : await buildSplitLayers(base, n, { log });
    points.push({ series: 'layers', x: n, name: `layers-${n}`, key: split.key, layers: split.layers });
  }
  const reg = await startRegistry(path.join(workDir, 'registry', 'data'));
  const rows = [];
  const images = [];
  try {
    for (const p of points) {
      const repo = `bench/scaling-${p.name}-${p.key}`;
      const { images: built } = await pushLayers(reg, workDir, { layoutName: `oci-scaling-${p.name}`, name: p.name, repo, layers: p.layers, compressions: ['gzip'], log });
      p.ref = { host: reg.host, url: reg.url, repo, tag: 'gzip', name: `${reg.host}/${repo}:gzip`, variant: p.name, compression: 'gzip' };
      p.configDigest = built.gzip.configDigest;
      p.tarSize = p.layers.reduce((a, l) => a + l.meta.tar.size, 0);
      p.compressedSize = p.layers.reduce((a, l) => a + l.meta.gzip.size, 0);
      p.entries = p.layers.reduce((a, l) => a + l.entries, 0);
      images.push({ series: p.series, x: p.x, name: p.name, ref: `${repo}:gzip`, layers: p.layers.length, tarSize: p.tarSize, compressedSize: p.compressedSize, entries: p.entries, configDigest: p.configDigest });
    }
    log(`images pushed: ${points.map((p) => `${p.name} (${p.layers.length} layer${p.layers.length > 1 ? 's' : ''}, ${(p.tarSize / MiB).toFixed(0)} MiB)`).join(', ')}`);

    const contenders = makePullContenders({ carrierCli: path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs') })
      .filter((c) => cfg.contenders.includes(c.id))
      .filter((c) => !opts.only || opts.only.test(c.id));
    const runBase = fs.mkdtempSync('/tmp/cbs-');
    try {
      for (const p of points) {
        const bytes = 4 * 1024 ** 3 + 3 * p.tarSize + 2 * p.compressedSize;
        const items = contenders.map((c) => ({
          id: c.id,
          run: ({ timed }) => pullOnScratch(c, p.ref, { scratch: ctx.scratch, bytes, runBase, timed, configDigest: p.configDigest }),
        }));
        const cells = await roundRobin(ctx, items, runs, {
          name: `${p.name} `,
          onWarm: (it, r) => log(`  ${p.name.padEnd(12)} ${it.id.padEnd(13)} ${r.seconds.toFixed(2).padStart(7)} s, peak RSS ${r.peakKiB ? (r.peakKiB / 1024).toFixed(0) : '?'} MiB`),
        });
        for (const c of contenders) {
          const cell = cells.get(c.id);
          const mode = cell.results.find((r) => r.mode)?.mode;
          rows.push({
            series: p.series,
            x: p.x,
            image: p.name,
            contender: c.id,
            label: c.label,
            mode: mode ?? 'full',
            ...timings(cell),
            peakRssKiB: cell.peakKiB,
            peaksKiB: cell.peaks,
            problems: cell.problems,
            disturbed: cell.disturbed,
          });
        }
      }
    } finally {
      fs.rmSync(runBase, { recursive: true, force: true });
    }
  } finally {
    await reg.stop();
  }
  return {
    ...ctx.reportHead('scaling', started, { runs, config: cfg }),
    registry: reg.version,
    contenders: Object.fromEntries(
      makePullContenders({ carrierCli: 'carrier' }).filter((c) => cfg.contenders.includes(c.id)).map((c) => [c.id, { label: c.label, command: c.command }]),
    ),
    images,
    rows,
    disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
  };
}

// The layer-apply suite (`npm run bench -- --suite apply`): carrier's applyLayer against GNU tar, pure-Node pipelines
// and the decompression floor, on one layer of real files from this machine (bench/lib/fixture.js), gzip, zstd and
// plain.
//
// Method: every contender extracts into a fresh empty file system of its own (bench/lib/scratch.js), so no run writes
// next to another's tree or right after a delete. Contenders run round-robin (one warm-up round, then N timed
// rounds) so drift hits them all alike. JavaScript contenders (carrier included) run in a fresh Node process per run
// (bench/suites/apply/child.js) and are timed inside it, so no run shares a process with another's leftover GC and JIT work;
// commands are timed spawn to exit. `sync` runs before each timed run, outside the timed region. The page cache is
// not dropped: every contender reads the blob from a warm cache. The warm-up round checks each output tree against
// the tar's own headers (type, mode, owner, size, mtime, link target of every entry), and the digests applyLayer and
// the pure-Node pipelines report against sha256 of the fixture files. Then a memory / event-loop test applies a
// ≈1 GiB layer once per mode.
import fs from 'node:fs';
import path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildFixture, buildLargeFixture } from '../../lib/fixture.js';
import { fmtDuration, MiB } from '../../lib/util.js';
import { syncFs, memoryPressure } from '../../lib/machine.js';
import { treeManifest, tarManifest, classifyDiff, some } from '../../lib/tree.js';
import { timings, roundRobin, timed } from '../../lib/roundrobin.js';
import { makeContenders } from './contenders.js';
import { evaluate } from './report.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child.js');

export const APPLY_CONFIG = {
  quick: { targetBytes: 50 * MiB, targetEntries: 1750, runs: 0, largeBytes: 128 * MiB },
  full: { targetBytes: 200 * MiB, targetEntries: 7000, runs: 5, largeBytes: 1024 * MiB },
};

/** One apply in a fresh Node process (child.js): fork, wait until it is loaded, sync, go. */
function runJob(ctx, job) {
  return new Promise((resolve, reject) => {
    const proc = fork(child, ctx.carrier.entry ? [ctx.carrier.entry] : [], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let err = '';
    let reply;
    let window;
    proc.stderr.on('data', (c) => (err += c));
    proc.on('message', (m) => {
      if (m.type === 'ready') {
        ctx.settle().then((w) => {
          window = w;
          proc.send({ type: 'go', job });
        }, reject);
      } else {
        reply = m;
        if (window) reply.foreign = window.foreign();
      }
    });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (reply?.type === 'done') resolve(reply);
      else if (reply?.type === 'error') reject(new Error(reply.error));
      else reject(new Error(`apply-child exited ${code}: ${err.trim().slice(-1000)}`));
    });
  });
}

export async function runApplySuite(ctx) {
  const { opts, log } = ctx;
  const { started, cfg: config, runs } = ctx.begin('apply', APPLY_CONFIG);
  config.runs = runs;

  const fx = await buildFixture(ctx.workDir, { ...config, log });
  log(
    `fixture ${fx.key}: ${fx.entries} entries (${fx.counts.files} files, ${fx.counts.dirs} dirs, ` +
      `${fx.counts.symlinks} symlinks); tar ${(fx.meta.tar.size / MiB).toFixed(1)} MiB, ` +
      `gzip ${(fx.meta.gzip.size / MiB).toFixed(1)} MiB, zstd ${(fx.meta.zstd.size / MiB).toFixed(1)} MiB ` +
      `(ready in ${fx.took.toFixed(1)} s)`,
  );

  const contenders = makeContenders(fx, !!ctx.carrier.entry).filter((c) => !opts.only || opts.only.test(c.id));
  const fsBytes = 2 * 1024 ** 3 + 2 * fx.meta.tar.size;
  const expected = await tarManifest(fx.tar);

  const verify = (c, r, out, { problems: p, notes }) => {
    if (r.result) {
      const want = c.compression === 'none' ? fx.meta.tar : fx.meta[c.compression];
      if (r.result.diffDigest !== fx.meta.tar.digest) p.push(`diffDigest ${r.result.diffDigest} != ${fx.meta.tar.digest}`);
      if (r.result.diffSize !== fx.meta.tar.size) p.push(`diffSize ${r.result.diffSize} != ${fx.meta.tar.size}`);
      if (r.result.compressedDigest !== want.digest) p.push(`compressedDigest ${r.result.compressedDigest} != ${want.digest}`);
      if (r.result.compressedSize !== want.size) p.push(`compressedSize ${r.result.compressedSize} != ${want.size}`);
      if (r.result.skipped?.length) {
        p.push(`skipped ${r.result.skipped.length} entries, e.g. ${JSON.stringify(r.result.skipped.slice(0, 3))}`);
      }
    }
    if (c.carrier === 'tarsplit') {
      const ts = path.join(`${out}.scratch`, 'layer.tar-split.gz');
      if (!fs.existsSync(ts) || fs.statSync(ts).size === 0) p.push('tar-split file missing or empty');
    }
    if (c.noOutput) return;
    const m = treeManifest(out);
    if (m.digest === expected.digest) return;
    const d = classifyDiff(expected, m);
    if (d.other.length) p.push(`${d.other.length} entries differ from the tar headers: ${some(d.other)}`);
    if (d.dirMtime.length) notes.push(`mtime not restored on ${d.dirMtime.length} of ${fx.counts.dirs} directories: ${some(d.dirMtime)}`);
    if (d.symlinkMtime.length) notes.push(`mtime not restored on ${d.symlinkMtime.length} of ${fx.counts.symlinks} symlinks: ${some(d.symlinkMtime)}`);
  };

  // every run on a fresh file system; JavaScript contenders time themselves in a fresh Node process (runJob)
  const items = contenders.map((c) => ({
    id: c.id,
    run: ({ round, attempt, cell }) => ctx.scratch(fsBytes, async (dir) => {
      const out = path.join(dir, 'out');
      const scratch = `${out}.scratch`;
      fs.mkdirSync(out);
      fs.mkdirSync(scratch);
      let res;
      if (c.kind === 'js') {
        await ctx.quiet();
        res = await runJob(ctx, c.job(out, scratch));
      } else res = await timed(ctx, () => c.run(out, scratch));
      if (round === 0 && !ctx.willRedo(res, attempt)) verify(c, res, out, cell);
      return res;
    }),
  }));

  const pressure0 = memoryPressure();
  log(`\nwarm-up round (also checks every output tree against the tar's headers):`);
  const waited = ctx.quietWaited();
  const cells = await roundRobin(ctx, items, config.runs, {
    failPrefix: 'run failed: ',
    onWarm: (it, r) => log(`  ${it.id.padEnd(22)} ${r.seconds.toFixed(3)} s  (cpu ${r.cpu?.toFixed(2) ?? '?'} s, others ${r.foreign?.toFixed(2) ?? '?'} s)`),
    onRound: (round, seconds, cells) => {
      if (round > 0) {
        log(`  round ${round}/${config.runs} done in ${seconds.toFixed(1)} s`);
        return;
      }
      for (const [id, cell] of cells) for (const p of cell.problems) log(`  !! ${id}: ${p}`);
      for (const [id, cell] of cells) for (const n of cell.notes) log(`  note ${id}: ${n}`);
      // waiting for other load to stop is not part of the estimate (it cannot be predicted)
      const roundSeconds = seconds - (ctx.quietWaited() - waited);
      const warm = (id) => cells.get(id)?.warm;
      const largeEstimate = opts.skipLarge
        ? 0
        : (config.largeBytes / fx.meta.tar.size) * ((warm('gzip/pure-node') ?? 5) + 4 * (warm('gzip/carrier') ?? 1)) + 15;
      log(
        `\n${config.runs} timed rounds of ${contenders.length} contenders: about ${fmtDuration(roundSeconds * config.runs)}` +
          (opts.skipLarge ? '' : `, then the ${Math.round(config.largeBytes / MiB)} MiB memory test: about ${fmtDuration(largeEstimate)}`),
      );
    },
  });

  const p1 = memoryPressure();
  const pressure = Object.fromEntries(Object.keys(p1).map((k) => [k, p1[k] - pressure0[k]]));
  const rows = contenders.filter((c) => cells.has(c.id)).map((c) => {
    const cell = cells.get(c.id);
    return {
      id: c.id,
      label: c.label,
      compression: c.compression,
      carrier: c.carrier,
      floorPart: c.floorPart,
      noOutput: c.noOutput,
      ...timings(cell),
      problems: cell.problems,
      notes: cell.notes,
      disturbed: cell.disturbed,
    };
  });

  const large = opts.skipLarge ? undefined : await memoryTest(ctx, fx, config);
  const report = {
    ...ctx.reportHead('apply', started, { runs: config.runs, config }),
    pressure,
    disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
    fixture: fx,
    rows,
    large,
  };
  report.evaluation = evaluate(report);
  return report;
}

async function memoryTest(ctx, fx, config) {
  const { log } = ctx;
  const big = await buildLargeFixture(fx, { targetBytes: config.largeBytes, log });
  log(
    `\nmemory / event-loop test on a ${(big.meta.tar.size / MiB).toFixed(0)} MiB layer ` +
      `(gzip ${(big.meta.gzip.size / MiB).toFixed(0)} MiB, zstd ${(big.meta.zstd.size / MiB).toFixed(0)} MiB), one child process per row:`,
  );
  const modes = [];
  if (ctx.carrier.entry) {
    modes.push(['carrier', 'gzip'], ['carrier', 'zstd'], ['carrier-stream', 'gzip'], ['carrier-stream', 'zstd']);
  }
  modes.push(['read-only', 'gzip'], ['pure-node', 'gzip']);
  const rows = [];
  for (const [mode, compression] of [['idle', '-'], ...modes]) {
    try {
      let r;
      for (let attempt = 0; ; attempt++) {
        r = await ctx.scratch(2 * 1024 ** 3 + 2 * big.meta.tar.size, async (dir) => {
          const out = path.join(dir, 'out'); // the file system's root holds lost+found
          fs.mkdirSync(out);
          await ctx.quiet();
          return runJob(ctx, { mode, blob: big[compression], compression, out, measure: true });
        });
        if (!ctx.willRedo(r, attempt)) break;
        log(`  ${mode} ${compression}: other processes used ${r.foreign.toFixed(2)} CPU-s during the run, running it again`);
      }
      const row = { mode, compression, ...r, diffDigest: r.result?.diffDigest };
      delete row.result;
      if (!['idle', 'read-only'].includes(mode) && row.diffDigest !== big.meta.tar.digest) {
        row.problem = `diffDigest ${row.diffDigest} != ${big.meta.tar.digest}`;
      }
      rows.push(row);
      log(
        `  ${mode.padEnd(15)} ${compression.padEnd(5)} ${r.seconds.toFixed(2)} s, peak RSS +${(r.addedPeakKiB / 1024).toFixed(1)} MiB ` +
          `(baseline ${(r.baseRssKiB / 1024).toFixed(1)} MiB), max timer gap ${r.maxGapMs.toFixed(1)} ms` +
          (row.problem ? `  !! ${row.problem}` : ''),
      );
    } catch (e) {
      rows.push({ mode, compression, error: e.message.split('\n')[0] });
      log(`  ${mode} ${compression}: FAILED ${e.message.split('\n')[0]}`);
    }
  }
  syncFs();
  return { tarSize: big.meta.tar.size, gzipSize: big.meta.gzip.size, zstdSize: big.meta.zstd.size, rows };
}

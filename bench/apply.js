// The layer-apply suite (`npm run bench -- --suite apply`): carrier's applyLayer against GNU tar, pure-Node pipelines
// and the decompression floor, on one layer of real files from this machine (bench/fixture.js), gzip, zstd and plain.
//
// Method: every contender extracts into a fresh empty file system of its own (bench/scratch.js), so no run writes
// next to another's tree or right after a delete. Contenders run round-robin (one warm-up round, then N timed
// rounds) so drift hits them all alike. JavaScript contenders (carrier included) run in a fresh Node process per run
// (bench/apply-child.js) and are timed inside it, so no run shares a process with another's leftover GC and JIT work;
// commands are timed spawn to exit. `sync` runs before each timed run, outside the timed region. The page cache is
// not dropped: every contender reads the blob from a warm cache. The warm-up round checks each output tree against
// the tar's own headers (type, mode, owner, size, mtime, link target of every entry), and the digests applyLayer and
// the pure-Node pipelines report against sha256 of the fixture files. Then a memory / event-loop test applies a
// ≈1 GiB layer once per mode.
import fs from 'node:fs';
import path from 'node:path';
import { fork } from 'node:child_process';
import { buildFixture, buildLargeFixture } from './fixture.js';
import { makeContenders } from './contenders.js';
import { median, syncFs, treeManifest, tarManifest, classifyDiff, fmtDuration, memoryPressure, MiB } from './util.js';
import { evaluate } from './report.js';

export const APPLY_CONFIG = {
  quick: { targetBytes: 50 * MiB, targetEntries: 1750, runs: 0, largeBytes: 128 * MiB },
  full: { targetBytes: 200 * MiB, targetEntries: 7000, runs: 5, largeBytes: 1024 * MiB },
};

/** One apply in a fresh Node process (bench/apply-child.js): fork, wait until it is loaded, sync, go. */
function runJob(ctx, job) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(ctx.benchDir, 'apply-child.js'), ctx.carrier.entry ? [ctx.carrier.entry] : [], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let err = '';
    let reply;
    let window;
    child.stderr.on('data', (c) => (err += c));
    child.on('message', (m) => {
      if (m.type === 'ready') {
        ctx.settle().then((w) => {
          window = w;
          child.send({ type: 'go', job });
        }, reject);
      } else {
        reply = m;
        if (window) reply.foreign = window.foreign();
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (reply?.type === 'done') resolve(reply);
      else if (reply?.type === 'error') reject(new Error(reply.error));
      else reject(new Error(`apply-child exited ${code}: ${err.trim().slice(-1000)}`));
    });
  });
}

/** Runs a command contender; the result gets `foreign`, the CPU-seconds the rest of the machine used meanwhile. */
async function settled(ctx, fn) {
  const window = await ctx.settle();
  const r = await fn();
  r.foreign = window.foreign();
  return r;
}

export async function runApplySuite(ctx) {
  const { opts, log } = ctx;
  const started = new Date();
  const config = { ...(ctx.quick ? APPLY_CONFIG.quick : APPLY_CONFIG.full) };
  if (opts.runs) config.runs = opts.runs;
  log(`\n=== apply suite (${ctx.quick ? 'quick' : 'full'}) ===`);

  const fx = await buildFixture(ctx.workDir, { ...config, log });
  log(
    `fixture ${fx.key}: ${fx.entries} entries (${fx.counts.files} files, ${fx.counts.dirs} dirs, ` +
      `${fx.counts.symlinks} symlinks); tar ${(fx.meta.tar.size / MiB).toFixed(1)} MiB, ` +
      `gzip ${(fx.meta.gzip.size / MiB).toFixed(1)} MiB, zstd ${(fx.meta.zstd.size / MiB).toFixed(1)} MiB ` +
      `(ready in ${fx.took.toFixed(1)} s)`,
  );

  let contenders = makeContenders(fx, !!ctx.carrier.entry);
  if (opts.only) contenders = contenders.filter((c) => opts.only.test(c.id));
  const fsBytes = 2 * 1024 ** 3 + 2 * fx.meta.tar.size;
  const times = new Map(contenders.map((c) => [c.id, []]));
  const problems = new Map(contenders.map((c) => [c.id, []]));
  const notes = new Map(contenders.map((c) => [c.id, []]));
  const disturbed = new Map(contenders.map((c) => [c.id, 0]));
  const expected = await tarManifest(fx.tar);

  const verify = (c, r, out) => {
    const p = problems.get(c.id);
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
    const some = (xs) => xs.slice(0, 3).join('; ') + (xs.length > 3 ? `; … (${xs.length} in all)` : '');
    if (d.other.length) p.push(`${d.other.length} entries differ from the tar headers: ${some(d.other)}`);
    if (d.dirMtime.length) notes.get(c.id).push(`mtime not restored on ${d.dirMtime.length} of ${fx.counts.dirs} directories: ${some(d.dirMtime)}`);
    if (d.symlinkMtime.length) notes.get(c.id).push(`mtime not restored on ${d.symlinkMtime.length} of ${fx.counts.symlinks} symlinks: ${some(d.symlinkMtime)}`);
  };

  const once = async (c, round) => {
    for (let attempt = 0; ; attempt++) {
      const r = await ctx.scratch(fsBytes, async (dir) => {
        const out = path.join(dir, 'out');
        const scratch = `${out}.scratch`;
        fs.mkdirSync(out);
        fs.mkdirSync(scratch);
        await ctx.quiet();
        let res;
        try {
          res = c.kind === 'js' ? await runJob(ctx, c.job(out, scratch)) : await settled(ctx, () => c.run(out, scratch));
        } catch (e) {
          const msg = `run failed: ${e.message.split('\n')[0]}`;
          if (!problems.get(c.id).includes(msg)) problems.get(c.id).push(msg);
          return undefined;
        }
        const retried = ctx.isDisturbed(res) && opts.quietWait && attempt < ctx.MAX_RETRIES;
        if (round === 0 && !retried) verify(c, res, out);
        return res;
      });
      if (!r) return undefined;
      if (ctx.isDisturbed(r)) {
        disturbed.set(c.id, disturbed.get(c.id) + 1);
        const again = opts.quietWait && attempt < ctx.MAX_RETRIES; // --no-quiet-wait: the machine is known to be busy
        log(
          `  ${c.id}: other processes used ${r.foreign.toFixed(2)} CPU-s during this ${r.seconds.toFixed(2)} s run` +
            (again ? ', running it again' : !opts.quietWait ? ' (kept: --no-quiet-wait)' : `; keeping it after ${ctx.MAX_RETRIES} retries`),
        );
        if (again) continue;
      }
      if (round === 0) {
        log(`  ${c.id.padEnd(22)} ${r.seconds.toFixed(3)} s  (cpu ${r.cpu?.toFixed(2) ?? '?'} s, others ${r.foreign?.toFixed(2) ?? '?'} s)`);
      }
      return r.seconds;
    }
  };

  const pressure0 = memoryPressure();
  log(`\nwarm-up round (also checks every output tree against the tar's headers):`);
  const warm = new Map();
  const roundStart = Date.now();
  const waitedBefore = ctx.quietWaited();
  for (const c of contenders) {
    warm.set(c.id, await once(c, 0));
    // runs = 0 (a smoke run): the checking warm-up run is the only run, and counts
    if (config.runs === 0 && warm.get(c.id) !== undefined) times.get(c.id).push(warm.get(c.id));
  }
  // waiting for other load to stop is not part of the estimate (it cannot be predicted)
  const roundSeconds = (Date.now() - roundStart) / 1000 - (ctx.quietWaited() - waitedBefore);
  for (const [id, ps] of problems) for (const p of ps) log(`  !! ${id}: ${p}`);
  for (const [id, ns] of notes) for (const n of ns) log(`  note ${id}: ${n}`);

  const largeEstimate = opts.skipLarge
    ? 0
    : (config.largeBytes / fx.meta.tar.size) * ((warm.get('gzip/pure-node') ?? 5) + 4 * (warm.get('gzip/carrier') ?? 1)) + 15;
  log(
    `\n${config.runs} timed rounds of ${contenders.length} contenders: about ${fmtDuration(roundSeconds * config.runs)}` +
      (opts.skipLarge ? '' : `, then the ${Math.round(config.largeBytes / MiB)} MiB memory test: about ${fmtDuration(largeEstimate)}`),
  );

  for (let round = 1; round <= config.runs; round++) {
    const t = Date.now();
    for (const c of contenders) {
      const s = await once(c, round);
      if (s !== undefined) times.get(c.id).push(s);
    }
    log(`  round ${round}/${config.runs} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }

  const p1 = memoryPressure();
  const pressure = Object.fromEntries(Object.keys(p1).map((k) => [k, p1[k] - pressure0[k]]));
  const rows = contenders.map((c) => {
    const ts = times.get(c.id);
    return {
      id: c.id,
      label: c.label,
      compression: c.compression,
      carrier: c.carrier,
      floorPart: c.floorPart,
      noOutput: c.noOutput,
      runs: ts,
      median: ts.length ? median(ts) : NaN,
      min: ts.length ? Math.min(...ts) : NaN,
      max: ts.length ? Math.max(...ts) : NaN,
      problems: problems.get(c.id),
      notes: notes.get(c.id),
      disturbed: disturbed.get(c.id),
    };
  });

  const large = opts.skipLarge ? undefined : await memoryTest(ctx, fx, config);
  const report = {
    ...ctx.reportHead('apply', started, { runs: config.runs, config }),
    pressure,
    disturbedRuns: [...disturbed.values()].reduce((a, b) => a + b, 0),
    fixture: fx,
    rows,
    large,
  };
  report.evaluation = evaluate(report);
  return report;
}

async function memoryTest(ctx, fx, config) {
  const { log, opts } = ctx;
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
        if (!ctx.isDisturbed(r) || attempt >= ctx.MAX_RETRIES || !opts.quietWait) break;
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

// Carrier benchmark: every suite in one command.
//
//   npm run bench                   full run of every suite (prints an estimate of how long up front); writes
//                                   bench/results.json, bench/RESULTS.md and bench/charts/*.svg
//   npm run bench -- --quick        smoke run of every suite (scaled-down fixtures, one checking run per contender);
//                                   writes bench/work/results-quick.json, bench/work/RESULTS-quick.md and
//                                   bench/work/charts/ (or the committed files with --write)
//   npm run bench -- --suite pull   one suite (or a list: --suite apply,checkout); the other suites' results in the
//                                   JSON are kept, and RESULTS.md and the charts are rendered from all of them
//   node bench/run.js --render-only rewrite RESULTS.md and the charts from the JSON without running anything (with
//                                   --quick: the quick files)
//
// Suites (bench/suites/<name>/): apply (applyLayer vs GNU tar vs pure Node vs the floor), pull (carrier vs podman vs
// skopeo + umoci vs pure Node vs the floor from a local registry), checkout (vs cp -a, cp --reflink), containers
// (create + mount and run vs podman), scaling (pull time and peak RSS against image size and layer count), push
// (carrier push vs podman push vs skopeo copy from containers-storage), commit (carrier commit vs podman commit), update
// (v1 in the store, pull v2 of a zstd:chunked image: partial vs full pulls, carrier and podman). The
// harness they share is bench/lib/.
//
// Other flags: --runs N (timed runs per contender after the warm-up, default 5; none with --quick), --only <regex on
// contender id>, --skip-large (apply: no 1 GiB memory test), --no-quiet-wait (development only: do not wait for a
// quiet machine before each run, and keep disturbed runs instead of redoing them), --write / --no-write (where results
// go).
//
// Method, for every suite: contenders run round-robin (A B C A B C …: one warm-up round, then N timed rounds), each
// run on a fresh store on a fresh file system (bench/lib/scratch.js: a loop-mounted ext4 made for the run and thrown
// away after it, so no run pays for an earlier run's deletions and the disk holds one run's output at a time).
// Before every run the harness waits until the machine is quiet (< 10% busy over 0.5 s), and every run measures the
// CPU time the rest of the machine used meanwhile (every user-space process outside the bench's own tree, plus
// hypervisor steal; kernel threads do the run's own I/O and are not counted); a run where that exceeds 0.05 s + 10% of its wall time is thrown away and redone (up to 4 times). Every
// contender runs from a copy of dist/ and the addon taken at the start (bench/work/build/), so a rebuild in the
// repository meanwhile cannot mix two builds in one set of results.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo } from './lib/machine.js';
import { fmtDuration } from './lib/util.js';
import { sweepScratch, scratchMethod } from './lib/scratch.js';
import { writeOutputs, suiteSummary } from './lib/render.js';
import { makeContext, exposeGc } from './lib/context.js';
import { loadCarrier, buildChanged } from './lib/build.js';
import { suites, suite, SUITES } from './suites/index.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.join(benchDir, 'work');
const repoRoot = path.join(benchDir, '..');
const log = (...a) => console.log(...a);

// for the estimate when the JSON has no full run of a suite by this harness: seconds on the 2-core VM, from the
// single-run timings of each contender (5 timed runs + 1 warm-up), and the quick runs
const DEFAULT_SECONDS = { apply: 480, pull: 1500, checkout: 40, containers: 45, scaling: 840, push: 900, commit: 240, update: 900 };
const QUICK_SECONDS = { apply: 30, pull: 60, checkout: 5, containers: 20, scaling: 55, push: 150, commit: 60, update: 120 };

function parseArgs(argv) {
  const o = { quick: false, runs: undefined, only: undefined, skipLarge: false, write: undefined, quietWait: true, suites: SUITES, renderOnly: false };
  const suites = (v) => {
    const list = v === 'all' ? SUITES : v.split(',');
    for (const s of list) if (!SUITES.includes(s)) throw new Error(`--suite takes all or a list of ${SUITES.join(', ')}`);
    return SUITES.filter((s) => list.includes(s));
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--only') o.only = new RegExp(argv[++i]);
    else if (a === '--skip-large') o.skipLarge = true;
    else if (a === '--write') o.write = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--no-quiet-wait') o.quietWait = false;
    else if (a === '--render-only') o.renderOnly = true;
    else if (a === '--suite') o.suites = suites(argv[++i]);
    else if (a.startsWith('--suite=')) o.suites = suites(a.slice('--suite='.length));
    else if (a === '--no-cooldown') {
      // accepted for old scripts: there is no cooldown any more (fresh file systems)
    } else if (a === '--help' || a === '-h') {
      const text = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
      console.log(text.slice(0, text.findIndex((l) => !l.startsWith('//'))).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.runs !== undefined && !(o.runs >= 1)) throw new Error('--runs takes a number ≥ 1');
  return o;
}

/** Where the results go: the committed files, or bench/work/ for smoke and development runs. */
export function outputPaths(opts) {
  const write = opts.write ?? !opts.quick;
  return write
    ? { json: path.join(benchDir, 'results.json'), md: path.join(benchDir, 'RESULTS.md'), charts: path.join(benchDir, 'charts'), jsonName: 'bench/results.json' }
    : { json: path.join(workDir, 'results-quick.json'), md: path.join(workDir, 'RESULTS-quick.md'), charts: path.join(workDir, 'charts'), jsonName: 'bench/work/results-quick.json' };
}

export function readResults(file) {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (r && r.suites) return r;
  } catch {}
  return { format: 1, suites: {} };
}

/** Seconds each suite will take: the last full run's durations in the JSON, else the defaults above. */
function estimate(opts, results) {
  const per = {};
  for (const s of opts.suites) {
    const r = results.suites[s];
    // (runs by the old harness waited for cooldowns, imported ones have no duration: neither says much)
    const last = r && !r.quick && !r.cooldown && !r.imported ? (new Date(r.finished) - new Date(r.started)) / 1000 : undefined;
    const runs = opts.runs ?? (opts.quick ? 1 : 5);
    const lastRuns = r?.runs ?? r?.config?.runs ?? 5;
    per[s] = opts.quick ? QUICK_SECONDS[s] : last && lastRuns ? (last * (runs + 1)) / (lastRuns + 1) : (DEFAULT_SECONDS[s] * (runs + 1)) / 6;
  }
  return per;
}

/**
 * Runs the suites (`opts` as parseArgs makes them, `command` the command line for the report) and writes the JSON,
 * RESULTS.md and the charts after each suite. Returns the results object.
 */
export async function runBench(opts, command = 'bench/run.js') {
  const out = outputPaths(opts);
  if (opts.renderOnly) {
    const results = readResults(out.json);
    const written = writeOutputs(results, suites, { mdFile: out.md, chartsDir: out.charts, jsonName: out.jsonName });
    log(`rendered from ${path.relative(process.cwd(), out.json)}: ${written.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
    return results;
  }
  const t0 = Date.now();
  fs.mkdirSync(workDir, { recursive: true });
  sweepScratch(workDir);
  const machine = machineInfo(workDir);
  log(`carrier bench (${opts.quick ? 'quick' : 'full'}; suites ${opts.suites.join(', ')}): ${command}`);
  log(
    `machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memory}, ${machine.kernel}, ` +
      `bench/work on ${machine.fsType} (${machine.mount}), node ${machine.node}, running as ${machine.user}`,
  );
  log(`tools: ${machine.tar}; ${machine.gzip}; ${machine.zstd}`);
  if (!opts.quietWait) log('!! --no-quiet-wait: runs do not wait for a quiet machine (development only; results are noisy)');
  if (process.geteuid?.() !== 0) log('!! not root: the suites need losetup and mount for their scratch file systems');

  const results = readResults(out.json);
  const est = estimate(opts, results);
  const total = Object.values(est).reduce((a, b) => a + b, 0);
  log(
    `estimate: about ${fmtDuration(total)} (${opts.suites.map((s) => `${s} ${fmtDuration(est[s])}`).join(', ')}; ` +
      `${opts.quick ? 'smoke-run guesses' : 'from the last full run of each suite in the JSON, else from a run on a 2-core VM'}; ` +
      'plus building fixtures the first time and any waiting for a quiet machine)',
  );

  const carrier = await loadCarrier(repoRoot, workDir);
  if (carrier.binary) log(`carrier: ${carrier.version}; addon ${carrier.binary}, run from a copy in bench/work/build/`);
  else log(`\n!! carrier not loadable (${carrier.error?.message?.split('\n')[0]}); running the other contenders only\n`);

  const ctx = Object.assign(makeContext({ opts, log, workDir, gc: exposeGc() }), {
    quick: opts.quick,
    carrier,
    carrierInfo: () => ({ available: !!carrier.entry, version: carrier.version, binary: carrier.binary, error: carrier.error?.message }),
    /** The fields every suite's report starts with (what ran, when, where, how). */
    reportHead: (name, started, fields) => ({
      suite: name,
      command,
      started,
      finished: new Date(),
      quick: opts.quick,
      ...fields,
      machine,
      carrier: ctx.carrierInfo(),
      quietWait: opts.quietWait,
      quietWaited: ctx.quietWaited(),
      method: scratchMethod,
    }),
  });

  const failed = [];
  for (const name of opts.suites) {
    const s0 = Date.now();
    const waited0 = ctx.quietWaited();
    let report;
    try {
      report = await (await suite(name).run())(ctx);
    } catch (e) {
      failed.push(name);
      log(`\n!! suite ${name} failed: ${e.stack ?? e.message}`);
      continue;
    }
    const changed = await buildChanged(repoRoot, carrier);
    if (changed) report.carrier = { ...report.carrier, changed };
    const fresh = readResults(out.json); // another suite's run may have written meanwhile
    fresh.suites[name] = JSON.parse(JSON.stringify(report, (k, v) => (typeof v === 'function' ? undefined : v)));
    fs.writeFileSync(out.json, JSON.stringify(fresh, null, 1) + '\n');
    writeOutputs(fresh, suites, { mdFile: out.md, chartsDir: out.charts, jsonName: out.jsonName });
    log('\n' + suiteSummary(suite(name), fresh.suites[name]));
    const problems = (fresh.suites[name].rows ?? []).flatMap((r) => (r.problems ?? []).map((p) => `${r.id ?? `${r.variant ?? r.image ?? r.scenario ?? ''} ${r.contender}`}: ${p}`));
    for (const p of problems) log(`  !! ${p}`);
    log(
      `\nsuite ${name} done in ${fmtDuration((Date.now() - s0) / 1000)} (${Math.round(ctx.quietWaited() - waited0)} s of it waiting for a quiet machine); ` +
        `wrote ${path.relative(process.cwd(), out.json)}, ${path.relative(process.cwd(), out.md)}, ${path.relative(process.cwd(), out.charts)}/`,
    );
  }
  log(`\nall done in ${fmtDuration((Date.now() - t0) / 1000)}${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`);
  if (failed.length) process.exitCode = 1;
  return readResults(out.json);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}`
      : `node bench/run.js ${argv.join(' ')}`.trim();
  // a signal still unmounts the scratch file systems (their 'exit' handler)
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143));
  runBench(parseArgs(argv), command).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

export { parseArgs };

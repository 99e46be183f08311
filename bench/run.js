// Carrier benchmark: the layer-apply suite (this file) and the pull suite (bench/pull.js), in that order.
//
//   npm run bench                 full run: apply suite (~200 MiB / ~7k-entry layer, 1 warm-up + 5 timed runs, 1 GiB
//                                 memory test), then pull suite (≈200 MiB one-layer and ≈1 GiB / ≈50k-entry
//                                 three-layer images, gzip and zstd, 1 warm-up + 5 runs); writes bench/RESULTS.md
//                                 and bench/results-pull.json
//   npm run bench -- --quick      smoke run: smaller fixtures, 1 warm-up + 3 runs; writes bench/work/RESULTS-quick.md
//                                 (or bench/RESULTS.md with --write)
//   npm run bench -- --suite pull (or --suite apply): one suite alone; the other suite's section of the RESULTS file
//                                 is kept
//
// Other flags: --runs N, --only <regex on contender id>, --skip-large, --no-cooldown, --no-quiet-wait (development
// only: do not wait for a quiet machine before each run, and keep disturbed runs instead of redoing them), --no-write,
// --write.
//
// Method: every contender extracts into a fresh empty directory on the same file system as the fixtures
// (bench/work/). Contenders are run round-robin (one warm-up round, then N timed rounds) so drift hits them all alike.
// JavaScript contenders (carrier included) run in a fresh Node process per run (bench/apply-child.js) and are timed
// inside it, so no run shares a process with another's leftover GC and JIT work; commands are timed spawn to exit.
// `sync` is run before each timed run, outside the timed region. The page cache is not dropped (that needs
// /proc/sys/vm/drop_caches; not relied on): every contender reads the blob from a warm cache. The warm-up round also
// checks each contender's output tree against the tar's own headers (type, mode, owner, size, mtime, link target of
// every entry), and the digests applyLayer and the pure-Node pipelines report against sha256 of the fixture files.
//
// Other load: this benchmark is meaningless while something else uses the CPUs (2 cores here). Before every run it
// waits until the machine is quiet (< 10% busy over 0.5 s), and every run measures the CPU time the rest of the
// machine used meanwhile (every process outside the bench's own tree, from /proc/<pid>/stat, plus hypervisor steal);
// a run where that exceeds 0.05 s + 10% of its wall time is thrown away and redone (up to 4 times). Counts go in the
// results.
//
// Memory: the outputs of a full run (~20 GiB) do not fit in the page cache next to the fixtures, and reclaim during
// the later rounds slowed file creation and pushed the blobs out of the cache. So after each run its output is synced
// and its pages dropped (posix_fadvise DONTNEED through python3), outside the timed region; direct-reclaim and
// compaction counters over the timed rounds go in the results.
//
// Deletions: outputs are deleted only after the last run, never between runs, and a run refuses to start timing
// until 370 s after the previous run's cleanup (--no-cooldown skips the wait, and says so in the results). Reason:
// on ext4 without a journal, inode allocation skips every inode freed in the last 60 s (360 s while its inode-table
// block is dirty) and pays a buffer-cache lookup for each one it skips (recently_deleted() in fs/ext4/ialloc.c), so
// new files land where old ones were just deleted only at a high price. Extracting right after deleting a few
// thousand files made GNU tar -xf 3-10x slower in testing (perf: find_get_block_common + recently_deleted > 50% of
// its time), for every contender, and very noisily. Do not delete big trees on this file system just before a run
// either. Keeping the outputs needs disk space for all of them (checked up front).
import fs from 'node:fs';
import path from 'node:path';
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildFixture, buildLargeFixture } from './fixture.js';
import { makeContenders } from './contenders.js';
import {
  machineInfo, median, syncFs, treeManifest, tarManifest, classifyDiff, fmtDuration, waitForQuiet, cpuWindow,
  evictTree, memoryPressure, sha256File, MiB, run,
} from './util.js';
import { renderConsole, renderMarkdown, evaluate } from './report.js';
import { runPullSuite } from './pull.js';
import { evaluatePull, renderPullConsole, renderPullMarkdown, spliceSection, extractSection } from './pullreport.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.join(benchDir, 'work');

function parseArgs(argv) {
  const o = {
    quick: false, runs: undefined, only: undefined, skipLarge: false, write: undefined, cooldown: true, quietWait: true,
    suite: 'all',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--only') o.only = new RegExp(argv[++i]);
    else if (a === '--skip-large') o.skipLarge = true;
    else if (a === '--write') o.write = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--no-cooldown') o.cooldown = false;
    else if (a === '--no-quiet-wait') o.quietWait = false;
    else if (a === '--suite') {
      o.suite = argv[++i];
      if (!['apply', 'pull', 'all'].includes(o.suite)) throw new Error('--suite takes apply, pull or all');
    } else if (a.startsWith('--suite=')) {
      o.suite = a.slice('--suite='.length);
      if (!['apply', 'pull', 'all'].includes(o.suite)) throw new Error('--suite takes apply, pull or all');
    }
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 15).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const argv = process.argv.slice(2);
const opts = parseArgs(argv);
const config = opts.quick
  ? { targetBytes: 50 * MiB, targetEntries: 1750, runs: 3, largeBytes: 256 * MiB }
  : { targetBytes: 200 * MiB, targetEntries: 7000, runs: 5, largeBytes: 1024 * MiB };
if (opts.runs) config.runs = opts.runs;
const command =
  process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}`
    : `node bench/run.js ${argv.join(' ')}`.trim();
const log = (...a) => console.log(...a);
const COOLDOWN_MS = 370_000;
const stampFile = path.join(workDir, '.last-delete');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const repoRoot = path.join(benchDir, '..');
const requireHere = createRequire(import.meta.url);

/** What a package root would run: the addon node-gyp-build picks (local build, else prebuild) and dist/'s digest. */
async function describeBuild(root) {
  const file = requireHere('node-gyp-build').path(root);
  const st = fs.statSync(file);
  const h = createHash('sha256');
  const dist = path.join(root, 'dist');
  for (const f of fs.readdirSync(dist, { recursive: true }).map(String).sort()) {
    if (f.endsWith('.js')) h.update(`${f}\0`).update(fs.readFileSync(path.join(dist, f)));
  }
  return {
    addon: path.relative(root, file),
    addonFile: file,
    addonDigest: (await sha256File(file)).slice(7),
    addonSize: st.size,
    addonMtime: st.mtime.toISOString(),
    distDigest: h.digest('hex'),
  };
}

/**
 * Copies the compiled package (dist/, package.json and the addon node-gyp-build would load) to bench/work/build/ and
 * runs every contender from that copy, so a rebuild in the repository while the benchmark runs (this machine is
 * shared with development) cannot mix two builds in one set of results.
 */
async function loadCarrier() {
  try {
    const build = await describeBuild(repoRoot);
    const snap = path.join(workDir, 'build');
    fs.rmSync(snap, { recursive: true, force: true });
    fs.cpSync(path.join(repoRoot, 'dist'), path.join(snap, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(snap, 'package.json'));
    fs.mkdirSync(path.dirname(path.join(snap, build.addon)), { recursive: true });
    fs.copyFileSync(build.addonFile, path.join(snap, build.addon));
    const entry = path.join(snap, 'dist', 'index.js');
    const mod = await import(pathToFileURL(entry).href);
    const loaded = await describeBuild(snap);
    if (loaded.addonDigest !== build.addonDigest || loaded.distDigest !== build.distDigest) {
      throw new Error('the copy of the build in bench/work/build differs from the repository build');
    }
    const binary = `${build.addon} (${build.addonSize} bytes, modified ${build.addonMtime}, sha256 ${build.addonDigest.slice(0, 12)}…)`;
    return { applyLayer: mod.applyLayer, version: mod.version, entry, binary, build, error: null };
  } catch (e) {
    return { applyLayer: null, version: null, entry: null, error: e };
  }
}

async function main() {
  fs.mkdirSync(workDir, { recursive: true });
  const machine = machineInfo(workDir);
  log(`carrier bench (${opts.quick ? 'quick' : 'full'}, suite ${opts.suite}): ${command}`);
  log(
    `machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memory}, ${machine.kernel}, ` +
      `bench/work on ${machine.fsType} (${machine.mount}), node ${machine.node}, running as ${machine.user}`,
  );
  log(`tools: ${machine.tar}; ${machine.gzip}; ${machine.zstd}`);
  if (!opts.quietWait) log('!! --no-quiet-wait: runs do not wait for a quiet machine (development only; results are noisy)');

  const carrier = await loadCarrier();
  carrierEntry = carrier.entry;
  if (carrier.binary) log(`carrier: ${carrier.version}; addon ${carrier.binary}, run from a copy in bench/work/build/`);
  if (!carrier.applyLayer) {
    log(`\n!! carrier not loadable (${carrier.error?.message?.split('\n')[0]}); running the other contenders only\n`);
  }
  if (opts.suite !== 'pull') await runApplySuite(machine, carrier);
  if (opts.suite !== 'apply') await runPull(machine, carrier);
}

/** The pull suite (bench/pull.js) with this file's machinery; appends its section to the RESULTS file. */
async function runPull(machine, carrier) {
  const report = await runPullSuite({
    opts,
    quick: opts.quick,
    command,
    log,
    workDir,
    benchDir,
    machine,
    carrier,
    quiet,
    settle,
    isDisturbed,
    MAX_RETRIES,
    cooldownWait,
    cleanup,
    quietWaited: () => quietWaited,
  });
  report.evaluation = evaluatePull(report);
  log('\n' + renderPullConsole(report));
  const write = opts.write ?? !opts.quick;
  const target = write ? path.join(benchDir, 'RESULTS.md') : path.join(workDir, 'RESULTS-quick.md');
  let text = '';
  try {
    text = fs.readFileSync(target, 'utf8');
  } catch {}
  if (!text) text = '# Carrier benchmark results\n\nGenerated by `bench/run.js`; do not edit by hand, rerun the benchmark instead.\n';
  fs.writeFileSync(target, spliceSection(text, renderPullMarkdown(report)));
  const json = write ? path.join(benchDir, 'results-pull.json') : path.join(workDir, 'results-pull-quick.json');
  const plain = { ...report, evaluation: report.evaluation.map(({ test, ...t }) => t) };
  fs.writeFileSync(json, JSON.stringify(plain, null, 1) + '\n');
  log(`\nwrote ${path.relative(process.cwd(), target)} (pull section) and ${path.relative(process.cwd(), json)}`);
}

async function runApplySuite(machine, carrier) {
  const started = new Date();

  const fx = await buildFixture(workDir, { ...config, log });
  log(
    `fixture ${fx.key}: ${fx.entries} entries (${fx.counts.files} files, ${fx.counts.dirs} dirs, ` +
      `${fx.counts.symlinks} symlinks); tar ${(fx.meta.tar.size / MiB).toFixed(1)} MiB, ` +
      `gzip ${(fx.meta.gzip.size / MiB).toFixed(1)} MiB, zstd ${(fx.meta.zstd.size / MiB).toFixed(1)} MiB ` +
      `(ready in ${fx.took.toFixed(1)} s)`,
  );

  let contenders = makeContenders(fx, !!carrier.applyLayer);
  if (opts.only) contenders = contenders.filter((c) => opts.only.test(c.id));

  const outRoot = path.join(workDir, 'out');
  await cleanup(outRoot);
  const outputs = contenders.filter((c) => !c.noOutput).length * (config.runs + 1);
  const need = outputs * fx.meta.tar.size * 1.15 + (opts.skipLarge ? 0 : 6 * config.largeBytes * 1.15);
  const st = fs.statfsSync(workDir);
  const free = st.bavail * st.bsize;
  if (free < need + 2 * 1024 ** 3) {
    throw new Error(
      `only ${(free / 1024 ** 3).toFixed(1)} GiB free in bench/work, ${(need / 1024 ** 3).toFixed(1)} GiB needed to ` +
        'keep every output until the end (see the top of bench/run.js); try --quick or --runs 3',
    );
  }
  const cooldown = await cooldownWait();
  fs.mkdirSync(outRoot, { recursive: true });
  const times = new Map(contenders.map((c) => [c.id, []]));
  const problems = new Map(contenders.map((c) => [c.id, []]));
  const notes = new Map(contenders.map((c) => [c.id, []]));
  const expected = await tarManifest(fx.tar);

  const disturbed = new Map(contenders.map((c) => [c.id, 0]));
  const once = async (c, round) => {
    for (let attempt = 0; ; attempt++) {
      const name = c.id.replace('/', '-') + (attempt ? `.retry${attempt}` : '');
      const out = path.join(outRoot, `r${round}`, name);
      const scratch = `${out}.scratch`;
      fs.mkdirSync(out, { recursive: true });
      fs.mkdirSync(scratch, { recursive: true });
      await quiet();
      let r;
      try {
        r = c.kind === 'js' ? await runJob(c.job(out, scratch)) : await settled(() => c.run(out, scratch));
      } catch (e) {
        const msg = `run failed: ${e.message.split('\n')[0]}`;
        if (!problems.get(c.id).includes(msg)) problems.get(c.id).push(msg);
        return undefined;
      }
      if (isDisturbed(r)) {
        disturbed.set(c.id, disturbed.get(c.id) + 1);
        const again = opts.quietWait && attempt < MAX_RETRIES; // --no-quiet-wait: the machine is known to be busy
        log(
          `  ${c.id}: other processes used ${r.foreign.toFixed(2)} CPU-s during this ${r.seconds.toFixed(2)} s run` +
            (again ? ', running it again' : !opts.quietWait ? ' (kept: --no-quiet-wait)' : `; keeping it after ${MAX_RETRIES} retries`),
        );
        if (again) continue;
      }
      if (round === 0) verify(c, r, out);
      if (!c.noOutput) {
        syncFs();
        if (!evictTree(out) && !evictWarned) {
          evictWarned = true;
          log('  !! python3 not found: outputs stay in the page cache, which may push the fixtures out late in the run');
        }
      }
      if (round === 0) {
        log(`  ${c.id.padEnd(22)} ${r.seconds.toFixed(3)} s  (cpu ${r.cpu?.toFixed(2) ?? '?'} s, others ${r.foreign?.toFixed(2) ?? '?'} s)`);
      }
      return r.seconds;
    }
  };

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

  const pressure0 = memoryPressure();
  log(`\nwarm-up round (also checks every output tree against the tar's headers):`);
  const warm = new Map();
  const roundStart = Date.now();
  const waitedBefore = quietWaited;
  for (const c of contenders) warm.set(c.id, await once(c, 0));
  // waiting for other load to stop is not part of the estimate (it cannot be predicted)
  const roundSeconds = (Date.now() - roundStart) / 1000 - (quietWaited - waitedBefore);
  for (const [id, ps] of problems) for (const p of ps) log(`  !! ${id}: ${p}`);
  for (const [id, ns] of notes) for (const n of ns) log(`  note ${id}: ${n}`);

  const largeEstimate = opts.skipLarge
    ? 0
    : (config.largeBytes / fx.meta.tar.size) * ((warm.get('gzip/pure-node') ?? 5) + 4 * (warm.get('gzip/carrier') ?? 1)) + 15;
  log(
    `\n${config.runs} timed rounds of ${contenders.length} contenders: about ${fmtDuration(roundSeconds * config.runs)}` +
      (opts.skipLarge ? '' : `, then the ${Math.round(config.largeBytes / MiB)} MiB memory test: about ${fmtDuration(largeEstimate)}`) +
      ` (total ≈ ${fmtDuration(roundSeconds * config.runs + largeEstimate)})`,
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

  let large;
  if (!opts.skipLarge) large = await memoryTest(fx, carrier, outRoot);
  // the repository's build may have been rebuilt meanwhile; the run used the copy taken at the start either way
  if (carrier.build) {
    try {
      const now = await describeBuild(repoRoot);
      if (now.addonDigest !== carrier.build.addonDigest || now.distDigest !== carrier.build.distDigest) {
        carrier.changed =
          'the repository build changed during the run (addon now sha256 ' +
          `${now.addonDigest.slice(0, 12)}…, modified ${now.addonMtime}); every run used the copy taken at the start`;
        log(`\nnote: ${carrier.changed}`);
      }
    } catch {}
  }
  log('\ndeleting outputs ...');
  await cleanup(outRoot);

  const report = {
    command,
    started,
    finished: new Date(),
    quick: opts.quick,
    config,
    machine,
    carrier: {
      available: !!carrier.applyLayer,
      version: carrier.version,
      binary: carrier.binary,
      changed: carrier.changed,
      error: carrier.error?.message,
    },
    cooldown,
    quietWaited,
    pressure,
    evicted: !evictWarned,
    disturbedRuns: [...disturbed.values()].reduce((a, b) => a + b, 0),
    fixture: fx,
    rows,
    large,
  };
  report.evaluation = evaluate(report);
  log('\n' + renderConsole(report));

  const write = opts.write ?? !opts.quick;
  const target = write ? path.join(benchDir, 'RESULTS.md') : path.join(workDir, 'RESULTS-quick.md');
  // keep the pull suite's section when the apply suite runs alone (a full run rewrites it right after)
  let pullSection = '';
  try {
    pullSection = extractSection(fs.readFileSync(target, 'utf8'));
  } catch {}
  fs.writeFileSync(target, renderMarkdown(report) + (pullSection ? '\n' + pullSection : ''));
  fs.writeFileSync(path.join(workDir, opts.quick ? 'results-quick.json' : 'results.json'), JSON.stringify(report, null, 1));
  log(`\nwrote ${path.relative(process.cwd(), target)}`);
}

const MAX_RETRIES = 4;

/**
 * A run is disturbed when the rest of the machine used more than 0.05 CPU-s plus 10% of one CPU over its wall time:
 * on 2 cores, another busy process changes every result here, and this machine is shared with builds and tests.
 */
function isDisturbed(r) {
  return r.foreign !== undefined && r.foreign > 0.05 + 0.1 * r.seconds;
}

/** Waits until other processes leave the CPUs alone (checked before every run). */
async function quiet() {
  if (!opts.quietWait) return;
  const waited = await waitForQuiet({
    onWait: (busy) => log(`  (machine ${(busy * 100).toFixed(0)}% busy with other work: waiting for it to go quiet)`),
  });
  if (waited > 2) log(`  (quiet after ${waited.toFixed(0)} s)`);
  quietWaited += waited;
}
let quietWaited = 0;
let carrierEntry = null;
let evictWarned = false;

/** Lets this process settle (GC now, not during someone's run) and syncs; then starts watching the other CPU use. */
async function settle() {
  gc();
  await sleep(50);
  syncFs();
  return cpuWindow();
}

/** Runs a command contender; the result gets `foreign`, the CPU-seconds the rest of the machine used meanwhile. */
async function settled(fn) {
  const window = await settle();
  const r = await fn();
  r.foreign = window.foreign();
  return r;
}

/** One apply in a fresh Node process (bench/apply-child.js): fork, wait until it is loaded, sync, go. */
function runJob(job) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(benchDir, 'apply-child.js'), carrierEntry ? [carrierEntry] : [], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let err = '';
    let reply;
    let window;
    child.stderr.on('data', (c) => (err += c));
    child.on('message', (m) => {
      if (m.type === 'ready') {
        settle().then((w) => {
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

async function cleanup(outRoot) {
  if (!fs.existsSync(outRoot)) return;
  // rm(1) unlinks a tree of a million entries several times faster than fs.rmSync
  const r = await run('rm', ['-rf', '--one-file-system', outRoot], { allowFail: true });
  if (r.code !== 0) fs.rmSync(outRoot, { recursive: true, force: true });
  syncFs();
  fs.writeFileSync(stampFile, String(Date.now()));
}

/** Waits until the last cleanup is COOLDOWN_MS old (see the top of this file). Returns what was done, for the report. */
async function cooldownWait() {
  let last = 0;
  try {
    last = Number(fs.readFileSync(stampFile, 'utf8'));
  } catch {}
  const wait = last + COOLDOWN_MS - Date.now();
  if (wait <= 0) return { waited: 0, skipped: false };
  if (!opts.cooldown) {
    log(`!! --no-cooldown: timing starts ${Math.round((Date.now() - last) / 1000)} s after deleting the previous outputs; expect slow, noisy file creation`);
    return { waited: 0, skipped: true, sinceDelete: (Date.now() - last) / 1000 };
  }
  log(
    `waiting ${Math.ceil(wait / 1000)} s: the previous run's outputs were deleted ${Math.round((Date.now() - last) / 1000)} s ago, ` +
      'and ext4 without a journal allocates inodes slowly for ~6 min after a mass delete (see the top of bench/run.js)',
  );
  await sleep(wait);
  return { waited: wait / 1000, skipped: false };
}

async function memoryTest(fx, carrier, outRoot) {
  const big = await buildLargeFixture(fx, { targetBytes: config.largeBytes, log });
  log(
    `\nmemory / event-loop test on a ${(big.meta.tar.size / MiB).toFixed(0)} MiB layer ` +
      `(gzip ${(big.meta.gzip.size / MiB).toFixed(0)} MiB, zstd ${(big.meta.zstd.size / MiB).toFixed(0)} MiB), one child process per row:`,
  );
  const modes = [];
  if (carrier.applyLayer) {
    modes.push(['carrier', 'gzip'], ['carrier', 'zstd'], ['carrier-stream', 'gzip'], ['carrier-stream', 'zstd']);
  }
  modes.push(['read-only', 'gzip'], ['pure-node', 'gzip']);
  const rows = [];
  const largeDir = path.join(outRoot, 'large');
  let n = 0;
  for (const [mode, compression] of [['idle', '-'], ...modes]) {
    try {
      let r;
      for (let attempt = 0; ; attempt++) {
        const out = path.join(largeDir, String(n++));
        fs.mkdirSync(out, { recursive: true });
        await quiet();
        r = await runJob({ mode, blob: big[compression], compression, out, measure: true });
        syncFs();
        evictTree(out);
        if (!isDisturbed(r) || attempt >= MAX_RETRIES || !opts.quietWait) break;
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
  return { tarSize: big.meta.tar.size, gzipSize: big.meta.gzip.size, zstdSize: big.meta.zstd.size, rows };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Checks that the per-run scratch file systems (bench/lib/scratch.js) do not change what the benchmark measures:
// the same extractions, interleaved, into fresh directories on the host's file system (never deleting anything
// until the end, the harness's old method) and into a fresh loop-mounted ext4 each.
//
//   node bench/fscompare.js [--rounds N] [--write]
//
// Uses the apply suite's full-size layer (run the apply suite once first) and this checkout's dist/ (npm run build
// first). With --write the medians go into bench/results.json (`checks.scratch`), where RESULTS.md shows
// them next to the method. Carrier is run as `node -e "applyLayer(...)"` here, so its times include Node start-up.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScratch } from './lib/scratch.js';
import { median } from './lib/util.js';
import { machineInfo } from './lib/machine.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(benchDir, 'work');
const argv = process.argv.slice(2);
const rounds = Number(argv.includes('--rounds') ? argv[argv.indexOf('--rounds') + 1] : 5);

function fixtureDir() {
  for (const d of fs.readdirSync(path.join(work, 'fixtures'))) {
    try {
      const spec = JSON.parse(fs.readFileSync(path.join(work, 'fixtures', d, 'spec.json'), 'utf8'));
      if (spec.targetBytes === 200 * 1024 * 1024 && !spec.smallfiles) return path.join(work, 'fixtures', d);
    } catch {}
  }
  throw new Error('no apply-suite fixture in bench/work/fixtures: run `npm run bench -- --suite apply` once');
}

const FX = fixtureDir();
const entry = path.join(benchDir, '..', 'dist', 'index.js'); // npm run build first
const apply = (blob) => (out) => [process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(entry)}); await m.applyLayer(${JSON.stringify(blob)}, ${JSON.stringify(out)});`]];
const contenders = {
  'GNU tar -xf (plain)': (out) => ['tar', ['--numeric-owner', '-xpf', `${FX}/layer.tar`, '-C', out]],
  'GNU tar -xzf': (out) => ['tar', ['--numeric-owner', '-xpzf', `${FX}/layer.tar.gz`, '-C', out]],
  'carrier applyLayer gzip': apply(`${FX}/layer.tar.gz`),
  'carrier applyLayer zstd': apply(`${FX}/layer.tar.zst`),
};
const host = path.join(work, 'fscompare-host');
fs.rmSync(host, { recursive: true, force: true });
fs.mkdirSync(host, { recursive: true });
const time = (cmd, args) => {
  execFileSync('sync');
  const t0 = process.hrtime.bigint();
  execFileSync(cmd, args);
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
const runs = {};
let n = 0;
for (let round = 0; round < rounds; round++) {
  for (const [name, f] of Object.entries(contenders)) {
    for (const where of ['host', 'loop']) {
      let s;
      let out;
      if (where === 'host') {
        out = path.join(host, String(n++));
        fs.mkdirSync(out);
      } else {
        s = createScratch(work, 4 * 1024 ** 3);
        out = path.join(s.dir, 'out');
        fs.mkdirSync(out);
      }
      const t = time(...f(out));
      s?.destroy();
      ((runs[name] ??= { host: [], loop: [] })[where]).push(t);
    }
  }
}
const rows = Object.entries(runs).map(([name, r]) => ({ name, host: median(r.host), loop: median(r.loop), runs: r }));
for (const r of rows) console.log(`${r.name.padEnd(26)} host ${r.host.toFixed(3)} s   loop ${r.loop.toFixed(3)} s`);
const t0 = Date.now();
const s = createScratch(work, 4 * 1024 ** 3);
const made = Date.now() - t0;
s.destroy();
const total = Date.now() - t0;
console.log(`one scratch file system: made and mounted in ${made} ms, gone in ${total - made} ms`);
console.log('(the host directories are deleted now: wait ~6 min before timing anything on the host file system)');
execFileSync('rm', ['-rf', host]);
if (argv.includes('--write')) {
  const file = path.join(benchDir, 'results.json');
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  results.checks = { ...results.checks, scratch: { date: new Date().toISOString(), rounds, fixture: path.basename(FX), machine: machineInfo(work), rows: rows.map(({ name, host, loop }) => ({ name, host, loop })), scratchMs: { made, destroyed: total - made } } };
  fs.writeFileSync(file, JSON.stringify(results, null, 1) + '\n');
  console.log('wrote checks.scratch in bench/results.json');
}

// The benchmark harness as a library, for benchmarking your own images against the same peers with the same method.
//
//   import { benchPull, runBench } from './bench/index.js';   // from a checkout of carrier, after `npm run build`
//
//   // pull images from a registry you name, carrier against podman (and any of the other contenders), round-robin,
//   // a fresh store on a fresh loop-mounted ext4 for every run (needs root), median of 5 with min / max and peak RSS:
//   const rows = await benchPull({ images: ['registry.local:5000/team/app:1'], contenders: ['carrier', 'podman'], runs: 5 });
//
//   // the whole harness (what `npm run bench` runs), or some suites of it:
//   await runBench({ suites: ['apply', 'checkout'], quick: true });
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePullContenders, pullOnScratch } from './lib/pullers.js';
import { roundRobin } from './lib/roundrobin.js';
import { scratchMethod } from './lib/scratch.js';
import { machineInfo } from './lib/machine.js';
import { makeContext } from './lib/context.js';
import { renderResults as render } from './lib/render.js';
import { runBench as runAll, parseArgs } from './run.js';
import { suites, SUITES } from './suites/index.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.join(benchDir, 'work');

export { barChartSvg, lineChartSvg } from './lib/charts.js';
export { machineInfo } from './lib/machine.js';
export { SUITES };

/** The whole of RESULTS.md from a results object ({ format, suites: { name: report } }). */
export const renderResults = (results, options) => render(results, suites, options);

/**
 * Runs the benchmark suites, as `npm run bench` does. `options`: { suites: subset of SUITES (default all), quick,
 * runs, only: RegExp on contender ids, quietWait (default true), write (default: !quick) }. Results go to the same
 * JSON / RESULTS.md / charts as the command's. Resolves the results object ({ format, suites: { name: report } }).
 */
export function runBench(options = {}) {
  const opts = { ...parseArgs([]), ...options, suites: options.suites ?? SUITES };
  return runAll(opts, `runBench(${JSON.stringify({ ...options, only: options.only?.source })})`);
}

/**
 * Pulls each image in `images` (references a registry serves; plain http or self-signed is fine, TLS is not
 * verified) with each contender in `contenders` (any of 'carrier', 'podman', 'skopeo-umoci', 'pure-node'),
 * round-robin: one warm-up round, then `runs` timed rounds, every run into a fresh store on a fresh file system
 * (bench/lib/scratch.js; needs root). Carrier runs from this checkout's dist/ (build it first). Waits for a quiet machine
 * before each run and redoes runs other processes disturbed, unless `quietWait` is false.
 * Resolves [{ image, contender, label, runs: [seconds], median, min, max, peakRssKiB, problems }] and logs progress
 * through `log` (default console.log).
 */
export async function benchPull({ images, contenders = ['carrier', 'podman'], runs = 5, quietWait = true, log = console.log } = {}) {
  if (!images?.length) throw new Error('benchPull: give images: [references]');
  const cli = path.join(benchDir, '..', 'dist', 'cli', 'bin.cjs');
  if (contenders.includes('carrier') && !fs.existsSync(cli)) throw new Error('benchPull: build carrier first (npm run build)');
  const all = makePullContenders({ carrierCli: cli });
  const chosen = contenders.map((id) => all.find((c) => c.id === id) ?? (() => { throw new Error(`benchPull: unknown contender ${id}`); })());
  const ctx = makeContext({ opts: { quietWait }, log, workDir });
  const rows = [];
  const runBase = fs.mkdtempSync('/tmp/cbl-');
  try {
    for (const image of images) {
      const slash = image.indexOf('/');
      const host = image.slice(0, slash);
      const rest = image.slice(slash + 1);
      const colon = rest.lastIndexOf(':');
      const ref = {
        host, url: `http://${host}`, name: image, variant: image,
        repo: colon > 0 ? rest.slice(0, colon) : rest, tag: colon > 0 ? rest.slice(colon + 1) : 'latest',
      };
      const items = chosen.map((c) => ({
        id: c.id,
        run: ({ timed }) => pullOnScratch(c, ref, { scratch: ctx.scratch, bytes: 32 * 1024 ** 3, runBase, timed }),
      }));
      const cells = await roundRobin(ctx, items, runs, { name: `${image} ` });
      for (const c of chosen) {
        const cell = cells.get(c.id);
        rows.push({ image, contender: c.id, label: c.label, runs: cell.runs, median: cell.median, min: cell.min, max: cell.max, peakRssKiB: cell.peakKiB, problems: cell.problems });
      }
    }
  } finally {
    fs.rmSync(runBase, { recursive: true, force: true });
  }
  return Object.assign(rows, { method: scratchMethod, machine: machineInfo(workDir) });
}

// The measuring loop the checkout, containers and scaling suites share: one warm-up round (0) and N timed rounds,
// every contender once per round in the same order (A B C A B C …), so drift hits them all alike.
import { median } from './util.js';

/**
 * Before a contender's timed part: wait for a quiet machine, GC, sync, then watch the rest of the machine's CPU use.
 * Resolves fn's result (which has `seconds`) with `foreign` added: the CPU-seconds other processes used meanwhile.
 */
export async function timed(ctx, fn) {
  await ctx.quiet();
  const window = await ctx.settle();
  const r = await fn();
  r.foreign = window.foreign();
  return r;
}

/**
 * items: [{ id, run({ round, timed }) → { seconds, peakKiB?, ...extra } }]; `timed(fn)` wraps the timed part (see
 * above). runs = 0 makes the warm-up round the only one, and its times count (for smoke runs).
 * run() throws when the contender fails (the message becomes a problem of that row, the run is not counted).
 * A run during which other processes used the CPUs is redone (ctx.isDisturbed, up to ctx.MAX_RETRIES; not with
 * --no-quiet-wait). Returns Map id → { runs, median, min, max, peakKiB, results, problems, disturbed, warm }.
 */
export async function roundRobin(ctx, items, runs, { name = '', onWarm } = {}) {
  const { log, opts } = ctx;
  items = items.filter((it) => !opts.only || opts.only.test(it.id)); // --only: the cells of the others are missing
  const cells = new Map(items.map((it) => [it.id, { runs: [], peaks: [], results: [], problems: [], disturbed: 0, warm: undefined }]));
  const once = async (it, round) => {
    const cell = cells.get(it.id);
    for (let attempt = 0; ; attempt++) {
      let r;
      try {
        r = await it.run({ round, attempt, timed: (fn) => timed(ctx, fn) });
      } catch (e) {
        // (ids differ from run to run: one message per kind of failure)
        const msg = e.message.split('\n')[0].replace(/\b[0-9a-f]{64}\b/g, '<id>').slice(0, 400);
        if (!cell.problems.includes(msg)) {
          cell.problems.push(msg);
          log(`  !! ${name}${it.id}: ${msg}`);
        }
        return undefined;
      }
      if (ctx.isDisturbed(r)) {
        cell.disturbed++;
        const again = opts.quietWait !== false && attempt < ctx.MAX_RETRIES;
        log(
          `  ${name}${it.id}: other processes used ${r.foreign.toFixed(2)} CPU-s during this ${r.seconds.toFixed(2)} s run` +
            (again ? ', running it again' : opts.quietWait === false ? ' (kept: --no-quiet-wait)' : `; kept after ${ctx.MAX_RETRIES} retries`),
        );
        if (again) continue;
      }
      return r;
    }
  };
  for (let round = 0; round <= runs; round++) {
    for (const it of items) {
      const r = await once(it, round);
      const cell = cells.get(it.id);
      if (!r) continue;
      if (round === 0) {
        cell.warm = r.seconds;
        onWarm?.(it, r);
      }
      // runs = 0 (a smoke run): the checking warm-up run is the only run, and counts
      if (round > 0 || runs === 0) {
        cell.runs.push(r.seconds);
        if (r.peakKiB) cell.peaks.push(r.peakKiB);
        cell.results.push(r);
      }
    }
  }
  for (const cell of cells.values()) Object.assign(cell, stats(cell.runs), { peakKiB: cell.peaks.length ? Math.max(...cell.peaks) : undefined });
  return cells;
}

/** { median, min, max } of a list of seconds (NaN when empty). */
export function stats(xs) {
  return xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) } : { median: NaN, min: NaN, max: NaN };
}

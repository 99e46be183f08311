// The measuring loop every suite shares: one warm-up round (0) and N timed rounds, every contender once per round in
// the same order (A B C A B C …), so drift hits them all alike; a run other processes disturbed is redone.
import { stats } from './util.js';

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
 * items: [{ id, contender?, run({ round, attempt, timed, cell }) → { seconds, peakKiB?, ...extra } }]; `timed(fn)` wraps the timed
 * part (see above), `cell` is the item's cell below (for problems and notes its checks find). runs = 0 makes the
 * warm-up round the only one, and its times count (for smoke runs).
 * run() throws when the contender fails (`failPrefix` + the message becomes a problem of that row, the run is not
 * counted). A run during which other processes used the CPUs is redone (ctx.isDisturbed, up to ctx.MAX_RETRIES; not
 * with --no-quiet-wait; ctx.willRedo tells a run whether it will be). onWarm(item, result) after each warm-up run,
 * onRound(round, seconds, cells) after each round. Returns Map id → { runs, median, min, max, peakKiB, peaks, results,
 * problems, notes, disturbed, warm, warmResult }.
 */
export async function roundRobin(ctx, items, runs, { name = '', onWarm, onRound, failPrefix = '' } = {}) {
  const { log, opts } = ctx;
  // --only (on the contender's id): the cells of the others are missing
  items = items.filter((it) => !opts.only || opts.only.test(it.contender ?? it.id));
  const cells = new Map(items.map((it) => [it.id, { runs: [], peaks: [], results: [], problems: [], notes: [], disturbed: 0, warm: undefined }]));
  const once = async (it, round) => {
    const cell = cells.get(it.id);
    for (let attempt = 0; ; attempt++) {
      let r;
      try {
        r = await it.run({ round, attempt, timed: (fn) => timed(ctx, fn), cell });
      } catch (e) {
        // (ids differ from run to run: one message per kind of failure)
        const msg = failPrefix + e.message.split('\n')[0].replace(/\b[0-9a-f]{64}\b/g, '<id>').slice(0, 400);
        if (!cell.problems.includes(msg)) {
          cell.problems.push(msg);
          log(`  !! ${name}${it.id}: ${msg}`);
        }
        return undefined;
      }
      if (ctx.isDisturbed(r)) {
        cell.disturbed++;
        const again = ctx.willRedo(r, attempt);
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
    const t0 = Date.now();
    for (const it of items) {
      const r = await once(it, round);
      const cell = cells.get(it.id);
      if (!r) continue;
      if (round === 0) {
        cell.warm = r.seconds;
        cell.warmResult = r;
        onWarm?.(it, r);
      }
      // runs = 0 (a smoke run): the checking warm-up run is the only run, and counts
      if (round > 0 || runs === 0) {
        cell.runs.push(r.seconds);
        if (r.peakKiB) cell.peaks.push(r.peakKiB);
        cell.results.push(r);
      }
    }
    await onRound?.(round, (Date.now() - t0) / 1000, cells);
  }
  for (const cell of cells.values()) Object.assign(cell, stats(cell.runs), { peakKiB: cell.peaks.length ? Math.max(...cell.peaks) : undefined });
  return cells;
}

/** A cell's timed runs and their median, min and max, as every suite's rows record them. */
export const timings = (cell) => ({ runs: cell.runs, median: cell.median, min: cell.min, max: cell.max });

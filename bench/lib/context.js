// What a suite gets from the harness besides its options: waiting for a quiet machine, settling before a timed run,
// telling a disturbed run, scratch file systems. bench/run.js adds the report's common fields to it.
import v8 from 'node:v8';
import vm from 'node:vm';
import { syncFs, waitForQuiet, cpuWindow } from './machine.js';
import { withScratch } from './scratch.js';

export const MAX_RETRIES = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GC of this process, to run before a timed run rather than during it. */
export function exposeGc() {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
}

/**
 * opts: { quietWait, only?, ... }; `gc` (exposeGc()) to collect this process's garbage before every run. Runs wait
 * for a quiet machine unless opts.quietWait is false.
 */
export function makeContext({ opts, log, workDir, gc }) {
  let quietWaited = 0;
  const ctx = {
    opts,
    log,
    workDir,
    MAX_RETRIES,
    /** Waits until other processes leave the CPUs alone (before every run). */
    async quiet() {
      if (opts.quietWait === false) return;
      const waited = await waitForQuiet({
        onWait: (busy) => log(`  (machine ${(busy * 100).toFixed(0)}% busy with other work: waiting for it to go quiet)`),
      });
      if (waited > 2) log(`  (quiet after ${waited.toFixed(0)} s)`);
      quietWaited += waited;
    },
    quietWaited: () => quietWaited,
    /** GC now (not during someone's run), sync, then start watching the rest of the machine's CPU use. */
    async settle() {
      if (gc) {
        gc();
        await sleep(50);
      }
      syncFs();
      return cpuWindow();
    },
    /** A run is disturbed when the rest of the machine used more than 0.05 CPU-s plus 10% of its wall time. */
    isDisturbed: (r) => r.foreign !== undefined && r.foreign > 0.05 + 0.1 * r.seconds,
    /** Will this disturbed run be thrown away and redone? (not with --no-quiet-wait, nor after MAX_RETRIES) */
    willRedo: (r, attempt) => ctx.isDisturbed(r) && opts.quietWait !== false && attempt < MAX_RETRIES,
    scratch: (bytes, fn, options) => withScratch(workDir, bytes, fn, options),
    /**
     * A suite starts: logs its name and mode; returns when it started, its configuration for the mode (a copy of
     * config.quick or config.full) and its number of timed runs (--runs, else the configuration's).
     */
    begin(name, config) {
      log(`\n=== ${name} suite (${opts.quick ? 'quick' : 'full'}) ===`);
      const cfg = { ...(opts.quick ? config.quick : config.full) };
      return { started: new Date(), cfg, runs: opts.runs ?? cfg.runs };
    },
  };
  return ctx;
}

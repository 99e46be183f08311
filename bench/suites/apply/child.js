// One apply in a fresh Node process, so that no contender runs next to another's leftover garbage collection or
// JIT work (on a 2-core machine V8's background GC threads would steal a core from whatever runs next).
//
// Started with child_process.fork(); loads everything, sends {type:'ready'}, waits for the parent's
// {type:'go', job} (the parent runs `sync` in between), applies once, and sends {type:'done', ...} with the time
// measured in here (process start-up excluded), the apply's result, the CPU time this process used (all threads), and
// optionally memory and event-loop figures:
//   addedPeakKiB  peak RSS added by the apply: VmHWM after it minus VmRSS just before it (or, if the high-water
//                 mark did not move, the largest VmRSS sampled every ~10 ms minus the start)
//   maxGapMs      largest interval between ticks of a 1 ms setInterval during the apply
//
// job = { mode: 'carrier' | 'carrier-stream' | 'pure-node' | 'node-tar' | 'read-only' | 'idle',
//         blob, compression, out, tarSplit?, measure? }
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

function status() {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
}

// argv[2]: the copy of dist/index.js the parent took at the start (see loadCarrier in bench/lib/build.js)
let carrier = null;
if (process.argv[2]) {
  try {
    carrier = await import(pathToFileURL(process.argv[2]).href);
  } catch {
    carrier = null; // the pure-Node modes still work
  }
}
const { pureNodeApply, nodeTarApply } = await import('../../lib/purenode.js');

async function apply(job) {
  switch (job.mode) {
    case 'carrier': {
      const options = {};
      if (job.compression === 'none') options.compression = 'none';
      if (job.tarSplit) options.tarSplit = job.tarSplit;
      return carrier.applyLayer(job.blob, job.out, options);
    }
    case 'carrier-stream':
      return carrier.applyLayer(fs.createReadStream(job.blob), job.out);
    case 'pure-node':
      return pureNodeApply(job.blob, job.out, job.compression);
    case 'node-tar':
      return nodeTarApply(job.blob, job.out, job.compression);
    case 'read-only': {
      // what the stream rows pay before carrier sees a byte: reading the blob through fs.createReadStream
      let n = 0;
      for await (const chunk of fs.createReadStream(job.blob)) n += chunk.length;
      return { compressedSize: n };
    }
    case 'idle':
      return new Promise((r) => setTimeout(() => r({}), 2000));
    default:
      throw new Error(`unknown mode ${job.mode}`);
  }
}

async function run(job) {
  if (job.mode.startsWith('carrier') && !carrier) throw new Error('carrier is not loadable (the copy of dist/index.js)');
  await new Promise((r) => setTimeout(r, 50));
  const base = status();
  let timer;
  let last = performance.now();
  let maxGap = 0;
  let sampled = base.rss;
  const gaps = [];
  if (job.measure) {
    timer = setInterval(() => {
      const now = performance.now();
      const gap = now - last;
      gaps.push(gap);
      if (gap > maxGap) maxGap = gap;
      last = now;
      if (gaps.length % 10 === 0) sampled = Math.max(sampled, status().rss);
    }, 1);
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await apply(job);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const msg = { type: 'done', seconds, result, cpu: (cpu.user + cpu.system) / 1e6 };
  if (job.measure) {
    clearInterval(timer);
    maxGap = Math.max(maxGap, performance.now() - last);
    const end = status();
    gaps.sort((a, b) => a - b);
    Object.assign(msg, {
      baseRssKiB: base.rss,
      baseHwmKiB: base.hwm,
      endHwmKiB: end.hwm,
      sampledMaxRssKiB: sampled,
      addedPeakKiB: end.hwm > base.hwm ? end.hwm - base.rss : Math.max(0, sampled - base.rss),
      maxGapMs: maxGap,
      p99GapMs: gaps.length ? gaps[Math.floor(gaps.length * 0.99)] : null,
      ticks: gaps.length,
    });
  }
  return msg;
}

process.on('message', (m) => {
  if (m?.type !== 'go') return;
  run(m.job).then(
    (msg) => process.send(msg, () => process.exit(0)),
    (e) => process.send({ type: 'error', error: `${e.code ?? e.name}: ${e.message}` }, () => process.exit(1)),
  );
});
process.send({ type: 'ready' });

// Child process for the memory / responsiveness test: applies one layer once and prints a JSON line with the peak
// RSS added by the apply (VmHWM after minus VmHWM once everything is loaded) and the largest gap seen by a 1 ms
// setInterval timer while it ran.
//
//   node bench/rss-child.js <carrier-path|carrier-stream|pure-node> <blob> <compression> <outDir>
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const [mode, blob, compression, outDir] = process.argv.slice(2);

function status() {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
}

const { applyLayer } = mode.startsWith('carrier') ? await import('../dist/index.js') : {};
const { pureNodeApply } = await import('./purenode.js');

// load everything the apply path touches before taking the baseline
await new Promise((r) => setTimeout(r, 100));
const base = status();

let last = performance.now();
let maxGap = 0;
let sampledMaxRss = base.rss;
const gaps = [];
const timer = setInterval(() => {
  const now = performance.now();
  if (gaps.length % 10 === 0) sampledMaxRss = Math.max(sampledMaxRss, status().rss);
  const gap = now - last;
  gaps.push(gap);
  if (gap > maxGap) maxGap = gap;
  last = now;
}, 1);

const t0 = performance.now();
let result;
try {
if (mode === 'carrier-path') result = await applyLayer(blob, outDir, { compression });
else if (mode === 'carrier-stream')
  result = await applyLayer(fs.createReadStream(blob), outDir, { compression });
else if (mode === 'pure-node') result = await pureNodeApply(blob, outDir, compression);
else if (mode === 'idle') result = await new Promise((r) => setTimeout(() => r({ diffSize: 0 }), 2000));
else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  process.stdout.write(JSON.stringify({ mode, compression, error: `${e.code ?? e.name}: ${e.message}` }) + '\n');
  process.exit(1);
}
const seconds = (performance.now() - t0) / 1000;
clearInterval(timer);
// the gap that was running when the apply finished
const tail = performance.now() - last;
if (tail > maxGap) maxGap = tail;
const end = status();
gaps.sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify({
    mode,
    compression,
    seconds,
    diffSize: result.diffSize,
    diffDigest: result.diffDigest,
    baseHwmKiB: base.hwm,
    baseRssKiB: base.rss,
    endHwmKiB: end.hwm,
    sampledMaxRssKiB: sampledMaxRss,
    // If the high-water mark rose during the apply, the peak happened then: peak minus the RSS at the start is what
    // the apply added. Otherwise fall back to the largest RSS sampled every ~10 ms.
    addedPeakKiB: end.hwm > base.hwm ? end.hwm - base.rss : Math.max(0, sampledMaxRss - base.rss),
    maxGapMs: maxGap,
    p99GapMs: gaps.length ? gaps[Math.floor(gaps.length * 0.99)] : null,
    ticks: gaps.length,
  }) + '\n',
);

// The partial-pull cost model's local rates (src/chunked/fetch-cost.ts), measured on the native apply: how many bytes
// a second of the rebuild thread's CPU takes from the store's files (open, read from the page cache into the apply's
// blocks, SHA-256 against the TOC digest), against how many a second of the decode thread's CPU yields when the same
// layer is applied whole from its zstd:chunked blob (SHA-256 of the blob, zstd decompression into the blocks).
//
//   npm run build && node bench/rebuild-rate.js [--rounds N] [layer.tar]
//
// Two layers: the given tar (default: the largest layer.tar under bench/work/fixtures, the pull suite's distro layer,
// 200 MiB in 4911 files) and one of the same size in 50 large files of random bytes, where the per-file work is
// negligible: the pair separates the per-byte rate from the per-file cost. Each layer is compressed to zstd:chunked
// in memory and applied whole once (the "store": its files then sit in the page cache, as a store's do after v1's
// pull). Each round then applies it partially, every file taken from that store (fetching nothing: the ranges come from
// memory), and whole from the blob, into fresh directories (none deleted before the end: ext4 allocates inodes slowly
// for a while after a mass delete), the two interleaved, each first in every other round. The threads' CPU time is
// read from /proc/self/task/*/schedstat (nanoseconds) every 2 ms; a thread's last 2 ms can be missed, under 2% of a
// round here. CPU time is what a loaded machine disturbs least, and load only slows a thread: the rates are lower
// bounds. Each way's whole apply is printed too (wall, process CPU, CPU by thread): extraction is the same work either
// way, and on a disk file system its time varies more than the two threads compared (TMPDIR=/dev/shm steadies it).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { compressChunked } from '../dist/chunked/compress.js';
import { fetchChunkedToc, planPartial } from '../dist/chunked/partial.js';
import { applyLayer } from '../dist/layer/apply.js';
import { median } from './lib/util.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const rounds = argv.includes('--rounds') ? Number(argv[argv.indexOf('--rounds') + 1]) : 5;
const given = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--rounds')[0];

function defaultTar() {
  const dir = path.join(repo, 'bench/work/fixtures');
  const tars = fs.existsSync(dir) ? fs.readdirSync(dir).map((d) => path.join(dir, d, 'layer.tar')).filter((f) => fs.existsSync(f)) : [];
  if (tars.length === 0) throw new Error('no layer.tar under bench/work/fixtures (run the pull suite once) and none given');
  return tars.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
}

/** A tar of `count` files of random bytes, `size` each (a multiple of 512), and its end of archive. */
function randomTar(count, size) {
  const parts = [];
  for (let i = 0; i < count; i++) {
    const h = Buffer.alloc(512);
    h.write(`f${i}`, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(size.toString(8).padStart(11, '0') + '\0', 124);
    h.write('14533200000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\x0000', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(h, randomBytes(size));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function readAll(s) {
  const chunks = [];
  for await (const c of s) chunks.push(c);
  return Buffer.concat(chunks);
}

/**
 * CPU nanoseconds of every thread named `comm` that ran while `fn` did (sampled), with the wall and whole-process CPU
 * seconds of `fn` (every thread of the apply: extraction too).
 */
async function threadCpu(comm, fn) {
  const seen = new Map(); // tid -> [comm, ns at the first sample, ns at the last]
  const sample = () => {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        const ns = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        const had = seen.get(tid);
        // A carrier thread is new to this apply: all of its time counts.
        seen.set(tid, [name, had ? had[1] : name.startsWith('carrier-') ? 0 : ns, ns]);
      } catch {
        // the thread ended between the listing and the read
      }
    }
  };
  sample();
  const timer = setInterval(sample, 2);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const byName = {};
  for (const [name, first, last] of seen.values()) byName[name] = (byName[name] ?? 0) + last - first;
  return { thread: byName[comm] ?? 0, byName, wall, process: (cpu.user + cpu.system) / 1e6 };
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-rebuild-rate-'));
let n = 0;
const fresh = () => {
  const d = path.join(work, `d${n++}`);
  fs.mkdirSync(d);
  return d;
};

async function measure(name, tar) {
  const { stream, result } = compressChunked(Readable.from([tar]));
  const blob = await readAll(stream);
  const r = await result;
  const blobPath = path.join(work, `${name}.zst`);
  fs.writeFileSync(blobPath, blob);
  const layer = {
    digest: r.digest,
    size: blob.length,
    annotations: r.annotations,
    fetchRanges: async (ranges) => {
      const parts = ranges.map((x) => blob.subarray(x.offset, x.offset + x.length));
      return { parts, received: parts.reduce((k, p) => k + p.length, 0), requests: 1 };
    },
  };
  const store = fresh();
  await applyLayer(blobPath, store, { rootless: true });
  const toc = await fetchChunkedToc(layer);
  const local = new Map();
  for (const c of toc.contents) local.set(c.digest, { path: path.join(store, c.name), size: c.size });
  const localBytes = toc.contents.reduce((k, c) => k + c.size, 0);
  const files = toc.contents.length;
  const rebuild = [];
  const decode = [];
  const whole = { partial: [], full: [] };
  for (let i = 0; i < rounds; i++) {
    const plan = await planPartial(layer, local, { toc, link: { rttSeconds: 0.001, bytesPerSecond: 1e6 } });
    if (!plan || plan.toFetch !== 0) throw new Error(`${name}: expected a partial plan fetching nothing`);
    const partial = () => threadCpu('carrier-rebuild', () => applyLayer(plan.tar, fresh(), { rootless: true, cloneFrom: plan.clones }));
    const full = () => threadCpu('carrier-decode', () => applyLayer(blobPath, fresh(), { rootless: true }));
    // Alternating which goes first; nothing is deleted until the end (ext4 allocates inodes slowly for a while after a
    // mass delete, which would slow whichever came next).
    const [p, f] = i % 2 ? await full().then(async (f) => [await partial(), f]) : await partial().then(async (p) => [p, await full()]);
    rebuild.push(p.thread);
    decode.push(f.thread);
    whole.partial.push(p);
    whole.full.push(f);
  }
  const mr = median(rebuild) / 1e9;
  const md = median(decode) / 1e9;
  console.log(`${name}: ${files} files, ${(localBytes / 2 ** 20).toFixed(1)} MiB of content, ${(tar.length / 2 ** 20).toFixed(1)} MiB of tar, blob ${(blob.length / 2 ** 20).toFixed(1)} MiB`);
  console.log(`  rebuild thread CPU, median of ${rounds}: ${(mr * 1e3).toFixed(1)} ms (${rebuild.map((x) => (x / 1e6).toFixed(0)).join(', ')}): ${(localBytes / mr / 1e9).toFixed(2)} GB/s of reused content`);
  console.log(`  decode thread CPU, median of ${rounds}:  ${(md * 1e3).toFixed(1)} ms (${decode.map((x) => (x / 1e6).toFixed(0)).join(', ')}): ${(tar.length / md / 1e9).toFixed(2)} GB/s of tar`);
  for (const [way, got] of Object.entries(whole)) {
    const names = [...new Set(got.flatMap((x) => Object.keys(x.byName)))].sort();
    const threads = names.map((k) => `${k} ${(median(got.map((x) => x.byName[k] ?? 0)) / 1e6).toFixed(0)}`).join(', ');
    console.log(`  ${way} apply, medians: ${median(got.map((x) => x.wall)).toFixed(3)} s wall, ${median(got.map((x) => x.process)).toFixed(3)} s CPU of the process (ms by thread: ${threads})`);
  }
  return { files, localBytes, rebuildSeconds: mr, decodeSeconds: md, tarBytes: tar.length };
}

try {
  const tarPath = given ?? defaultTar();
  const distro = await measure(path.basename(path.dirname(tarPath)), fs.readFileSync(tarPath));
  const big = await measure('50 large files', randomTar(50, Math.round(distro.localBytes / 50 / 4096) * 4096));
  // rebuild CPU = bytes / rate + files × per-file cost, from the two layers
  const perFile = (distro.rebuildSeconds - (big.rebuildSeconds * distro.localBytes) / big.localBytes) / (distro.files - (big.files * distro.localBytes) / big.localBytes);
  const rate = big.localBytes / (big.rebuildSeconds - big.files * perFile);
  console.log(`fit: ${(rate / 1e9).toFixed(2)} GB/s per reused byte, ${(perFile * 1e6).toFixed(1)} µs per reused file`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

// Inflate microbenchmark (issue 21): how fast the addon's gzip decoder runs with ISA-L's igzip against zlib, on the
// bench's own gzip layers, CPU-bound (the blob is read into memory first; the output is dropped).
//
//   node bench/inflate.js [--rounds N] [file.tar.gz ...]   (default: the gzip layers under bench/work/fixtures)
//
// Each measurement is a child process (CARRIER_INFLATE=zlib or isal) that pushes the whole blob through the addon's
// DecompressJob and reports its wall time, the CPU-seconds of its decoding thread ("carrier-decomp", read from
// /proc/self/task every 10 ms: inflate plus one copy of the output) and of the whole process; the two inflaters
// alternate, round by round, so a loaded machine slows both alike, and the ratios are taken per file from the
// medians of one run. The decoding thread's CPU time is the figure a busy machine disturbs least.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function child(file) {
  const native = createRequire(import.meta.url)('node-gyp-build')(repo);
  const blob = fs.readFileSync(file);
  const tick = 1 / 100; // USER_HZ
  let decodeCpu = 0;
  const sampleDecoder = () => {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'carrier-decomp') continue;
        const f = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
        decodeCpu = (Number(f[11]) + Number(f[12])) * tick;
      } catch {}
    }
  };
  const sampler = setInterval(sampleDecoder, 10);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let out = 0;
  await new Promise((resolve, reject) => {
    const job = new native.DecompressJob('gzip', (e) => {
      if (e.type === 'drain') push();
      else if (e.type === 'data') {
        if (at >= blob.length) sampleDecoder();
        out += e.chunk.length;
        job.ack(1);
      } else if (e.type === 'end') resolve();
      else if (e.type === 'error') reject(Object.assign(new Error(e.error.message), e.error));
    });
    const step = 1 << 20;
    let at = 0;
    function push() {
      while (at < blob.length) {
        const more = job.push(blob.subarray(at, at + step));
        at += step;
        if (!more) return;
      }
      job.end();
    }
    push();
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  process.stdout.write(JSON.stringify({ inflater: native.inflater(), seconds, cpu: (cpu.user + cpu.system) / 1e6, decodeCpu, out }) + '\n');
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(argv) {
  let rounds = 5;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') rounds = Number(argv[++i]);
    else files.push(argv[i]);
  }
  if (!files.length) {
    const root = path.join(repo, 'bench/work/fixtures');
    for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) {
      for (const f of fs.readdirSync(path.join(root, d))) if (f.endsWith('.tar.gz')) files.push(path.join(root, d, f));
    }
  }
  if (!files.length) throw new Error('no gzip layers: run the pull or apply suite once to build bench/work/fixtures, or name files');
  for (const file of files) {
    const res = { zlib: [], isal: [] };
    for (let r = 0; r < rounds; r++) {
      for (const inflater of r % 2 ? ['isal', 'zlib'] : ['zlib', 'isal']) {
        const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', file], {
          env: { ...process.env, CARRIER_INFLATE: inflater },
          encoding: 'utf8',
        });
        if (p.status !== 0) throw new Error(`${inflater} on ${file}: ${p.stderr.trim().split('\n').slice(-3).join(' | ')}`);
        const m = JSON.parse(p.stdout);
        if (m.inflater !== inflater) throw new Error(`asked for ${inflater}, the addon used ${m.inflater}`);
        res[inflater].push(m);
      }
    }
    const mib = res.zlib[0].out / 2 ** 20;
    const line = (k) => {
      const s = median(res[k].map((m) => m.seconds));
      const c = median(res[k].map((m) => m.cpu));
      const d = median(res[k].map((m) => m.decodeCpu));
      return `${k} ${s.toFixed(3)} s wall, decoding thread ${d.toFixed(2)} CPU-s (${(mib / d).toFixed(0)} MiB/s out), process ${c.toFixed(2)} CPU-s`;
    };
    const ratio = median(res.zlib.map((m) => m.seconds)) / median(res.isal.map((m) => m.seconds));
    const cpuRatio = median(res.zlib.map((m) => m.cpu)) / median(res.isal.map((m) => m.cpu));
    const decodeRatio = median(res.zlib.map((m) => m.decodeCpu)) / median(res.isal.map((m) => m.decodeCpu));
    console.log(
      `${path.relative(repo, file)} (${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB → ${mib.toFixed(1)} MiB), median of ${rounds}: ` +
        `${line('zlib')}; ${line('isal')}; zlib ÷ isal: ${decodeRatio.toFixed(2)}× decoding-thread CPU, ${cpuRatio.toFixed(2)}× process CPU, ${ratio.toFixed(2)}× wall`,
    );
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else main(process.argv.slice(2));

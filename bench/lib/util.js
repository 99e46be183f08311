// Small helpers every part of the benchmark uses: running and timing programs, statistics, digests, formatting.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export const MiB = 1024 * 1024;

/** Runs a program; resolves with its exit code, stdout and stderr (throws on a non-zero exit unless allowFail). */
export function run(cmd, args, { cwd, stdout = 'pipe', allowFail = false, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', stdout, 'pipe'] });
    const out = [];
    const err = [];
    child.stdout?.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const res = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if ((code !== 0 || signal) && !allowFail) {
        reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? code}): ${res.stderr.trim().slice(0, 2000)}`));
      } else resolve(res);
    });
  });
}

/**
 * Times a program from spawn to exit: resolves { seconds, code, signal, stdout, stderr } (stdout only with
 * `stdout: 'pipe'`). `stdoutFile` redirects its stdout (e.g. '/dev/null'); a non-zero exit throws unless allowFail.
 */
export async function timeCommand(cmd, args, { stdoutFile, stdout = 'ignore', cwd, env, allowFail = false } = {}) {
  let fd;
  if (stdoutFile) fd = fs.openSync(stdoutFile, 'w');
  try {
    const t0 = process.hrtime.bigint();
    const r = await run(cmd, args, { cwd, env, allowFail, stdout: fd ?? stdout });
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, ...r };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** { median, min, max } of a list of seconds (NaN when empty). */
export function stats(xs) {
  return xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) } : { median: NaN, min: NaN, max: NaN };
}

export const sha256 = (bytes) => 'sha256:' + createHash('sha256').update(bytes).digest('hex');

export function sha256File(file) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve('sha256:' + h.digest('hex')));
  });
}

export function fmtDuration(s) {
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// Small helpers shared by the benchmark modules: process spawning, timing, statistics, machine info, tree manifests.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/** Times a program from spawn to exit, in seconds. `stdoutFile` redirects its stdout (e.g. '/dev/null'). */
export async function timeCommand(cmd, args, { stdoutFile, cwd } = {}) {
  let fd;
  if (stdoutFile) fd = fs.openSync(stdoutFile, 'w');
  try {
    const t0 = process.hrtime.bigint();
    await run(cmd, args, { cwd, stdout: fd ?? 'ignore' });
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function syncFs() {
  execFileSync('sync');
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function sha256File(file) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve('sha256:' + h.digest('hex')));
  });
}

function firstLine(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim();
  } catch (e) {
    const s = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n')[0].trim();
    return s || 'unavailable';
  }
}

export function machineInfo(workDir) {
  const cpus = os.cpus();
  let memTotal = '';
  try {
    memTotal = `${Math.round(os.totalmem() / 1024 ** 3)} GiB`;
  } catch {}
  return {
    nproc: firstLine('nproc', []),
    cpu: cpus[0]?.model ?? 'unknown',
    memory: memTotal,
    kernel: firstLine('uname', ['-srm']),
    fsType: firstLine('stat', ['-f', '-c', '%T', workDir]),
    node: process.version,
    tar: firstLine('tar', ['--version']),
    gzip: firstLine('gzip', ['--version']),
    zstd: firstLine('zstd', ['--version']),
    user: process.getuid?.() === 0 ? 'root' : `uid ${process.getuid?.()}`,
  };
}

/**
 * A canonical description of an extracted tree: one line per entry with type, mode, owner, size, mtime (non-dirs) and
 * link target. Two extractions of the same layer should give the same manifest.
 */
export function treeManifest(root) {
  const lines = [];
  const stats = { dirs: 0, files: 0, symlinks: 0, other: 0, bytes: 0 };
  const walk = (rel) => {
    const abs = rel ? path.join(root, rel) : root;
    for (const name of fs.readdirSync(abs)) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      const own = `${st.uid}:${st.gid}`;
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isDirectory()) {
        stats.dirs++;
        lines.push(`d ${r} ${mode} ${own}`);
        walk(r);
      } else if (st.isFile()) {
        stats.files++;
        stats.bytes += st.size;
        lines.push(`f ${r} ${mode} ${own} ${st.size} ${mtime}`);
      } else if (st.isSymbolicLink()) {
        stats.symlinks++;
        lines.push(`l ${r} ${own} ${mtime} -> ${fs.readlinkSync(p)}`);
      } else {
        stats.other++;
        lines.push(`? ${r} ${mode} ${own}`);
      }
    }
  };
  walk('');
  lines.sort();
  return { lines, stats, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

/** The manifest without symlink mtimes (for extractors that do not restore them, like node-tar). */
export function withoutSymlinkMtimes(m) {
  const lines = m.lines.map((l) => (l.startsWith('l ') ? l.replace(/^(l \S+ \S+) \d+ ->/, '$1 ->') : l));
  return { lines, stats: m.stats, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

/** First few lines that differ between two manifests, for error messages. */
export function manifestDiff(a, b, max = 5) {
  const sa = new Set(a.lines);
  const sb = new Set(b.lines);
  const out = [];
  for (const l of a.lines) if (!sb.has(l) && out.length < max) out.push(`- ${l}`);
  for (const l of b.lines) if (!sa.has(l) && out.length < 2 * max) out.push(`+ ${l}`);
  return out;
}

export function fmtSeconds(s) {
  return s === undefined || Number.isNaN(s) ? 'n/a' : s.toFixed(3);
}

export function fmtDuration(s) {
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

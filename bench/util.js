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
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const CLK_TCK = 100; // USER_HZ: /proc counts CPU time in 1/100 s on Linux

/** Busy (everything but idle and iowait, steal included) and total CPU time of the whole machine, in seconds. */
export function machineCpu() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return {
    busy: (user + nice + system + irq + softirq + steal) / CLK_TCK,
    steal: steal / CLK_TCK,
    total: f.reduce((a, b) => a + b, 0) / CLK_TCK,
  };
}

/** pid -> { ppid, start, ticks }, where ticks = utime + stime + cutime + cstime (reaped children included). */
function processTimes() {
  const out = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after "pid (comm) ": state ppid ... utime(12th) stime cutime cstime
    out.set(Number(name), {
      ppid: Number(f[1]),
      start: f[19],
      ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
    });
  }
  return out;
}

function ourTree(procs, root) {
  const ours = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of procs) {
      if (!ours.has(pid) && ours.has(p.ppid)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  return ours;
}

/**
 * Starts measuring what the rest of the machine does; `foreign()` then returns the CPU-seconds used meanwhile by
 * every user-space process outside this one and its descendants, plus hypervisor steal. Kernel threads (children of
 * kthreadd) are left out: during a run they mostly do that run's own I/O (the scratch loop device's workers,
 * writeback, block completions), which is part of the measurement, not a disturbance. A process that
 * exits is folded into its parent's cutime when reaped, with all its CPU time: what it had used before the window is
 * taken off again. Processes that start and end in between are counted through their parent the same way.
 */
export function cpuWindow() {
  const before = processTimes();
  const steal0 = machineCpu().steal;
  return {
    foreign() {
      const after = processTimes();
      const steal = machineCpu().steal - steal0;
      const ours = new Set([...ourTree(before, process.pid), ...ourTree(after, process.pid)]);
      const kernel = (pid, p) => pid === 2 || p.ppid === 2;
      let ticks = 0;
      for (const [pid, p] of after) {
        if (ours.has(pid) || kernel(pid, p)) continue;
        const b = before.get(pid);
        ticks += p.ticks - (b && b.start === p.start ? b.ticks : 0);
      }
      for (const [pid, b] of before) {
        if (ours.has(pid) || kernel(pid, b)) continue;
        const a = after.get(pid);
        if (!a || a.start !== b.start) ticks -= b.ticks; // gone (reaped into its parent's cutime) or pid reused
      }
      return Math.max(0, ticks / CLK_TCK + steal);
    },
  };
}

/** Direct-reclaim and compaction counters from /proc/vmstat: signs that memory ran short. */
export function memoryPressure() {
  const v = Object.fromEntries(
    fs.readFileSync('/proc/vmstat', 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([k, n]) => [k, Number(n)]),
  );
  return { pgscanDirect: v.pgscan_direct ?? 0, compactStall: v.compact_stall ?? 0, refaultFile: v.workingset_refault_file ?? 0 };
}

/** Resolves once the machine has been nearly idle (< `maxBusy` of all CPUs) for `ms`; returns seconds waited. */
export async function waitForQuiet({ maxBusy = 0.1, ms = 500, onWait, limitSeconds = 900 } = {}) {
  const t0 = Date.now();
  let told = false;
  for (;;) {
    const a = machineCpu();
    await new Promise((r) => setTimeout(r, ms));
    const b = machineCpu();
    const busy = (b.busy - a.busy) / Math.max(1e-9, b.total - a.total);
    if (busy < maxBusy) return (Date.now() - t0) / 1000;
    if ((Date.now() - t0) / 1000 > limitSeconds) return (Date.now() - t0) / 1000;
    if (!told) onWait?.(busy);
    told = true;
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
    mount: firstLine('findmnt', ['-no', 'SOURCE,FSTYPE,OPTIONS', '-T', workDir]).replace(/\s+/g, ' '),
    node: process.version,
    tar: firstLine('tar', ['--version']),
    gzip: firstLine('gzip', ['--version']),
    zstd: firstLine('zstd', ['--version']).replace(/^\*+\s*|\s*\*+$/g, ''),
    user: process.getuid?.() === 0 ? 'root' : `uid ${process.getuid?.()}`,
  };
}

/**
 * A canonical description of an extracted tree: one tab-separated line per entry with type, path, mode, owner, size,
 * mtime and link target. Two extractions of the same layer should give the same manifest.
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
        lines.push(['d', r, mode, own, mtime].join('\t'));
        walk(r);
      } else if (st.isFile()) {
        stats.files++;
        stats.bytes += st.size;
        lines.push(['f', r, mode, own, st.size, mtime].join('\t'));
      } else if (st.isSymbolicLink()) {
        stats.symlinks++;
        lines.push(['l', r, own, mtime, fs.readlinkSync(p)].join('\t'));
      } else {
        stats.other++;
        lines.push(['?', r, mode, own].join('\t'));
      }
    }
  };
  walk('');
  lines.sort();
  return { lines, stats, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

/**
 * What extracting `tarPath` should produce, in treeManifest's format, read from the tar headers themselves (so GNU tar
 * is checked like everyone else). Hard links take their target's record.
 */
export async function tarManifest(tarPath) {
  const { default: tarStream } = await import('tar-stream');
  const { pipeline } = await import('node:stream/promises');
  const byPath = new Map();
  const clean = (n) => path.posix.normalize('/' + n).slice(1).replace(/\/$/, '');
  const extract = tarStream.extract();
  extract.on('entry', (h, stream, next) => {
    const r = clean(h.name);
    const mode = (h.mode & 0o7777).toString(8);
    const own = `${h.uid}:${h.gid}`;
    const mtime = Math.floor(h.mtime.getTime() / 1000);
    if (h.type === 'directory') byPath.set(r, ['d', r, mode, own, mtime]);
    else if (h.type === 'file' || h.type === 'contiguous-file') byPath.set(r, ['f', r, mode, own, h.size, mtime]);
    else if (h.type === 'symlink') byPath.set(r, ['l', r, own, mtime, h.linkname]);
    else if (h.type === 'link') {
      const t = byPath.get(clean(h.linkname));
      if (t) byPath.set(r, [t[0], r, ...t.slice(2)]);
    } else byPath.set(r, ['?', r, mode, own]);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(fs.createReadStream(tarPath, { highWaterMark: 1 << 20 }), extract);
  byPath.delete('');
  const lines = [...byPath.values()].map((f) => f.join('\t')).sort();
  return { lines, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

/**
 * Sorts the differences between an expected and an actual manifest into unrestored directory mtimes, unrestored
 * symlink mtimes, and everything else (missing or extra entries, wrong type, mode, owner, size, content, target).
 */
export function classifyDiff(expected, actual) {
  const index = (m) => new Map(m.lines.map((l) => [l.split('\t').slice(0, 2).join('\t'), l]));
  const e = index(expected);
  const a = index(actual);
  const out = { dirMtime: [], symlinkMtime: [], other: [] };
  const mtimeField = { d: 4, l: 3 };
  for (const [key, el] of e) {
    const al = a.get(key);
    if (al === el) continue;
    if (al === undefined) {
      out.other.push(`missing: ${el.replaceAll('\t', ' ')}`);
      continue;
    }
    const ef = el.split('\t');
    const af = al.split('\t');
    const k = mtimeField[ef[0]];
    if (k !== undefined && ef.every((v, i) => i === k || v === af[i])) {
      (ef[0] === 'd' ? out.dirMtime : out.symlinkMtime).push(`${ef[1]} (${af[k]} instead of ${ef[k]})`);
    } else out.other.push(`want ${el.replaceAll('\t', ' ')} | got ${al.replaceAll('\t', ' ')}`);
  }
  for (const [key, al] of a) if (!e.has(key)) out.other.push(`unexpected: ${al.replaceAll('\t', ' ')}`);
  return out;
}

export function fmtSeconds(s) {
  return s === undefined || Number.isNaN(s) ? 'n/a' : s.toFixed(3);
}

export function fmtDuration(s) {
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

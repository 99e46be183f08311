// What the rest of the machine does while a run is timed (CPU use of other processes, memory pressure), waiting for
// it to go quiet, the resident memory of a process tree, and a description of the machine for the report.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

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
export function processTimes() {
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

/** `root` and its descendants among `procs` (pid -> { ppid, ... }). */
export function descendants(procs, root) {
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
      const ours = new Set([...descendants(before, process.pid), ...descendants(after, process.pid)]);
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
 * Sum of VmRSS over `pid` and its descendants, sampled every `ms`; stop() returns the largest sum seen (KiB).
 * Scanning /proc costs a little CPU in this process, so it is only used where asked (the warm-up round).
 */
export function sampleTree(pid, ms = 50) {
  let peak = 0;
  const tick = () => {
    let sum = 0;
    for (const p of descendants(processTimes(), pid)) {
      try {
        const s = fs.readFileSync(`/proc/${p}/status`, 'utf8');
        sum += Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      } catch {}
    }
    if (sum > peak) peak = sum;
  };
  const timer = setInterval(tick, ms);
  tick();
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

// The pull users actually get (issue 21, item 0): the default layout, where Carrier's store and blob cache are both
// under the user's data directory (~/.local/share/carrier/{storage,cache/blobs}) on the host's own file system, one
// that has seen deletes and that other processes write to, with an empty cache: not the fresh loop file system per
// run of the suite's main rows.
//
// Each run gets a fresh HOME in bench/work (the host file system) and a fresh short run root under /tmp; carrier runs
// without --root, so the store and the cache are where a user's are; podman gets --root in the same HOME. Removed
// after each run (untimed), so every run starts on a file system with fresh deletes. The contenders, round-robin:
// carrier as a user runs it, carrier --no-sync (no syncfs: podman's durability), carrier with the blob cache on
// tmpfs (CARRIER_BLOB_CACHE under /dev/shm: what the cache's own writes cost on the host file system), and podman.
//
// What this layout showed (issue 21, 2026-12-06): this host's root is ext4 without a journal, where every inode
// allocation skips the block group's recently deleted inodes one by one from the group's start (recently_deleted() in
// fs/ext4/ialloc.c: up to 5 minutes while their inode table block is dirty). The previous run's tree, just removed,
// sat in the group the new store's directories inherit, so a pull spent 1-4 s of system time there (perf), quadratic
// in the layer's file count; podman pays it too. Carrier now makes a layer's directory where ext4 places a top-level
// one (src/fs/spread-dir.ts): 0.3-0.4 s of system time per pull instead of 2.5-3.5 s (podman 2.8-3.7 s). The syncfs
// (0.03-0.34 s under load, strace -T) and the cache blob beside the layer (60 of 260 MB it flushes; no fsync of its
// own, nothing written twice: strace -c) cost little by comparison; applyLayer now starts the cache copy's writeback
// as it grows, which took the blob's ~0.1 s out of the syncfs.
import fs from 'node:fs';
import path from 'node:path';
import { timings, roundRobin, timed } from '../../lib/roundrobin.js';
import { timedCommand } from '../../lib/pullers.js';

const CONTENDERS = [
  { id: 'carrier', label: 'carrier pull', extra: [], env: {} },
  { id: 'carrier-nosync', label: 'carrier pull --no-sync', extra: ['--no-sync'], env: {} },
  { id: 'carrier-tmpfs-cache', label: 'carrier pull, blob cache on tmpfs', extra: [], env: { CARRIER_BLOB_CACHE: 'tmpfs' } },
  { id: 'podman', label: 'podman pull' },
];

function command(c) {
  if (c.id === 'podman') return 'HOME=H podman --root H/.local/share/containers/storage --runroot RR --storage-driver overlay pull -q --tls-verify=false IMG';
  const env = c.env.CARRIER_BLOB_CACHE ? 'CARRIER_BLOB_CACHE=/dev/shm/… ' : '';
  return `HOME=H ${env}carrier --runroot RR pull --tls-verify=false -q ${c.extra.join(' ')}${c.extra.length ? ' ' : ''}IMG (store and cache in H/.local/share/carrier)`;
}

async function pullOnce(c, { cli, ref, home, runDir, shm }) {
  const env = { ...process.env, HOME: home };
  delete env.XDG_DATA_HOME;
  delete env.XDG_CONFIG_HOME;
  delete env.CARRIER_BLOB_CACHE;
  let cmd;
  let args;
  if (c.id === 'podman') {
    const root = path.join(home, '.local/share/containers/storage');
    const conf = path.join(home, 'storage.conf');
    fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runDir}"\n`);
    env.CONTAINERS_STORAGE_CONF = conf;
    [cmd, args] = ['podman', ['--root', root, '--runroot', runDir, '--storage-driver', 'overlay', 'pull', '-q', '--tls-verify=false', ref.name]];
  } else {
    delete env.CONTAINERS_STORAGE_CONF;
    if (c.env.CARRIER_BLOB_CACHE) env.CARRIER_BLOB_CACHE = shm;
    [cmd, args] = [process.execPath, [cli, '--runroot', runDir, 'pull', '--tls-verify=false', '-q', ...c.extra, ref.name]];
  }
  const r = await timedCommand(cmd, args, { env });
  if (r.code !== 0) throw new Error(`${c.label} exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  return { seconds: r.seconds, peakKiB: r.peakKiB, id: r.stdout.trim().split('\n').pop() };
}

/**
 * Pulls `variant` (one of the suite's, from its registry) with every contender in the default layout, round-robin,
 * `runs` timed rounds after a warm-up. Resolves the report's `defaultLayout` part.
 */
export async function runDefaultLayout(ctx, { variant, cli, runs, runBase }) {
  const { log, workDir } = ctx;
  const started = new Date();
  const base = path.join(workDir, 'default-layout');
  fs.rmSync(base, { recursive: true, force: true });
  let seq = 0;
  const items = CONTENDERS.filter((c) => c.id === 'podman' || cli).map((c) => ({
    id: c.id,
    contender: c.id,
    run: async () => {
      const n = seq++;
      const home = path.join(base, String(n));
      const runDir = path.join(runBase, `d${n}`);
      const shm = path.join('/dev/shm', `carrier-bench-${process.pid}-${n}`);
      for (const d of [home, runDir]) fs.mkdirSync(d, { recursive: true });
      try {
        const r = await timed(ctx, () => pullOnce(c, { cli, ref: variant.ref, home, runDir, shm }));
        if (r.id !== variant.configDigest.slice(7)) throw new Error(`image id ${r.id} != config digest ${variant.configDigest.slice(7)}`);
        return r;
      } finally {
        for (const d of [home, runDir, shm]) fs.rmSync(d, { recursive: true, force: true });
      }
    },
  }));
  log(`\npull ${variant.id}, default layout (store and blob cache under one HOME on the host file system, empty cache):`);
  const cells = await roundRobin(ctx, items, runs, {
    name: 'default-layout ',
    failPrefix: 'run failed: ',
    onWarm: (it, r) => log(`  ${it.id.padEnd(20)} ${r.seconds.toFixed(2).padStart(7)} s`),
  });
  fs.rmSync(base, { recursive: true, force: true });
  return {
    started: started.toISOString(),
    quietWait: ctx.opts.quietWait !== false,
    variant: variant.id,
    rows: CONTENDERS.filter((c) => cells.has(c.id)).map((c) => {
      const cell = cells.get(c.id);
      return { contender: c.id, label: c.label, command: command(c), ...timings(cell), peakRssKiB: cell.peakKiB, problems: cell.problems, disturbed: cell.disturbed };
    }),
  };
}

/** The section of RESULTS.md: the default layout beside the suite's isolated rows of the same image. */
export function defaultLayoutMarkdown(report, { mdTable, ok }) {
  const d = report.defaultLayout;
  if (!d) return [];
  const carrier = d.rows.find((r) => r.contender === 'carrier');
  const podman = d.rows.find((r) => r.contender === 'podman');
  const iso = (c) => d.isolated?.[c];
  const L = ['', `### Pull ${d.variant}, default layout`, ''];
  L.push(
    `Measured ${d.started.slice(0, 10)}${d.command ? ` by \`${d.command}\`` : ''}${d.quietWait ? '' : ' without waiting for a quiet machine (other agents shared the 2 CPUs: noisy; compare ratios, not seconds)'}, in the same run as the isolated rows quoted beside it. ` +
    'The same image pulled the way a user’s first pull runs: store and blob cache under one fresh HOME (`~/.local/share/carrier/{storage,cache/blobs}`) on the host file system (bench/work: the one every other process here writes to, with the previous run’s tree just deleted), an empty cache, no --root for carrier. “blob cache on tmpfs” moves only the cache (CARRIER_BLOB_CACHE under /dev/shm): the difference to the first row is what writing the cache beside the store costs.',
    '',
  );
  L.push(
    mdTable(
      ['contender', 'median s', 'min–max s', 'time ÷ carrier', 'isolated (fresh loop fs), same run: median s'],
      d.rows.map((r) => [
        r.label + (r.problems.length ? ' ⚠' : ''),
        ok(r) ? r.median.toFixed(2) : 'failed',
        ok(r) ? `${r.min.toFixed(2)}–${r.max.toFixed(2)}` : '',
        ok(r) && ok(carrier) ? `${(r.median / carrier.median).toFixed(2)}×` : '',
        ok(iso(r.contender)) ? iso(r.contender).median.toFixed(2) : '',
      ]),
    ),
  );
  const ic = iso('carrier');
  const ip = iso('podman');
  if (ok(carrier) && ok(podman) && ok(ic) && ok(ip)) {
    L.push('', `podman ÷ carrier: ${(podman.median / carrier.median).toFixed(2)}× in the default layout, ${(ip.median / ic.median).toFixed(2)}× isolated.`);
  }
  L.push('', `All timed runs (seconds): ${d.rows.map((r) => `${r.contender} ${r.runs.map((s) => s.toFixed(2)).join(', ') || 'none'}`).join('; ')}.`);
  for (const r of d.rows) for (const p of r.problems) L.push(`- \`default layout ${r.contender}\`: ${p}`);
  return L;
}

// The containers suite (`npm run bench -- --suite containers`): `carrier create` + `carrier mount` against
// `podman create` + `podman mount` (of a one-layer image and of a 130-layer one, past podman's ~127-layer limit),
// `carrier run --rm IMG true` against `podman run --rm IMG true`, and each short command on its own (images, inspect,
// ps, create, mount, umount, rm, version: short.js) with create + mount in-process, on the same one-layer
// busybox-static image (Debian `busybox-static`), round-robin, median of N; every CLI timed spawn to exit. Carrier
// runs as installed: package.json's bin (dist/cli/bin.cjs, the bundled CLI).
//
// Both stores live on one fresh loop-mounted ext4 (bench/lib/scratch.js) with short run roots under /tmp (podman refuses
// run roots longer than 50 characters); the image is committed to Carrier's store through the store API, saved with
// `carrier save` and loaded into podman's with `podman load`. podman 4.3 cannot run containers on some machines
// (here its default rlimits are above the hard limits and it lacks CAP_SYS_RESOURCE to raise them; runc refuses
// --cgroups disabled): the warm-up round tries podman run the usual way and then with the options that might work,
// keeps the first that does (the report names it and every failure before it), and when none does the row says why.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { run, timeCommand, sha256, median } from '../../lib/util.js';
import { timings, roundRobin } from '../../lib/roundrobin.js';
import { mountsBelow } from '../../lib/scratch.js';
import { tarImage, withStore } from '../../lib/store.js';
import { shortCommandScenarios } from './short.js';

/** How many times the suite's runs the short commands (one group) take. */
const SHORT_RUNS = 3;

export const CONTAINERS_CONFIG = { quick: { runs: 0 }, full: { runs: 5 } };
const IMG = 'localhost/bench-busybox:1';
const IMG_MANY = 'localhost/bench-busybox:130-layers';
const MANY_LAYERS = 130; // podman 4.3 mounts at most about 127 layers

// this process's hard limit on open files (podman's default for containers is higher, and raising it needs
// CAP_SYS_RESOURCE, which a container-in-a-VM may not have)
const hardNofile = () => /^Max open files\s+\S+\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '1024';

function podmanRunVariants() {
  const limits = ['--ulimit', `nofile=${hardNofile()}:${hardNofile()}`, '--ulimit', 'nproc=1024:1024'];
  return [
    { flags: [], note: 'podman’s defaults' },
    { flags: limits, note: `rlimits podman may set here (--ulimit nofile=${hardNofile()}:${hardNofile()} --ulimit nproc=1024:1024: its defaults are above this machine’s hard limits, and raising those needs CAP_SYS_RESOURCE)` },
    { flags: ['--cgroups', 'disabled'], note: '--cgroups disabled' },
    { flags: ['--cgroups', 'disabled', ...limits], note: '--cgroups disabled and those rlimits' },
  ];
}

const timedRun = (cmd, args, env) => timeCommand(cmd, args, { env: { ...process.env, ...env }, allowFail: true, stdout: 'pipe' });

const lastLine = (s) => s.trim().split('\n').filter(Boolean).pop() ?? '';

function check(what, r) {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${lastLine(r.stderr || r.stdout)}`);
  return r;
}

export async function runContainersSuite(ctx) {
  const { log } = ctx;
  const { started, runs } = ctx.begin('containers', CONTAINERS_CONFIG);
  if (!ctx.carrier.entry) throw new Error('carrier is not loadable: nothing to compare');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error('busybox not found: apt-get install -y busybox-static');
  // the installed command: package.json's bin, the bundled CLI
  const cli = path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs');
  const tmp = fs.mkdtempSync('/tmp/cbc-');
  try {
    return await ctx.scratch(2 * 1024 ** 3, async (mnt) => {
      // the images: busybox-static with sh and true in one layer; and the same with 129 one-file layers on top
      const rootfs = path.join(tmp, 'rootfs');
      fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
      fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
      fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
      for (const a of ['sh', 'true']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
      const tars = [path.join(tmp, 'layer0.tar')];
      await run('tar', ['-C', rootfs, '--owner=0', '--group=0', '-cf', tars[0], '.']);
      for (let i = 1; i < MANY_LAYERS; i++) {
        const d = path.join(tmp, `l${i}`);
        fs.mkdirSync(path.join(d, 'etc', 'layers'), { recursive: true });
        fs.writeFileSync(path.join(d, 'etc', 'layers', String(i)), `layer ${i}\n`);
        tars.push(path.join(tmp, `layer${i}.tar`));
        await run('tar', ['-C', d, '--owner=0', '--group=0', '--mtime=2026-01-01', '-cf', tars[i], '.']);
      }
      const layers = tars.map((tar) => ({ tar, diffID: sha256(fs.readFileSync(tar)), size: fs.statSync(tar).size }));
      const image = (n) => tarImage(layers.slice(0, n), { Cmd: ['/bin/true'], Env: ['PATH=/bin'] });
      const c = { root: path.join(mnt, 'carrier'), runroot: path.join(tmp, 'c') };
      const p = { root: path.join(mnt, 'podman'), runroot: path.join(tmp, 'p'), conf: path.join(tmp, 'storage.conf') };
      fs.writeFileSync(p.conf, `[storage]\ndriver = "overlay"\ngraphroot = "${p.root}"\nrunroot = "${p.runroot}"\n`);
      await withStore(ctx.carrier.entry, c, async (store) => {
        await store.commitImage({ ...image(1), names: [IMG] });
        await store.commitImage({ ...image(MANY_LAYERS), names: [IMG_MANY] });
      });
      const car = ['--root', c.root, '--runroot', c.runroot];
      const pod = ['--root', p.root, '--runroot', p.runroot, '--storage-driver', 'overlay'];
      const penv = { CONTAINERS_STORAGE_CONF: p.conf };
      for (const img of [IMG, IMG_MANY]) {
        const archive = path.join(tmp, 'image.tar');
        check('carrier save', await run(process.execPath, [cli, ...car, 'save', '-o', archive, img], { allowFail: true }));
        check('podman load', await run('podman', [...pod, 'load', '-q', '-i', archive], { env: { ...process.env, ...penv }, allowFail: true }));
        fs.rmSync(archive);
      }

      // create + mount of `img` with each CLI, timed as the sum of the two commands
      const clis = { carrier: [process.execPath, [cli, ...car], {}], podman: ['podman', pod, penv] };
      const createMount = (id, title, img, more) => ({
        id,
        title,
        items: Object.entries(clis).map(([who, [cmd, pre, env]]) => ({
          id: who, label: `${who} create + ${who} mount`, command: `${who} create IMG; ${who} mount ID${more}`,
          run: ({ timed }) => timed(async () => {
            const a = check(`${who} create`, await timedRun(cmd, [...pre, 'create', img], env));
            const b = check(`${who} mount`, await timedRun(cmd, [...pre, 'mount', a.stdout.trim()], env));
            return { seconds: a.seconds + b.seconds };
          }),
        })),
      });
      const podmanRun = { variant: undefined, attempts: [] };
      const scenarios = [
        createMount('create-mount', 'create + mount', IMG, ''),
        createMount('create-mount-130', `create + mount, ${MANY_LAYERS} layers`, IMG_MANY, ` (${MANY_LAYERS} layers)`),
        {
          id: 'run',
          title: 'run --rm IMG true',
          items: [
            {
              id: 'carrier', label: 'carrier run --rm IMG true', command: 'carrier run --rm IMG true',
              run: ({ timed }) => timed(async () => {
                const a = check('carrier run', await timedRun(process.execPath, [cli, ...car, 'run', '--rm', IMG, 'true']));
                return { seconds: a.seconds };
              }),
            },
            {
              id: 'podman', label: 'podman run --rm IMG true', command: 'podman run --rm --network none [runtime/cgroup flags] IMG true',
              run: async ({ round, timed }) => {
                const args = (v) => [...pod, 'run', '--rm', '--network', 'none', ...v.flags, IMG, 'true'];
                if (round === 0 && !podmanRun.variant) {
                  // find the first way podman can run here (not timed as a result: this is the warm-up round)
                  for (const v of podmanRunVariants()) {
                    const a = await timedRun('podman', args(v), penv);
                    if (a.code === 0) {
                      podmanRun.variant = v;
                      break;
                    }
                    podmanRun.attempts.push({ flags: v.flags.join(' ') || '(none)', note: v.note, error: lastLine(a.stderr || a.stdout) });
                  }
                  if (!podmanRun.variant) {
                    throw new Error(`podman run fails on this machine: ${podmanRun.attempts.map((x) => `${x.note}: ${x.error}`).join(' | ')}`);
                  }
                }
                if (!podmanRun.variant) throw new Error('podman run fails on this machine (see the warm-up round)');
                return timed(async () => {
                  const a = check('podman run', await timedRun('podman', args(podmanRun.variant), penv));
                  return { seconds: a.seconds };
                });
              },
            },
          ],
        },
      ];
      scenarios.push(...shortCommandScenarios({
        clis,
        img: IMG,
        where: c,
        api: await import(pathToFileURL(ctx.carrier.entry).href),
        check,
        tmp,
      }));
      // scenarios of one group (the short commands) share one round-robin: a round runs each of them once
      const groups = [];
      for (const s of scenarios) {
        const g = s.group && groups.find((x) => x.id === s.group);
        if (g) g.scenarios.push(s);
        else groups.push({ id: s.group ?? s.id, scenarios: [s] });
      }
      const rows = [];
      for (const g of groups) {
        const items = g.scenarios.flatMap((s) => s.items.map((it) => ({ ...it, id: `${s.id} ${it.id}`, contender: it.id, title: s.title })));
        // a short command takes ~0.1 s and swings by ±15 ms from run to run here: three times the runs for their medians
        const cells = await roundRobin(ctx, items, g.id === 'short' ? runs * SHORT_RUNS : runs, {
          name: '',
          onWarm: (it, r) => log(`  ${it.title.padEnd(18)} ${it.contender.padEnd(8)} ${r.seconds.toFixed(3)} s`),
        });
        for (const s of g.scenarios) for (const it of s.items) {
          const cell = cells.get(`${s.id} ${it.id}`);
          if (!cell) continue; // left out by --only
          const cpu = cell.results.map((r) => r.cpu).filter((x) => x !== undefined);
          const overNode = cell.results.map((r) => r.overNode).filter((x) => x !== undefined);
          rows.push({
            scenario: s.id,
            title: s.title,
            contender: it.id,
            label: it.label,
            command: s.id === 'run' && it.id === 'podman' && podmanRun.variant ? `podman run --rm --network none ${podmanRun.variant.flags.join(' ')} IMG true`.replace(/ +/g, ' ') : it.command,
            ...timings(cell),
            ...(cpu.length ? { cpuMedian: median(cpu) } : {}),
            ...(overNode.length ? { overNode: median(overNode), overNodeRuns: overNode } : {}),
            problems: cell.problems,
            disturbed: cell.disturbed,
          });
        }
      }
      // podman mount and carrier mount leave overlay mounts on the scratch file system: gone with it
      for (const m of mountsBelow(mnt)) if (m !== mnt) await run('umount', [m], { allowFail: true });
      return {
        ...ctx.reportHead('containers', started, { runs, tools: { podman: (await run('podman', ['--version'], { allowFail: true })).stdout.trim() } }),
        method:
          `busybox-static in one layer (and the same with ${MANY_LAYERS - 1} one-file layers on top for the ${MANY_LAYERS}-layer rows), committed to Carrier’s store, saved with \`carrier save\` and loaded into podman’s with \`podman load\`; Carrier’s and podman’s overlay stores on one fresh loop-mounted ext4, run roots under /tmp. Each CLI is timed from spawn to exit (Node start-up included for Carrier: \`node -e 0\` is timed beside them), Carrier as installed (package.json's bin, the bundled CLI); create + mount is the sum of the two commands. The short-command rows share one round-robin, so a round runs each once, in a harness's order (images, inspect, ps, create, mount, umount, rm of that container, version); the group runs ${SHORT_RUNS} times the suite's number of runs (a short command swings by ±15 ms from run to run on this machine); each carrier command runs right after a \`node -e 0\` of its own, and its row's “over node -e 0” is the median of the per-run differences (the issue's target: + 25 ms at most). They are also timed in CPU-seconds (user + system of the command and its children, GNU time: on a machine other work shares, CPU time swings much less than wall time); the in-process row times createContainer + mountContainer in the benchmark process on a store opened before. Containers and mounts stay until the end of the suite.`,
        podmanRun: { used: podmanRun.variant?.note, failedAttempts: podmanRun.attempts },
        rows,
        disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
      };
    });
  } finally {
    for (const m of mountsBelow(tmp)) await run('umount', ['-l', m], { allowFail: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// The commit suite (`npm run bench -- --suite commit`): `carrier commit` against `podman commit` of a container
// whose read-write layer holds the distro fixture's files (bench/lib/fixture.js: ~200 MiB of real /usr files in the
// full configuration) and one deletion from its image.
//
// A run: a fresh scratch file system; a Carrier store and a podman store on it with the same one-layer busybox-static
// image (committed to Carrier's store through the store API, saved with `carrier save` and loaded with `podman
// load`); a container of it created and mounted by each CLI, the fixture tar extracted into the mount and /bin/true
// removed (so the layer has a whiteout), the container unmounted. Then the commit is timed from spawn to exit.
// Contenders: carrier commit (its default: the layer uncompressed, as podman's), carrier commit --compression-format
// gzip and zstd, podman commit (which writes the layer uncompressed: podman 4.3 commits through buildah without
// compression). The warm-up round checks
// that the new image is there with two layers, the new one as big as the changes.
import fs from 'node:fs';
import path from 'node:path';
import { buildFixture } from '../../lib/fixture.js';
import { timedCommand, TIME_BIN } from '../../lib/pullers.js';
import { run, sha256, median, MiB } from '../../lib/util.js';

const medianOf = (xs) => (xs.every((x) => Number.isFinite(x)) && xs.length ? median(xs) : undefined);
import { timings, roundRobin, timed } from '../../lib/roundrobin.js';
import { mountsBelow } from '../../lib/scratch.js';
import { tarImage, withStore } from '../../lib/store.js';

export const COMMIT_CONFIG = {
  quick: { runs: 0, changes: { targetBytes: 50 * MiB, targetEntries: 1750 } },
  full: { runs: 5, changes: { targetBytes: 200 * MiB, targetEntries: 7000 } },
};
const IMG = 'localhost/bench-busybox:1';
const OUT = 'localhost/bench-committed:1';

function fail(what, r) {
  const text = (r.stderr || r.stdout).trim().split('\n').filter((l) => !/Command exited with non-zero status/.test(l));
  return new Error(`${what} exited ${r.code}: ${text.slice(-3).join(' | ').slice(0, 600)}`);
}

export async function runCommitSuite(ctx) {
  const { log, workDir } = ctx;
  const { started, cfg, runs } = ctx.begin('commit', COMMIT_CONFIG);
  if (!ctx.carrier.entry) throw new Error('carrier is not loadable: nothing to compare');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error('busybox not found: apt-get install -y busybox-static');
  const cli = path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs');
  const tools = {
    podman: (await run('podman', ['--version'], { allowFail: true })).stdout.trim(),
    time: TIME_BIN ? `${TIME_BIN} -f %M` : 'not installed',
  };
  const changes = await buildFixture(workDir, { ...cfg.changes, log });
  log(`changes: the distro fixture, ${changes.entries} entries, tar ${(changes.meta.tar.size / MiB).toFixed(1)} MiB, and /bin/true deleted`);

  const tmp = fs.mkdtempSync('/tmp/cbm-');
  try {
    // the base image: busybox-static with sh and true, one layer; as an archive podman loads
    const rootfs = path.join(tmp, 'rootfs');
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
    fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
    for (const a of ['sh', 'true']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
    const tar = path.join(tmp, 'layer0.tar');
    await run('tar', ['-C', rootfs, '--owner=0', '--group=0', '--mtime=2026-01-01', '-cf', tar, '.']);
    const image = tarImage([{ tar, diffID: sha256(fs.readFileSync(tar)), size: fs.statSync(tar).size }], { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] });
    const archive = path.join(tmp, 'image.tar');

    const cenv = { ...process.env };
    delete cenv.CONTAINERS_STORAGE_CONF;
    const sides = (mnt, runDir) => {
      const c = { root: path.join(mnt, 'carrier'), runroot: path.join(runDir, 'c') };
      const p = { root: path.join(mnt, 'podman'), runroot: path.join(runDir, 'p'), conf: path.join(runDir, 'storage.conf') };
      fs.mkdirSync(runDir, { recursive: true });
      fs.writeFileSync(p.conf, `[storage]\ndriver = "overlay"\ngraphroot = "${p.root}"\nrunroot = "${p.runroot}"\n`);
      return {
        carrier: { cmd: process.execPath, pre: [cli, '--root', c.root, '--runroot', c.runroot], env: cenv, where: c },
        podman: { cmd: 'podman', pre: ['--root', p.root, '--runroot', p.runroot, '--storage-driver', 'overlay'], env: { ...process.env, CONTAINERS_STORAGE_CONF: p.conf }, where: p },
      };
    };
    const must = async (what, s, args) => {
      const r = await run(s.cmd, [...s.pre, ...args], { env: s.env, allowFail: true });
      if (r.code !== 0) throw fail(what, r);
      return r.stdout.trim().split('\n').pop();
    };
    // a store with the base image and a container of it holding the changes: returns the container's id
    const prepare = async (who, s) => {
      if (who === 'carrier') await withStore(ctx.carrier.entry, s.where, (store) => store.commitImage({ ...image, names: [IMG] }));
      else {
        if (!fs.existsSync(archive)) {
          await withStore(ctx.carrier.entry, { root: path.join(tmp, 'save-root'), runroot: path.join(tmp, 'save-run') }, (store) => store.commitImage({ ...image, names: [IMG] }));
          await run(process.execPath, [cli, '--root', path.join(tmp, 'save-root'), '--runroot', path.join(tmp, 'save-run'), 'save', '-o', archive, IMG], { env: cenv });
        }
        await must('podman load', s, ['load', '-q', '-i', archive]);
      }
      const id = await must(`${who} create`, s, ['create', IMG]);
      const merged = await must(`${who} mount`, s, ['mount', id]);
      await run('tar', ['--numeric-owner', '-xpf', changes.tar, '-C', merged]);
      fs.rmSync(path.join(merged, 'bin', 'true'));
      await must(`${who} umount`, s, ['umount', id]);
      return id;
    };

    const contenders = [
      { id: 'carrier', side: 'carrier', label: 'carrier commit (uncompressed, the default)', command: 'carrier --root R --runroot RR commit -q CTR IMAGE', flags: [] },
      { id: 'carrier-gzip', side: 'carrier', label: 'carrier commit --compression-format gzip', command: 'carrier --root R --runroot RR commit -q --compression-format gzip CTR IMAGE', flags: ['--compression-format', 'gzip'] },
      { id: 'carrier-zstd', side: 'carrier', label: 'carrier commit --compression-format zstd', command: 'carrier --root R --runroot RR commit -q --compression-format zstd CTR IMAGE', flags: ['--compression-format', 'zstd'] },
      { id: 'podman', side: 'podman', label: 'podman commit (layer uncompressed)', command: 'podman --root R --runroot RR --storage-driver overlay commit -q CTR IMAGE', flags: [] },
    ];
    const checks = new Map();
    let seq = 0;
    const items = contenders.map((k) => ({
      id: k.id,
      run: ({ round, attempt, cell }) =>
        ctx.scratch(2 * 1024 ** 3 + 4 * changes.meta.tar.size, async (mnt) => {
          const runDir = path.join(tmp, `r${seq++}`);
          try {
            const s = sides(mnt, runDir)[k.side];
            const ctr = await prepare(k.side, s);
            const r = await timed(ctx, async () => {
              const t = await timedCommand(s.cmd, [...s.pre, 'commit', '-q', ...k.flags, ctr, OUT], { env: s.env, sample: round === 0 });
              if (t.code !== 0) throw fail(`${k.side} commit`, t);
              return { seconds: t.seconds, peakKiB: t.peakKiB, cpuSeconds: t.cpuSeconds, treePeakKiB: t.treePeakKiB, id: t.stdout.trim().split('\n').pop() };
            });
            if (round === 0 && !ctx.willRedo(r, attempt)) {
              cell.treePeakKiB = r.treePeakKiB;
              const check = await checkCommitted(k.side, s, r.id, must, ctx);
              cell.problems.push(...check.problems);
              checks.set(k.id, check);
            }
            return r;
          } finally {
            for (const m of mountsBelow(mnt)) if (m !== mnt) await run('umount', [m], { allowFail: true });
            fs.rmSync(runDir, { recursive: true, force: true });
          }
        }),
    }));
    log(`\ncommit warm-up round (checks the committed image; samples whole-tree RSS):`);
    const cells = await roundRobin(ctx, items, runs, {
      failPrefix: 'run failed: ',
      onWarm: (it, r) => {
        const chk = checks.get(it.id);
        log(`  ${it.id.padEnd(14)} ${r.seconds.toFixed(2).padStart(7)} s${r.peakKiB ? `, peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB` : ''}${r.treePeakKiB ? ` (tree ${(r.treePeakKiB / 1024).toFixed(0)} MiB sampled)` : ''}${chk?.layer ? `; new layer ${chk.layer.mediaType.replace(/^.*\./, '')} ${(chk.layer.size / MiB).toFixed(1)} MiB` : ''}`);
      },
      onRound: (round, seconds) => {
        if (round > 0) log(`  commit round ${round}/${runs} done in ${seconds.toFixed(1)} s`);
      },
    });
    const rows = contenders.filter((k) => cells.has(k.id)).map((k) => {
      const cell = cells.get(k.id);
      return {
        contender: k.id, label: k.label, command: k.command, ...timings(cell),
        cpuSeconds: medianOf(cell.results.map((x) => x.cpuSeconds)),
        peakRssKiB: cell.peakKiB, treePeakKiB: cell.treePeakKiB, check: checks.get(k.id),
        problems: cell.problems, notes: cell.notes, disturbed: cell.disturbed,
      };
    });
    return {
      ...ctx.reportHead('commit', started, { runs, config: cfg, tools }),
      changes: { entries: changes.entries, tarSize: changes.meta.tar.size, counts: changes.counts },
      rows,
      disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
    };
  } finally {
    for (const m of mountsBelow(tmp)) await run('umount', ['-l', m], { allowFail: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The committed image: named OUT, two layers, the new one's blob descriptor. */
async function checkCommitted(side, s, id, must) {
  const problems = [];
  if (!/^[0-9a-f]{64}$/.test(id ?? '')) return { problems: [`commit printed ${JSON.stringify(id)}, not an image id`] };
  let manifest;
  try {
    if (side === 'podman') {
      const out = await must('podman inspect', s, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', id]);
      const layers = JSON.parse(out);
      if (layers.length !== 2) problems.push(`the committed image has ${layers.length} layers, not 2`);
      const m = JSON.parse(fs.readFileSync(path.join(s.where.root, 'overlay-images', id, 'manifest'), 'utf8'));
      manifest = m;
    } else {
      const m = JSON.parse(fs.readFileSync(path.join(s.where.root, 'overlay-images', id, 'manifest'), 'utf8'));
      manifest = m;
    }
  } catch (e) {
    problems.push(`cannot read the committed image: ${e.message.split('\n')[0]}`);
  }
  const layer = manifest?.layers?.[manifest.layers.length - 1];
  if (manifest && manifest.layers.length !== 2) problems.push(`the committed manifest lists ${manifest.layers.length} layers, not 2`);
  return { problems, layer: layer ? { mediaType: layer.mediaType, size: layer.size, digest: layer.digest } : undefined };
}

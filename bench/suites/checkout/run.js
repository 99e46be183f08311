// The checkout suite (`npm run bench -- --suite checkout`): `carrier checkout` (a flattened copy of an image with
// reflinks) against `cp -a --reflink=never` and `cp -a --reflink=always` of the same layer tree, on one fresh
// loop-mounted XFS (reflinks on by default), round-robin, median of N. Also records the space each copy took (growth
// of the file system's used blocks), which is the point of reflinks.
//
// The image is one layer of whole files from /usr (the first files of a sorted walk, up to the size), committed to a
// Carrier store on that XFS through the store API; every copy goes to a new directory on the same file system and
// the copies stay until the end (XFS has no equivalent of ext4's slow allocation after deletes).
import fs from 'node:fs';
import path from 'node:path';
import { run, timeCommand, sha256File, MiB } from '../../lib/util.js';
import { syncFs } from '../../lib/machine.js';
import { treeManifest } from '../../lib/tree.js';
import { timings, roundRobin } from '../../lib/roundrobin.js';
import { SCRATCH_MKFS_XFS } from '../../lib/scratch.js';
import { tarImage, withStore } from '../../lib/store.js';

export const CHECKOUT_CONFIG = { quick: { runs: 0, sizeMiB: 64 }, full: { runs: 5, sizeMiB: 300 } };

/** Whole files from /usr (sorted walk) until `size` bytes, as a tar in bench/work/fixtures (cached). */
async function buildTar(workDir, size) {
  const dir = path.join(workDir, 'fixtures', `checkout-${Math.round(size / MiB)}M`);
  const tar = path.join(dir, 'layer.tar');
  const metaFile = path.join(dir, 'meta.json');
  try {
    return JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  } catch {}
  fs.mkdirSync(dir, { recursive: true });
  const list = [];
  let total = 0;
  const walk = (d) => {
    if (total >= size) return;
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (total >= size) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          fs.accessSync(p, fs.constants.R_OK);
        } catch {
          continue;
        }
        total += fs.statSync(p).size;
        list.push(p.slice(1));
      }
    }
  };
  walk('/usr');
  const listFile = path.join(dir, 'list.nul');
  fs.writeFileSync(listFile, list.map((p) => p + '\0').join(''));
  await run('tar', ['-C', '/', '--no-recursion', '--null', '-cf', `${tar}.tmp`, '-T', listFile]);
  fs.renameSync(`${tar}.tmp`, tar);
  const meta = { tar, files: list.length, bytes: total, diffID: await sha256File(tar) };
  fs.writeFileSync(metaFile, JSON.stringify(meta));
  return meta;
}

function usedBytes(dir) {
  const s = fs.statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

export async function runCheckoutSuite(ctx) {
  const { log } = ctx;
  const { started, cfg, runs } = ctx.begin('checkout', CHECKOUT_CONFIG);
  if (process.geteuid() !== 0) throw new Error('the checkout suite mounts a loop XFS: run it as root');
  if (!ctx.carrier.entry) throw new Error('carrier is not loadable: nothing to compare');
  const fixture = await buildTar(ctx.workDir, cfg.sizeMiB * MiB);
  log(`layer: ${fixture.files} files, ${(fixture.bytes / MiB).toFixed(1)} MiB from /usr`);
  const cli = path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs');
  const copies = (runs + 1) * 3;
  const fsBytes = 1024 ** 3 + fixture.bytes * (copies + 3);
  const cells = await ctx.scratch(
    fsBytes,
    async (mnt) => {
      const root = path.join(mnt, 'store');
      const runroot = fs.mkdtempSync('/tmp/cbk-');
      try {
        const layer = { tar: fixture.tar, diffID: fixture.diffID, size: fs.statSync(fixture.tar).size };
        const layerDir = await withStore(ctx.carrier.entry, { root, runroot }, async (store) => {
          await store.commitImage({ ...tarImage([layer]), names: ['localhost/bench:checkout'] });
          return store.layerDiffPath(fixture.diffID.slice(7));
        });
        syncFs();
        let n = 0;
        const copy = (cmd, args, stdout = 'pipe') => async ({ timed }) => {
          const dst = path.join(mnt, `out-${n++}`);
          const before = usedBytes(mnt);
          const r = await timed(async () => {
            const res = await timeCommand(cmd, args(dst), { allowFail: true, stdout });
            if (res.code !== 0) throw new Error(`${cmd} exited ${res.code}: ${res.stderr.trim().split('\n').pop()}`);
            return { seconds: res.seconds };
          });
          syncFs();
          r.spaceBytes = usedBytes(mnt) - before;
          r.dst = dst;
          return r;
        };
        const items = [
          {
            id: 'carrier', label: '`carrier checkout`', command: 'carrier --root R --runroot RR checkout IMG DIR',
            run: copy(process.execPath, (dst) => [cli, '--root', root, '--runroot', runroot, 'checkout', 'localhost/bench:checkout', dst], 'ignore'),
          },
          // coreutils ≥ 9 reflinks by default where it can: --reflink=never is the plain copy
          { id: 'cp', label: '`cp -a --reflink=never`', command: 'cp -a --reflink=never LAYERDIR DIR', run: copy('cp', (dst) => ['-a', '--reflink=never', layerDir, dst]) },
          { id: 'cp-reflink', label: '`cp -a --reflink=always`', command: 'cp -a --reflink=always LAYERDIR DIR', run: copy('cp', (dst) => ['-a', '--reflink=always', layerDir, dst]) },
        ];
        const warmTrees = new Map();
        const result = await roundRobin(ctx, items, runs, {
          name: 'checkout ',
          onWarm: (it, r) => {
            warmTrees.set(it.id, treeManifest(r.dst));
            log(`  ${it.id.padEnd(12)} ${r.seconds.toFixed(3)} s, ${(r.spaceBytes / MiB).toFixed(1)} MiB of space`);
          },
        });
        // every copy is the same tree (type, mode, owner, size, mtime, link target of every entry)
        const want = warmTrees.get('cp');
        for (const [id, m] of warmTrees) {
          if (want && m.digest !== want.digest && result.has(id)) result.get(id).problems.push(`the copy differs from cp -a's (${m.lines.length} entries vs ${want.lines.length})`);
        }
        return items.filter((it) => result.has(it.id)).map((it) => ({ it, cell: result.get(it.id) }));
      } finally {
        fs.rmSync(runroot, { recursive: true, force: true });
      }
    },
    { fsType: 'xfs' },
  );
  const rows = cells.map(({ it, cell }) => {
    const spaces = cell.results.map((r) => r.spaceBytes).sort((a, b) => a - b);
    return {
      contender: it.id,
      label: it.label,
      command: it.command,
      ...timings(cell),
      spaceMiB: spaces.length ? spaces[spaces.length >> 1] / MiB : undefined,
      problems: cell.problems,
      disturbed: cell.disturbed,
    };
  });
  return {
    ...ctx.reportHead('checkout', started, { runs, config: cfg }),
    method:
      `One fresh loop-mounted XFS (\`${SCRATCH_MKFS_XFS.join(' ')}\`, \`losetup --direct-io=on\`) holds the Carrier store and every copy; ` +
      'copies go to new directories and stay until the end of the suite. Each copy is timed spawn to exit (Node start-up and opening the store included for Carrier); space = growth of the file system’s used blocks per copy, after sync. The warm-up round checks every copy’s tree equals `cp -a`’s.',
    fixture: { files: fixture.files, bytes: fixture.bytes },
    rows,
    disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
  };
}

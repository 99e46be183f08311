// Checkout benchmark (issue 6): `carrier checkout` against `cp -a` and `cp -a --reflink=always` of the same image
// tree, on one loop-mounted XFS (reflink on by default), in one run, round-robin, median of N. Also reports the space
// each copy took (statfs before/after), which is the point of reflinks.
//
//   npm run build && node bench/checkout.js [--runs N] [--size-mib M] [--no-quiet-wait]
//
// Needs root (losetup/mount), mkfs.xfs (xfsprogs), GNU cp. The source tree is taken from /usr (real files).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { run, timeCommand, waitForQuiet, syncFs, median, machineInfo, fmtSeconds, MiB } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const argv = process.argv.slice(2);
const flag = (n, d) => {
  const i = argv.indexOf(n);
  return i === -1 ? d : argv[i + 1];
};
const RUNS = Number(flag('--runs', '5'));
const SIZE = Number(flag('--size-mib', '300')) * MiB;
const QUIET = !argv.includes('--no-quiet-wait');
const CLI = path.join(repo, 'dist/cli/main.js');

const work = path.join(here, 'work', 'checkout');
const img = path.join(work, 'xfs.img');
const mnt = path.join(work, 'xfs');

function statfsUsed(dir) {
  const s = fs.statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

/** Files from /usr until `size` bytes, as a tar (the image's single layer). */
function buildTar(out) {
  const list = [];
  let total = 0;
  const walk = (dir) => {
    if (total >= SIZE) return;
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (total >= SIZE) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.statSync(p);
        total += st.size;
        list.push(p.slice(1));
      }
    }
  };
  walk('/usr');
  const listFile = `${out}.list`;
  fs.writeFileSync(listFile, list.join('\n') + '\n');
  execFileSync('tar', ['-C', '/', '--no-recursion', '-cf', out, '-T', listFile]);
  return { files: list.length, bytes: total };
}

async function main() {
  if (process.geteuid() !== 0) throw new Error('the checkout benchmark mounts a loop XFS: run it as root');
  fs.mkdirSync(work, { recursive: true });
  try {
    execFileSync('umount', [mnt], { stdio: 'ignore' });
  } catch {}
  fs.rmSync(img, { force: true });
  execFileSync('truncate', ['-s', `${Math.ceil((SIZE * 6) / MiB) + 512}M`, img]);
  execFileSync('mkfs.xfs', ['-q', img]);
  fs.mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-o', 'loop', img, mnt]);
  const results = { carrier: [], cp: [], cpReflink: [] };
  const space = { carrier: [], cp: [], cpReflink: [] };
  let fixture;
  try {
    const tar = path.join(work, 'layer.tar');
    fixture = buildTar(tar);
    const diffID = 'sha256:' + createHash('sha256').update(fs.readFileSync(tar)).digest('hex');
    const root = path.join(mnt, 'store');
    const runroot = path.join(work, 'run');
    const { Store } = await import(path.join(repo, 'dist/store/store.js'));
    const store = await Store.open({ root, runroot });
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] } }));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: 'x' } }));
    const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
    await store.commitImage({ config, configDigest: sha(config), manifest, manifestDigest: sha(manifest), layers: [{ diffID, open: async () => tar }], names: ['localhost/bench:checkout'] });
    const layerDir = store.layerDiffPath(diffID.slice(7));
    await store.close();
    const contenders = [
      ['carrier', (dst) => timeCommand(process.execPath, [CLI, '--root', root, '--runroot', runroot, 'checkout', 'localhost/bench:checkout', dst], { stdoutFile: '/dev/null' })],
      // coreutils ≥ 9 reflinks by default where it can: --reflink=never is the plain copy
      ['cp', (dst) => timeCommand('cp', ['-a', '--reflink=never', layerDir, dst])],
      ['cpReflink', (dst) => timeCommand('cp', ['-a', '--reflink=always', layerDir, dst])],
    ];
    let n = 0;
    for (let round = -1; round < RUNS; round++) {
      for (const [name, fn] of contenders) {
        const dst = path.join(mnt, `out-${n++}`);
        syncFs();
        if (QUIET) await waitForQuiet({ limitSeconds: 120 });
        const before = statfsUsed(mnt);
        const { seconds } = await fn(dst);
        syncFs();
        const grew = statfsUsed(mnt) - before;
        if (round >= 0) {
          results[name].push(seconds);
          space[name].push(grew);
        }
      }
    }
  } finally {
    try {
      execFileSync('umount', [mnt]);
    } catch {}
    fs.rmSync(img, { force: true });
  }
  const m = (k) => median(results[k]);
  const sp = (k) => median(space[k]) / MiB;
  const rows = [
    ['`carrier checkout`', m('carrier'), sp('carrier')],
    ['`cp -a --reflink=never`', m('cp'), sp('cp')],
    ['`cp -a --reflink=always`', m('cpReflink'), sp('cpReflink')],
  ];
  const info = machineInfo(work);
  let md = `## Checkout (issue 6): \`carrier checkout\` vs \`cp\` on one loop-mounted XFS\n\n`;
  md += `Command: \`npm run build && node bench/checkout.js --runs ${RUNS} --size-mib ${SIZE / MiB}\`. ${fixture.files} files, ${(fixture.bytes / MiB).toFixed(1)} MiB from /usr in one layer;`;
  md += ` median of ${RUNS} round-robin runs after one warm-up; space = growth of the filesystem's used blocks per copy.\n`;
  md += `Machine: ${info.cpu ?? ''} ${info.kernel ?? ''}.\n\n`;
  md += `| contender | median | min–max | × carrier | space used |\n| --- | ---: | ---: | ---: | ---: |\n`;
  for (const [label, t, s] of rows) {
    const k = label.includes('always') ? 'cpReflink' : label.includes('cp') ? 'cp' : 'carrier';
    md += `| ${label} | ${fmtSeconds(t)} s | ${fmtSeconds(Math.min(...results[k]))}–${fmtSeconds(Math.max(...results[k]))} s | ${(t / m('carrier')).toFixed(2)}× | ${s.toFixed(1)} MiB |\n`;
  }
  process.stdout.write(md + '\n');
  fs.writeFileSync(path.join(here, 'work', 'checkout-results.md'), md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

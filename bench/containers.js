// Container benchmark (issue 5): `carrier create` + `carrier mount` against `podman create` + `podman mount`, and
// `carrier run --rm IMG true` against `podman run --rm IMG true`, on the same image, same machine, one run,
// round-robin, median of N. The image is busybox-static (Debian `busybox-static`) in one layer.
//
//   npm run build && node bench/containers.js [--runs N] [--no-quiet-wait]
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { run, waitForQuiet, median, machineInfo, fmtSeconds } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const argv = process.argv.slice(2);
const RUNS = Number(argv.includes('--runs') ? argv[argv.indexOf('--runs') + 1] : '5');
const QUIET = !argv.includes('--no-quiet-wait');
const CLI = path.join(repo, 'dist/cli/main.js');
const work = path.join(here, 'work', 'ctr');
const IMG = 'localhost/bench-busybox:1';

async function timed(cmd, args, env) {
  const t0 = process.hrtime.bigint();
  const r = await run(cmd, args, { env: { ...process.env, ...env }, allowFail: true });
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, ...r };
}

async function main() {
  if (!fs.existsSync('/bin/busybox')) throw new Error('install Debian busybox-static');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(path.join(work, 'rootfs/bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(work, 'rootfs/bin/busybox'));
  fs.chmodSync(path.join(work, 'rootfs/bin/busybox'), 0o755);
  for (const a of ['sh', 'true']) fs.symlinkSync('busybox', path.join(work, 'rootfs/bin', a));
  const tar = path.join(work, 'layer.tar');
  execFileSync('tar', ['-C', path.join(work, 'rootfs'), '--owner=0', '--group=0', '-cf', tar, '.']);
  const diffID = 'sha256:' + createHash('sha256').update(fs.readFileSync(tar)).digest('hex');
  const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [diffID] } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffID, size: fs.statSync(tar).size }] }));
  // short paths: podman refuses run roots longer than 50 characters
  const c = { root: '/tmp/cb-c/root', runroot: '/tmp/cb-c/run' };
  const p = { root: '/tmp/cb-p/root', runroot: '/tmp/cb-p/run', conf: '/tmp/cb-p/storage.conf' };
  for (const d of ['/tmp/cb-c', '/tmp/cb-p']) fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync('/tmp/cb-p', { recursive: true });
  fs.writeFileSync(p.conf, `[storage]\ndriver = "overlay"\ngraphroot = "${p.root}"\nrunroot = "${p.runroot}"\n`);
  const { Store } = await import(path.join(repo, 'dist/store/store.js'));
  const store = await Store.open(c);
  await store.commitImage({ config, configDigest: sha(config), manifest, manifestDigest: sha(manifest), layers: [{ diffID, open: async () => tar }], names: [IMG] });
  await store.close();
  const archive = path.join(work, 'image.tar');
  execFileSync(process.execPath, [CLI, '--root', c.root, '--runroot', c.runroot, 'save', '-o', archive, IMG]);
  const penv = { CONTAINERS_STORAGE_CONF: p.conf };
  const pod = ['--root', p.root, '--runroot', p.runroot, '--storage-driver', 'overlay'];
  execFileSync('podman', [...pod, 'load', '-q', '-i', archive], { env: { ...process.env, ...penv } });
  const car = ['--root', c.root, '--runroot', c.runroot];
  const scenarios = {
    'create + mount': {
      carrier: async () => {
        const a = await timed(process.execPath, [CLI, ...car, 'create', IMG]);
        const id = a.stdout.trim();
        const b = await timed(process.execPath, [CLI, ...car, 'mount', id]);
        return { seconds: a.seconds + b.seconds, ok: a.code === 0 && b.code === 0, err: a.stderr + b.stderr };
      },
      podman: async () => {
        const a = await timed('podman', [...pod, 'create', IMG], penv);
        const id = a.stdout.trim();
        const b = await timed('podman', [...pod, 'mount', id], penv);
        return { seconds: a.seconds + b.seconds, ok: a.code === 0 && b.code === 0, err: a.stderr + b.stderr };
      },
    },
    'run --rm IMG true': {
      carrier: async () => {
        const a = await timed(process.execPath, [CLI, ...car, 'run', '--rm', IMG, 'true']);
        return { seconds: a.seconds, ok: a.code === 0, err: a.stderr };
      },
      podman: async () => {
        const a = await timed('podman', [...pod, 'run', '--rm', '--network', 'none', '--cgroups', 'disabled', '--runtime', 'runc', IMG, 'true'], penv);
        return { seconds: a.seconds, ok: a.code === 0, err: a.stderr };
      },
    },
  };
  const out = {};
  for (const [name, s] of Object.entries(scenarios)) {
    out[name] = { carrier: [], podman: [], errors: {} };
    for (let round = -1; round < RUNS; round++) {
      for (const who of ['carrier', 'podman']) {
        if (QUIET) await waitForQuiet({ limitSeconds: 60 });
        const r = await s[who]();
        if (!r.ok) out[name].errors[who] = r.err.trim().split('\n').slice(-1)[0];
        else if (round >= 0) out[name][who].push(r.seconds);
      }
    }
  }
  // clean up the mounts and containers
  for (const d of ['/tmp/cb-c', '/tmp/cb-p']) {
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(d + '/')).sort().reverse();
    for (const m of mounts) execFileSync('umount', [m]);
    fs.rmSync(d, { recursive: true, force: true });
  }
  const info = machineInfo(here);
  let md = `## Containers (issue 5): create + mount, and run --rm, against podman\n\n`;
  md += `Command: \`npm run build && node bench/containers.js --runs ${RUNS}\`. busybox-static in one layer, overlay stores on ${info.fsType}; `;
  md += `each CLI timed spawn to exit (Node start included for Carrier); median of ${RUNS} alternating runs after one warm-up. ${info.kernel}, podman ${execFileSync('podman', ['--version']).toString().trim().split(' ').pop()}.\n\n`;
  md += `| scenario | carrier | podman | podman ÷ carrier |\n| --- | ---: | ---: | ---: |\n`;
  for (const [name, r] of Object.entries(out)) {
    const cm = r.carrier.length ? median(r.carrier) : undefined;
    const pm = r.podman.length ? median(r.podman) : undefined;
    const cell = (v, who) => (v !== undefined ? `${fmtSeconds(v)} s` : `failed: ${r.errors[who] ?? '?'}`);
    md += `| ${name} | ${cell(cm, 'carrier')} | ${cell(pm, 'podman')} | ${cm !== undefined && pm !== undefined ? (pm / cm).toFixed(2) + '×' : '—'} |\n`;
  }
  process.stdout.write(md + '\n');
  fs.writeFileSync(path.join(here, 'work', 'containers-results.md'), md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

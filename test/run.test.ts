// `carrier run` and the container commands for real: runc runs a busybox-based image from a Carrier store, as root
// and as the real unprivileged user `carrier-rootless` (setpriv; Carrier enters its user namespace itself), and
// podman shares the store.
//
// Debian packages: runc, busybox-static, podman, skopeo, util-linux (unshare, setpriv), passwd (useradd).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, execFileSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store/store.js';
import { buildRunnableImage, OS_RELEASE, requireBusybox } from './support/runnable.js';
import { commitOf, readJson } from './support/store.js';
import { Podman, removeWorkDir, requireTools, toDockerArchive, type TestImage } from './support/images.js';

const CLI = path.resolve(__dirname, '../dist/cli/main.js');
const IMG = 'localhost/runnable:1';
const USER = 'carrier-rootless';

let work: string;
let root: string;
let runroot: string;
let image: TestImage;
let imageId: string;

function carrier(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, '--root', root, '--runroot', runroot, ...args], {
    encoding: 'utf8',
    input: opts.input ?? '',
    env: { ...process.env, ...(opts.env ?? {}) },
    timeout: 60_000,
  });
}

function run(...args: string[]): SpawnSyncReturns<string> {
  return carrier(['run', '--rm', ...args]);
}

interface ContainerJson {
  Id: string;
  Names: string[];
  State: string;
  Status: string;
  ExitCode: number;
  Image: string;
}

beforeAll(async () => {
  expect(process.geteuid?.(), 'these tests run containers as root and as a created user').toBe(0);
  requireBusybox();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npx tsc -p tsconfig.json' first`);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-run-'));
  fs.chmodSync(work, 0o755);
  root = path.join(work, 'root');
  runroot = path.join(work, 'run');
  image = buildRunnableImage(path.join(work, 'oci'));
  imageId = image.configDigest.slice(7);
  const store = await Store.open({ root, runroot });
  try {
    await store.commitImage(commitOf(image, [IMG]));
  } finally {
    await store.close();
  }
}, 120_000);

afterAll(() => {
  removeWorkDir(work);
});

describe('carrier run (root)', { timeout: 120_000 }, () => {
  it('runs the image default command: cat /etc/os-release', () => {
    const r = carrier(['run', '--rm', IMG]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(OS_RELEASE);
    // --rm: nothing left, and nothing mounted
    expect(readJson<unknown[]>(path.join(root, 'overlay-containers/containers.json'))).toEqual([]);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
  });

  it('returns the container exit code, 126 for a non-executable, 127 for a missing command, 125 for Carrier errors', () => {
    expect(run(IMG, 'sh', '-c', 'exit 7').status).toBe(7);
    expect(run(IMG, 'true').status).toBe(0);
    expect(run(IMG, 'false').status).toBe(1);
    const notExec = run(IMG, '/bin/notexec');
    expect(notExec.status).toBe(126);
    expect(notExec.stderr).toMatch(/^Error: runc: .*permission denied/);
    const dir = run(IMG, '/tmp');
    expect(dir.status).toBe(126);
    const missing = run(IMG, 'nosuchcommand');
    expect(missing.status).toBe(127);
    expect(missing.stderr).toContain('executable file not found in $PATH');
    expect(missing.stderr.split('\n').filter(Boolean)).toHaveLength(1); // runc's own copy of the message is held back
    expect(run(IMG, '/no/such/file').status).toBe(127);
    const noImage = run('--pull=never', 'localhost/nosuch:1'); // (missing, the default, would try to pull it first)
    expect(noImage.status).toBe(125);
    expect(noImage.stderr).toBe('Error: localhost/nosuch:1: image not known\n');
    expect(run('--bogus-flag', IMG).status).toBe(125);
    expect(run('-u', 'ghost', IMG, 'true').status).toBe(125);
    expect(readJson<unknown[]>(path.join(root, 'overlay-containers/containers.json'))).toEqual([]);
  });

  it('applies env, workdir and user from the image and the flags', () => {
    const envOut = run('-e', 'FOO=bar', '-e', 'IMAGE_VAR=over', IMG, 'env');
    expect(envOut.status, envOut.stderr).toBe(0);
    const env = envOut.stdout.trim().split('\n').sort();
    expect(env).toContain('FOO=bar');
    expect(env).toContain('IMAGE_VAR=over');
    expect(env).toContain('PATH=/usr/local/bin:/usr/bin:/bin');
    expect(env).toContain('HOME=/root');
    expect(env).toContain('container=carrier');
    expect(run(IMG, 'sh', '-c', 'echo $IMAGE_VAR').stdout).toBe('from-image\n');
    expect(run(IMG, 'pwd').stdout).toBe('/work\n'); // the image's WorkingDir
    expect(run('-w', '/new/dir', IMG, 'pwd').stdout).toBe('/new/dir\n'); // made when missing
    expect(run('-u', 'app', IMG, 'sh', '-c', 'id; echo $HOME').stdout).toBe('uid=1000(app) gid=1000(app) groups=50(staff)\n/home/app\n');
    expect(run('-u', '4242:77', IMG, 'id', '-u').stdout).toBe('4242\n');
    expect(run('--user=app:staff', IMG, 'id', '-g').stdout).toBe('50\n');
    // root has podman's default capabilities, a non-root user none effective
    const caps = (u: string): string => run('-u', u, IMG, 'grep', 'CapEff', '/proc/self/status').stdout.trim();
    expect(caps('0')).toBe('CapEff:\t00000000800405fb');
    expect(caps('app')).toBe('CapEff:\t0000000000000000');
    expect(run('--entrypoint', '["/bin/echo","ep"]', IMG, 'x').stdout).toBe('ep x\n');
  });

  it('gives the container its own namespaces: pid 1, loopback only, hostname = short id, read-only /sys', () => {
    const r = run(IMG, 'sh', '-c', 'echo $$; ip -o link | cut -d: -f2; hostname; touch /sys/x 2>&1 || echo sys-ro; cat /etc/hostname; ls /dev/pts /dev/shm /dev/mqueue >/dev/null && echo devs');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('1');
    expect(lines[1]!.trim()).toBe('lo');
    expect(lines[2]).toMatch(/^[0-9a-f]{12}$/);
    expect(lines).toContain('sys-ro');
    expect(lines).toContain(lines[2]!); // /etc/hostname
    expect(lines.at(-1)).toBe('devs');
  });

  it('hides whiteouts and opaque directories of lower layers', () => {
    const r = run(IMG, 'sh', '-c', 'ls /data; echo --; ls /data/opaque');
    expect(r.stdout).toBe('kept.txt\nopaque\n--\nnew.txt\n');
  });

  it('writes land in the container\'s own diff: never in image layers, never seen by another container', () => {
    const a = carrier(['run', '--name', 'writer-a', IMG, 'sh', '-c', 'echo from-a > /data/written; rm /data/kept.txt']);
    expect(a.status, a.stderr).toBe(0);
    const b = carrier(['run', '--name', 'writer-b', IMG, 'sh', '-c', 'ls /data; cat /data/written 2>&1']);
    expect(b.status).toBe(1);
    expect(b.stdout).toContain('kept.txt');
    const inspect = JSON.parse(carrier(['container', 'inspect', 'writer-a']).stdout) as { GraphDriver: { Data: { UpperDir: string } }; State: { ExitCode: number; Status: string } }[];
    const upper = inspect[0]!.GraphDriver.Data.UpperDir;
    expect(fs.readFileSync(path.join(upper, 'data/written'), 'utf8')).toBe('from-a\n');
    expect(fs.lstatSync(path.join(upper, 'data/kept.txt')).isCharacterDevice()).toBe(true); // a whiteout
    expect(inspect[0]!.State).toMatchObject({ Status: 'exited', ExitCode: 0 });
    // The image's layers are untouched.
    const layers = readJson<{ id: string; 'diff-digest'?: string }[]>(path.join(root, 'overlay-layers/layers.json'));
    for (const l of layers.filter((x) => image.diffIDs.includes(x['diff-digest'] ?? ''))) {
      const diff = path.join(root, 'overlay', l.id, 'diff');
      expect(fs.existsSync(path.join(diff, 'data/written'))).toBe(false);
    }
    // Running a container again keeps its writes: kept.txt is already gone, so its `rm` fails this time.
    const again = carrier(['start', 'writer-a']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('kept.txt');
    const list = JSON.parse(carrier(['ps', '-a', '--format', 'json']).stdout) as ContainerJson[];
    expect(list.map((c) => c.Names[0]).sort()).toEqual(['writer-a', 'writer-b']);
    expect(list.find((c) => c.Names[0] === 'writer-b')).toMatchObject({ State: 'exited', ExitCode: 1, Image: IMG });
    expect(carrier(['ps']).stdout.trim().split('\n')).toHaveLength(1); // none running: the header only
    expect(carrier(['rm', 'writer-a', 'writer-b']).stdout).toBe('writer-a\nwriter-b\n');
    expect(fs.existsSync(upper)).toBe(false);
  });

  it('mounts named volumes (kept after rm), binds host paths, :ro is read-only, --tmpfs is a tmpfs', () => {
    const host = path.join(work, 'hostdir');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'in.txt'), 'from host\n');
    const w = carrier(['run', '--name', 'vol-writer', '-v', 'keep:/data/vol', '-v', `${host}:/mnt/host`, IMG, 'sh', '-c', 'echo persisted > /data/vol/f; cat /mnt/host/in.txt; echo back > /mnt/host/out.txt']);
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toBe('from host\n');
    expect(fs.readFileSync(path.join(host, 'out.txt'), 'utf8')).toBe('back\n');
    expect(carrier(['rm', 'vol-writer']).status).toBe(0);
    expect(fs.readFileSync(path.join(root, 'volumes/keep/_data/f'), 'utf8')).toBe('persisted\n');
    expect(carrier(['volume', 'ls', '-q']).stdout).toBe('keep\n');
    const ro = run('-v', 'keep:/data/vol:ro', '-v', `${host}:/mnt/host:ro`, IMG, 'sh', '-c', 'cat /data/vol/f; echo x > /data/vol/g || echo vol-ro; echo x > /mnt/host/g || echo bind-ro');
    expect(ro.stdout).toBe('persisted\nvol-ro\nbind-ro\n');
    expect(fs.existsSync(path.join(host, 'g'))).toBe(false);
    const tmp = run('--tmpfs', '/scratch', IMG, 'sh', '-c', 'grep " /scratch " /proc/mounts | cut -d" " -f1,3; echo x > /scratch/y && echo wrote');
    expect(tmp.stdout).toBe('tmpfs tmpfs\nwrote\n');
    const inspected = JSON.parse(carrier(['volume', 'inspect', 'keep']).stdout) as { Name: string; Mountpoint: string }[];
    expect(inspected[0]).toMatchObject({ Name: 'keep', Mountpoint: path.join(root, 'volumes/keep/_data') });
    expect(carrier(['volume', 'rm', 'keep']).status).toBe(0);
    expect(carrier(['volume', 'ls', '-q']).stdout).toBe('');
  });

  it('create, mount, umount and rm a container; mount counts like podman', () => {
    const id = carrier(['create', '--name', 'mnt', IMG]).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const merged = carrier(['mount', 'mnt']).stdout.trim();
    expect(fs.readFileSync(path.join(merged, 'etc/os-release'), 'utf8')).toBe(OS_RELEASE);
    expect(fs.existsSync(path.join(merged, 'data/gone.txt'))).toBe(false);
    // A second mount only counts; the first umount keeps it mounted.
    expect(carrier(['mount', 'mnt']).stdout.trim()).toBe(merged);
    const counts = (): number[] => readJson<{ count: number }[]>(path.join(runroot, 'overlay-layers/mountpoints.json')).map((m) => m.count);
    expect(counts()).toEqual([2]);
    expect(carrier(['umount', 'mnt']).stdout).toBe('mnt\n');
    expect(counts()).toEqual([1]);
    expect(fs.readFileSync(path.join(merged, 'etc/os-release'), 'utf8')).toBe(OS_RELEASE);
    expect(carrier(['umount', 'mnt']).stdout).toBe('mnt\n');
    expect(counts()).toEqual([]);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(merged);
    expect(carrier(['rm', 'mnt']).status).toBe(0);
    expect(carrier(['rm', 'mnt']).status).toBe(1);
  });

  it('rm of a mounted container unmounts it first', () => {
    carrier(['create', '--name', 'mounted', IMG]);
    const merged = carrier(['mount', 'mounted']).stdout.trim();
    expect(carrier(['rm', 'mounted']).status).toBe(0);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(merged);
    expect(readJson<unknown[]>(path.join(runroot, 'overlay-layers/mountpoints.json'))).toEqual([]);
  });

  it('says so and falls back to runc when crun refuses the cgroup layout', () => {
    // A stand-in crun that fails the way crun does on a hybrid cgroup v1/v2 host (crun is not installable here).
    const bin = path.join(work, 'fake-crun');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(
      path.join(bin, 'crun'),
      '#!/bin/sh\nlog=\nwhile [ $# -gt 0 ]; do case "$1" in --log) log=$2; shift;; esac; shift; done\n' +
        '[ -n "$log" ] && echo \'{"msg":"cannot set up cgroups: hybrid cgroup v1/v2 layouts are not supported","level":"error"}\' >> "$log"\nexit 1\n',
      { mode: 0o755 },
    );
    const r = carrier(['run', '--rm', '--runtime', 'crun', IMG, 'echo', 'ran'], { env: { PATH: `${bin}:${process.env.PATH}` } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('ran\n');
    expect(r.stderr).toMatch(/crun cannot run containers with this machine's cgroup layout .*; using runc instead/);
    const none = carrier(['run', '--rm', '--runtime', 'crun', IMG, 'true'], { env: { PATH: '/nonexistent' } });
    expect(none.status).toBe(125);
    expect(none.stderr).toContain('OCI runtime "crun" not found');
  });

  it('attaches stdin with -i, and lists, refuses to rm, then force-removes a running container', async () => {
    expect(carrier(['run', '--rm', '-i', IMG, 'cat'], { input: 'piped in\n' }).stdout).toBe('piped in\n');
    expect(carrier(['run', '--rm', IMG, 'cat'], { input: 'not attached\n' }).stdout).toBe('');
    const child = spawn(process.execPath, [CLI, '--root', root, '--runroot', runroot, 'run', '--name', 'busy', IMG, 'sh', '-c', 'echo ready; sleep 60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve()));
    const ps = carrier(['ps']);
    expect(ps.stdout).toMatch(/\n[0-9a-f]{12}\s+localhost\/runnable:1\s+sh -c echo ready;\.\.\.\s+.+\s+Up .+\s+busy\n$/);
    const refused = carrier(['rm', 'busy']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('is running');
    const forced = carrier(['rm', '-f', 'busy']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(await exited).toBe(137); // SIGKILL
    expect(carrier(['ps', '-a', '-q']).stdout).toBe('');
    expect(readJson<unknown[]>(path.join(runroot, 'overlay-layers/mountpoints.json'))).toEqual([]);
  });

  it('-it on a terminal whose input has already ended prints the command\'s output and nothing before it (no NUL)', () => {
    // script(1) gives Carrier a terminal; its own stdin is empty, so it sends the terminal an end-of-file at once,
    // which raw mode would turn into a NUL byte for the container (echoed as ^@). Debian package: bsdutils.
    const cmd = [process.execPath, CLI, '--root', root, '--runroot', runroot, 'run', '--rm', '-it', IMG, 'echo', 'hi'].join(' ');
    for (let i = 0; i < 3; i++) {
      const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'latin1', input: '', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('hi\r\n');
    }
  });

  it('makes an anonymous volume for -v /dst, removed by rm -v', () => {
    const c = carrier(['run', '--name', 'anon', '-v', '/anon', IMG, 'sh', '-c', 'echo a > /anon/f']);
    expect(c.status, c.stderr).toBe(0);
    const vols = JSON.parse(carrier(['volume', 'ls', '--format', 'json']).stdout) as { Name: string; Anonymous: boolean; Containers: string[] }[];
    expect(vols).toHaveLength(1);
    expect(vols[0]!.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(vols[0]!.Anonymous).toBe(true);
    expect(fs.readFileSync(path.join(root, 'volumes', vols[0]!.Name, '_data/f'), 'utf8')).toBe('a\n');
    expect(carrier(['volume', 'rm', vols[0]!.Name]).status).toBe(2); // in use
    expect(carrier(['rm', '-v', 'anon']).status).toBe(0);
    expect(carrier(['volume', 'ls', '-q']).stdout).toBe('');
  });

  it('forwards SIGTERM to the container and returns its exit code', async () => {
    const child = spawn(process.execPath, [CLI, '--root', root, '--runroot', runroot, 'run', '--rm', IMG, 'sh', '-c', 'trap "echo got-term; exit 42" TERM; echo ready; sleep 30 & wait'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const ready = new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => ((out += c.toString()), out.includes('ready') && resolve())));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    await ready;
    child.kill('SIGTERM');
    const code = await exited;
    expect(out).toBe('ready\ngot-term\n');
    expect(code).toBe(42);
  });

  it('runs images with 130 and 300 layers, every layer\'s file visible inside (podman stops near 127)', async () => {
    for (const depth of [130, 300]) {
      const deep = buildRunnableImage(path.join(work, `deep-${depth}`), {
        label: `deep-${depth}`,
        extraLayers: Array.from({ length: depth - 2 }, (_, i) => [[`layers/l${String(i).padStart(3, '0')}`, `${i}\n`]] as [string, string][]),
      });
      const name = `localhost/deep:${depth}`;
      const store = await Store.open({ root, runroot });
      try {
        await store.commitImage(commitOf(deep, [name]), { concurrency: 4 });
        expect((await store.layers()).filter((l) => !l.readOnly).length).toBeGreaterThanOrEqual(depth);
      } finally {
        await store.close();
      }
      const r = run(name, '/bin/sh', '-c', 'ls /layers | wc -l');
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(String(depth - 2));
    }
  });

  it('container prune removes stopped Carrier containers, system prune --volumes unused volumes; info shows the mount method', () => {
    const made = carrier(['create', '--name', 'to-prune', IMG, 'true']);
    expect(made.status, made.stderr).toBe(0);
    const exited = carrier(['run', '--name', 'exited-one', '-v', 'prunable:/data', IMG, 'true']);
    expect(exited.status, exited.stderr).toBe(0);
    const pruned = carrier(['container', 'prune', '-f']);
    expect(pruned.status, pruned.stderr).toBe(0);
    const ps = JSON.parse(carrier(['ps', '-a', '--format', 'json']).stdout) as ContainerJson[];
    expect(ps.map((c) => c.Names[0])).not.toContain('to-prune');
    expect(ps.map((c) => c.Names[0])).not.toContain('exited-one');
    expect(carrier(['volume', 'ls', '--format', 'json']).stdout).toContain('prunable');
    const sys = carrier(['system', 'prune', '-f', '--volumes']);
    expect(sys.status, sys.stderr).toBe(0);
    expect(sys.stdout).toMatch(/Deleted Volumes\n(.*\n)*prunable\n/);
    const info = carrier(['info', '--format', 'json']);
    expect(info.status, info.stderr).toBe(0);
    const parsed = JSON.parse(info.stdout) as { overlay: { method: string; lowerdirPlus: boolean }; store: { graphRoot: string }; runtime: { name: string } };
    expect(parsed.overlay.method).toMatch(/^fsopen/);
    expect(parsed.overlay.lowerdirPlus).toBe(true);
    expect(parsed.store.graphRoot).toBe(root);
    expect(parsed.runtime.name).toBe('runc');
  });

  it('podman ps -a --external lists the Carrier container, and podman rm of it leaves the store consistent', () => {
    requireTools();
    const id = carrier(['create', '--name', 'shared', IMG]).stdout.trim();
    const podman = new Podman(path.join(work, 'podman'));
    const args = ['--root', root, '--runroot', runroot];
    const p = (a: string[]): string =>
      execFileSync('podman', [...args, '--storage-driver', 'overlay', '--tmpdir', podman.tmpdir, ...a], { env: { ...process.env, CONTAINERS_STORAGE_CONF: podman.conf }, encoding: 'utf8' });
    fs.writeFileSync(podman.conf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`);
    const listed = JSON.parse(p(['ps', '-a', '--external', '--format', 'json'])) as { Id: string; Names: string[]; Image: string; ImageID: string; State: string }[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ Id: id, Names: ['shared'], Image: IMG, ImageID: imageId, State: 'storage' });
    const layer = readJson<{ id: string; layer: string }[]>(path.join(root, 'overlay-containers/containers.json'))[0]!.layer;
    expect(p(['rm', 'shared']).trim()).toBe('shared');
    expect(readJson<unknown[]>(path.join(root, 'overlay-containers/containers.json'))).toEqual([]);
    expect(readJson<{ id: string }[]>(path.join(root, 'overlay-layers/layers.json')).map((l) => l.id)).not.toContain(layer);
    expect(carrier(['ps', '-a', '-q']).stdout).toBe('');
    // Carrier carries on with the store podman changed.
    expect(run(IMG, 'cat', '/data/kept.txt').stdout).toBe('kept\n');
    const again = carrier(['create', '--name', 'shared', IMG]);
    expect(again.status, again.stderr).toBe(0);
    expect(carrier(['rm', 'shared']).status).toBe(0);
  });
});

describe('carrier run as a real unprivileged user', { timeout: 120_000 }, () => {
  let ids: { uid: number; gid: number };
  let home: string;

  function asUser(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
    return spawnSync(
      'setpriv',
      [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--inh-caps=-all', process.execPath, CLI, ...args],
      { encoding: 'utf8', input: '', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...env } },
    );
  }

  beforeAll(() => {
    requireTools();
    if (spawnSync('id', ['-u', USER]).status !== 0) {
      const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
      if (made.status !== 0) throw new Error(`useradd failed (install Debian 'passwd'): ${made.stderr}`);
    }
    ids = { uid: Number(execFileSync('id', ['-u', USER]).toString()), gid: Number(execFileSync('id', ['-g', USER]).toString()) };
    home = path.join(work, 'home');
    fs.mkdirSync(home);
    fs.chownSync(home, ids.uid, ids.gid);
    const archive = path.join(work, 'runnable.tar');
    toDockerArchive(image, archive, IMG);
    fs.chmodSync(archive, 0o644);
    const loaded = asUser(['load', '-i', archive]);
    expect(loaded.status, loaded.stderr).toBe(0);
  }, 120_000);

  it('runs cat /etc/os-release rootless, as root of its own user namespace', () => {
    const r = asUser(['run', '--rm', IMG, 'cat', '/etc/os-release']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(OS_RELEASE);
    const who = asUser(['run', '--rm', IMG, 'sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " "']);
    expect(who.stdout.split('\n')[0]).toBe('0');
    expect(who.stdout).toContain(` 0 ${ids.uid} 1`);
  });

  it('keeps exit codes, whiteouts, and writes in the user\'s own store', () => {
    expect(asUser(['run', '--rm', IMG, 'sh', '-c', 'exit 3']).status).toBe(3);
    expect(asUser(['run', '--rm', IMG, 'nosuchcommand']).status).toBe(127);
    expect(asUser(['run', '--rm', IMG, '/bin/notexec']).status).toBe(126);
    expect(asUser(['run', '--rm', IMG, 'sh', '-c', 'ls /data; ls /data/opaque']).stdout).toBe('kept.txt\nopaque\nnew.txt\n');
    const w = asUser(['run', '--name', 'rl', '-v', 'rlvol:/v', IMG, 'sh', '-c', 'echo mine > /data/mine; echo vol > /v/f']);
    expect(w.status, w.stderr).toBe(0);
    const storeRoot = path.join(home, '.local/share/carrier/storage');
    const rec = readJson<{ names: string[]; layer: string }[]>(path.join(storeRoot, 'overlay-containers/containers.json'));
    expect(rec.map((c) => c.names)).toEqual([['rl']]);
    const upper = path.join(storeRoot, 'overlay', rec[0]!.layer, 'diff');
    expect(fs.readFileSync(path.join(upper, 'data/mine'), 'utf8')).toBe('mine\n');
    expect(fs.lstatSync(path.join(upper, 'data/mine')).uid).toBe(ids.uid); // root inside = the user outside
    expect(asUser(['rm', 'rl']).status).toBe(0);
    expect(fs.readFileSync(path.join(storeRoot, 'volumes/rlvol/_data/f'), 'utf8')).toBe('vol\n');
    expect(asUser(['ps', '-a', '-q']).stdout).toBe('');
  });

  it('carrier unshare maps the user to root in a new user + mount namespace', () => {
    const r = asUser(['unshare', 'sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " "; echo $CARRIER_GRAPHROOT']);
    expect(r.status, r.stderr).toBe(0);
    const [uid, map, graph] = r.stdout.trim().split('\n');
    expect(uid).toBe('0');
    expect(map).toContain(` 0 ${ids.uid} 1`);
    expect(graph).toBe(path.join(home, '.local/share/carrier/storage'));
    // Inside it, Carrier does not nest another namespace, and a mount is usable.
    const inside = asUser(['unshare', 'sh', '-c', `id=$(${process.execPath} ${CLI} create ${IMG}); m=$(${process.execPath} ${CLI} mount $id); cat $m/etc/os-release; ${process.execPath} ${CLI} umount $id >/dev/null; ${process.execPath} ${CLI} rm $id >/dev/null`]);
    expect(inside.status, inside.stderr).toBe(0);
    expect(inside.stdout).toBe(OS_RELEASE);
  });
});

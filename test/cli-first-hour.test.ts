// What a new user meets first with the built CLI: `carrier run` pulls a missing image as podman run does (--pull
// missing|always|never|newer with pull's registry flags), the installed bin keeps Node from taking Carrier's flags
// (`run --env-file`), `carrier version` prints Carrier's own version, rootless `carrier mount` outside `carrier
// unshare` is refused, and checkout speaks in the user's words. Real registry, real runc, real unprivileged user.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, execFileSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/store.js';
import { buildRunnableImage, requireBusybox } from './support/runnable.js';
import type { TestImage } from './support/images.js';
import * as H from './support/hostile.js';
import { commitOf } from './support/store.js';
import { freePort } from './support/registry.js';
import { registryRig } from './support/registry-rig.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, '..', 'dist', 'cli', 'main.js');
const USER = 'carrier-rootless';
let image: TestImage;
let ref: string;
let imageId: string;

let n = 0;
function newStore(): string[] {
  const dir = path.join(rig.work, `s${n++}`);
  return ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run')];
}

function carrier(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input: '', env: { ...process.env, CARRIER_BLOB_CACHE: '', ...env }, timeout: 120_000 });
}

function ensureUser(): { uid: number; gid: number } {
  if (spawnSync('id', ['-u', USER]).status !== 0) {
    const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
    if (made.status !== 0) throw new Error(`useradd failed (install Debian 'passwd'): ${made.stderr}`);
  }
  return { uid: Number(execFileSync('id', ['-u', USER]).toString()), gid: Number(execFileSync('id', ['-g', USER]).toString()) };
}

async function imagesIn(store: string[]): Promise<string[]> {
  const s = await Store.open({ root: store[1]!, runroot: store[3]! });
  try {
    return (await s.images()).map((i) => i.id);
  } finally {
    await s.close();
  }
}

const rig = registryRig('first-hour', {}, async () => {
  expect(process.geteuid?.(), 'these tests run containers as root and create a user').toBe(0);
  requireBusybox();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  fs.chmodSync(rig.work, 0o755);
  image = buildRunnableImage(path.join(rig.work, 'oci'), { label: 'first-hour' });
  imageId = image.configDigest.slice(7);
  await rig.push(image, 'first/run:1');
  ref = `${rig.reg.host}/first/run:1`;
});

describe('carrier run pulls the image as podman run does', { timeout: 180_000 }, () => {
  it('--pull missing (the default): a missing image is pulled with the registry flags, then run', async () => {
    const store = newStore();
    const r = carrier([...store, 'run', '--rm', '--tls-verify=false', ref, 'echo', 'pulled and ran']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('pulled and ran\n');
    expect(r.stderr).toContain(`Trying to pull ${ref}`);
    expect(r.stderr).toContain('Copying blob');
    expect(await imagesIn(store)).toEqual([imageId]);
    // Present now: no pull, no progress.
    const again = carrier([...store, 'run', '--rm', ref, 'echo', 'again']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toBe('again\n');
    expect(again.stderr).toBe('');
  });

  it('--pull never refuses a missing image; --pull always pulls one already stored; -q pulls quietly', () => {
    const store = newStore();
    const never = carrier([...store, 'run', '--rm', '--pull', 'never', ref, 'true']);
    expect(never.status).toBe(125);
    expect(never.stderr).toBe(`Error: ${ref}: image not known\n`);
    const quiet = carrier([...store, 'create', '-q', '--tls-verify=false', ref]);
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const always = carrier([...store, 'run', '--rm', '--pull=always', '--tls-verify=false', ref, 'echo', 'fresh']);
    expect(always.status, always.stderr).toBe(0);
    expect(always.stdout).toBe('fresh\n');
    expect(always.stderr).toContain(`Trying to pull ${ref}`);
    const bad = carrier([...store, 'run', '--pull', 'sometimes', ref]);
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain('invalid pull policy "sometimes"');
  });

  it('--pull newer uses the stored image when the registry cannot be reached', async () => {
    const store = newStore();
    const gone = `127.0.0.1:${await freePort()}/first/run:1`;
    const s = await Store.open({ root: store[1]!, runroot: store[3]! });
    await s.commitImage(commitOf(image, [gone]));
    await s.close();
    const r = carrier([...store, 'run', '--rm', '--pull', 'newer', '--tls-verify=false', gone, 'echo', 'stored']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('stored\n');
    expect(r.stderr).toContain(`cannot check ${gone} for a newer image`);
  });

  it('takes --platform and --creds to the pull: a good platform pulls, malformed credentials fail it with exit 125', () => {
    const store = newStore();
    const creds = carrier([...store, 'run', '--rm', '--tls-verify=false', '--creds', 'nocolon', ref, 'true']);
    expect(creds.status).toBe(125);
    expect(creds.stderr).toContain('USERNAME:PASSWORD');
    const platform = carrier([...store, 'run', '--rm', '-q', '--tls-verify=false', '--platform', 'linux/amd64', ref, 'echo', 'amd64']);
    expect(platform.status, platform.stderr).toBe(0);
    expect(platform.stdout).toBe('amd64\n');
  });
});

describe('carrier run pulls rootless too', { timeout: 180_000 }, () => {
  it('an unprivileged user runs an image it does not have: pulled as the user, then run in its namespace', () => {
    const { uid, gid } = ensureUser();
    const home = path.join(rig.work, 'rootless-home');
    fs.mkdirSync(home);
    fs.chownSync(home, uid, gid);
    const r = spawnSync(
      'setpriv',
      [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', process.execPath, CLI, 'run', '--rm', '--tls-verify=false', ref, 'sh', '-c', 'id -u; cat /data/kept.txt >/dev/null && echo ok'],
      { encoding: 'utf8', input: '', timeout: 120_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('0\nok\n');
    expect(r.stderr).toContain(`Trying to pull ${ref}`);
    const storeRoot = path.join(home, '.local/share/carrier/storage');
    expect(fs.existsSync(path.join(storeRoot, 'overlay-images', imageId))).toBe(true);
    expect(fs.statSync(path.join(storeRoot, 'overlay-images', imageId)).uid).toBe(uid);
  });
});

describe('the installed bin', { timeout: 120_000 }, () => {
  it('keeps Node from parsing run --env-file: the variables reach the container', async () => {
    const store = newStore();
    const s = await Store.open({ root: store[1]!, runroot: store[3]! });
    await s.commitImage(commitOf(image, ['localhost/envfile:1']));
    await s.close();
    const file = path.join(rig.work, 'vars.env');
    fs.writeFileSync(file, '# settings\nFROM_FILE=one\n\nBOTH=file\nFROM_HOST\n');
    // Executed as npm links it: the file itself, through its #! line.
    fs.chmodSync(CLI, 0o755);
    const r = spawnSync(CLI, [...store, 'run', '--rm', '--env-file', file, '-e', 'BOTH=flag', 'localhost/envfile:1', 'sh', '-c', 'echo $FROM_FILE $BOTH $FROM_HOST'], {
      encoding: 'utf8',
      env: { ...process.env, FROM_HOST: 'host' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('one flag host\n');
  });

  it("carrier version prints Carrier's version, not the calling package's (npx sets npm_package_version)", () => {
    const own = (JSON.parse(fs.readFileSync(path.join(here, '..', 'package.json'), 'utf8')) as { version: string }).version;
    const r = carrier(['version'], { npm_package_version: '9.9.9-app' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`carrier ${own}`);
  });
});

describe('small things', { timeout: 120_000 }, () => {
  it('rootless carrier mount outside carrier unshare is refused with exit 125, as podman refuses it', () => {
    const { uid } = ensureUser();
    const home = path.join(rig.work, 'mount-home');
    fs.mkdirSync(home);
    fs.chownSync(home, uid, uid);
    const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, CLI, 'mount', 'some-container'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
    });
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('Error: cannot run command "carrier mount" in rootless mode, must execute `carrier unshare` first\n');
  });

  it('checkout counts in words ("1 layer") and refuses a non-empty directory without naming internals', async () => {
    const store = newStore();
    const one = rig.build('one', { layers: [{ compression: 'gzip', entries: [H.file('only', 'x\n')] }], label: 'one' });
    const s = await Store.open({ root: store[1]!, runroot: store[3]! });
    await s.commitImage(commitOf(one, ['localhost/one:1']));
    await s.close();
    const dir = path.join(rig.work, 'co');
    const r = carrier([...store, 'checkout', 'localhost/one:1', dir]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ \(1 layer\) into .*: 1 file, 0 directories, 0 symlinks;/);
    const again = carrier([...store, 'checkout', 'localhost/one:1', dir]);
    expect(again.status).toBe(125);
    expect(again.stderr).toBe(`Error: ${dir} exists and is not empty: check out into a new or empty directory\n`);
  });
});

import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarrierError } from '../src/errors.js';
import { expandPath, resolveStoreConfig, type StoreLocationOptions } from '../src/store/config.js';

const UID = process.getuid!();
const isRoot = UID === 0;

let dir: string;
let tmp: string; // stands in for TMPDIR
let runtime: string; // stands in for XDG_RUNTIME_DIR
let sysrun: string; // stands in for /run, where root's run directory goes

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'carrier-config-'));
  tmp = join(dir, 'tmp');
  runtime = join(dir, 'run-user');
  sysrun = join(dir, 'run');
  mkdirSync(tmp);
  mkdirSync(sysrun, { mode: 0o755 });
  mkdirSync(runtime, { mode: 0o700 });
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<CarrierError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CarrierError);
    return err as CarrierError;
  }
  throw new Error('expected a rejection');
}

function conf(text: string, name = 'storage.conf'): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

/** Options with a fully fake environment: nothing from the real process leaks in. */
function opts(env: NodeJS.ProcessEnv, extra: StoreLocationOptions = {}): StoreLocationOptions {
  return { env: { HOME: join(dir, 'home'), TMPDIR: tmp, ...env }, systemRunDir: sysrun, ...extra };
}

describe('defaults', () => {
  it('XDG_DATA_HOME and XDG_RUNTIME_DIR set', async () => {
    const c = await resolveStoreConfig(opts({ XDG_DATA_HOME: join(dir, 'data'), XDG_RUNTIME_DIR: runtime }));
    expect(c).toEqual({
      graphroot: join(dir, 'data', 'carrier', 'storage'),
      runroot: join(runtime, 'carrier'),
      driver: 'overlay',
      blobCache: join(dir, 'data', 'carrier', 'cache', 'blobs'),
      additionalImageStores: [],
      warnings: [],
    });
    expect(c.configFile).toBeUndefined();
    expect(existsSync(join(tmp, `carrier-run-${UID}`))).toBe(false); // the fallback is not touched
  });

  it('XDG_DATA_HOME unset: ~/.local/share from HOME', async () => {
    const c = await resolveStoreConfig(opts({ XDG_RUNTIME_DIR: runtime }));
    expect(c.graphroot).toBe(join(dir, 'home', '.local', 'share', 'carrier', 'storage'));
    expect(c.blobCache).toBe(join(dir, 'home', '.local', 'share', 'carrier', 'cache', 'blobs'));
  });

  it('a relative XDG_DATA_HOME is ignored (XDG spec)', async () => {
    const c = await resolveStoreConfig(opts({ XDG_DATA_HOME: 'relative/data', XDG_RUNTIME_DIR: runtime }));
    expect(c.graphroot).toBe(join(dir, 'home', '.local', 'share', 'carrier', 'storage'));
  });

  it('HOME unset: falls back to os.homedir()', async () => {
    const c = await resolveStoreConfig({ env: { XDG_RUNTIME_DIR: runtime } });
    expect(c.graphroot).toMatch(/\/\.local\/share\/carrier\/storage$/);
  });

  it('does not read storage.conf unless asked', async () => {
    const c = await resolveStoreConfig(opts({ XDG_RUNTIME_DIR: runtime }));
    expect(c.configFile).toBeUndefined();
    expect(c.warnings).toEqual([]);
  });
});

describe('runroot fallback', () => {
  // Root's is <systemRunDir>/carrier (/run/carrier); everyone else's ${TMPDIR}/carrier-run-<uid>.
  const fallback = () => (isRoot ? join(sysrun, 'carrier') : join(tmp, `carrier-run-${UID}`));

  it('no XDG_RUNTIME_DIR: creates the private directory with mode 0700', async () => {
    const old = process.umask(0o000); // even a permissive umask must not widen it
    try {
      const c = await resolveStoreConfig(opts({}));
      expect(c.runroot).toBe(fallback());
    } finally {
      process.umask(old);
    }
    const st = lstatSync(fallback());
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o700);
    expect(st.uid).toBe(UID);
  });

  it('reuses an existing private directory', async () => {
    mkdirSync(fallback(), { mode: 0o700 });
    writeFileSync(join(fallback(), 'keep'), 'x');
    const c = await resolveStoreConfig(opts({}));
    expect(c.runroot).toBe(fallback());
    expect(existsSync(join(fallback(), 'keep'))).toBe(true);
  });

  it('XDG_RUNTIME_DIR missing: falls back with a warning', async () => {
    const c = await resolveStoreConfig(opts({ XDG_RUNTIME_DIR: join(dir, 'nope') }));
    expect(c.runroot).toBe(fallback());
    expect(c.warnings.join('\n')).toMatch(/XDG_RUNTIME_DIR .*nope/);
  });

  it('XDG_RUNTIME_DIR that is a file: falls back', async () => {
    const f = join(dir, 'file');
    writeFileSync(f, '');
    const c = await resolveStoreConfig(opts({ XDG_RUNTIME_DIR: f }));
    expect(c.runroot).toBe(fallback());
  });

  it.skipIf(!isRoot)('XDG_RUNTIME_DIR owned by someone else: falls back', async () => {
    chownSync(runtime, 4242, 4242);
    const c = await resolveStoreConfig(opts({ XDG_RUNTIME_DIR: runtime }));
    expect(c.runroot).toBe(fallback());
    expect(c.warnings.join('\n')).toMatch(/not a directory owned by uid/);
  });

  it('XDG_RUNTIME_DIR owned by someone else (uid option): falls back', async () => {
    const other = UID + 4242;
    const mine = join(tmp, `carrier-run-${other}`);
    mkdirSync(mine, { mode: 0o700 });
    if (isRoot) chownSync(mine, other, other);
    const p = resolveStoreConfig(opts({ XDG_RUNTIME_DIR: runtime }, { uid: other }));
    if (isRoot) {
      expect((await p).runroot).toBe(mine);
    } else {
      expect((await rejection(p)).code).toBe('CARRIER_UNSAFE_PATH');
    }
  });

  it('refuses a symlink, even to a private directory of ours', async () => {
    const target = join(dir, 'target');
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, fallback());
    const e = await rejection(resolveStoreConfig(opts({})));
    expect(e.code).toBe('CARRIER_UNSAFE_PATH');
    expect(e.message).toMatch(/symbolic link/);
    expect(e.path).toBe(fallback());
  });

  it('refuses a dangling symlink', async () => {
    symlinkSync(join(dir, 'does-not-exist'), fallback());
    const e = await rejection(resolveStoreConfig(opts({})));
    expect(e.code).toBe('CARRIER_UNSAFE_PATH');
  });

  it('refuses a regular file', async () => {
    writeFileSync(fallback(), '');
    const e = await rejection(resolveStoreConfig(opts({})));
    expect(e.code).toBe('CARRIER_UNSAFE_PATH');
    expect(e.message).toMatch(/not a directory/);
  });

  it.each([0o755, 0o750, 0o705, 0o1777, 0o770])('refuses mode %s', async (mode) => {
    mkdirSync(fallback());
    chmodSync(fallback(), mode);
    const e = await rejection(resolveStoreConfig(opts({})));
    expect(e.code).toBe('CARRIER_UNSAFE_PATH');
    expect(e.message).toMatch(/group\/other/);
  });

  it('refuses a directory owned by another uid', async () => {
    const other = UID + 4242;
    mkdirSync(join(tmp, `carrier-run-${other}`), { mode: 0o700 }); // owned by us, not by `other`
    const e = await rejection(resolveStoreConfig(opts({}, { uid: other })));
    expect(e.code).toBe('CARRIER_UNSAFE_PATH');
    expect(e.message).toMatch(new RegExp(`owned by uid ${UID}, not ${other}`));
  });

  it.skipIf(!isRoot)('refuses a directory chowned to another user', async () => {
    mkdirSync(fallback(), { mode: 0o700 });
    chownSync(fallback(), 4242, 4242);
    const e = await rejection(resolveStoreConfig(opts({})));
    expect(e.code).toBe('CARRIER_UNSAFE_PATH');
  });

  it.skipIf(!isRoot)('root with no XDG_RUNTIME_DIR uses /run/carrier: a directory another user made at /tmp/carrier-run-0 does not matter', async () => {
    const squatted = join(tmp, 'carrier-run-0');
    mkdirSync(squatted, { mode: 0o700 });
    chownSync(squatted, 4242, 4242); // what any local user could do to a shared /tmp before root's first command
    const c = await resolveStoreConfig(opts({}, { uid: 0 }));
    expect(c.runroot).toBe(join(sysrun, 'carrier'));
    expect(c.warnings).toEqual([]);
    // and by default that is /run/carrier itself: root-owned, 0700
    const real = await resolveStoreConfig({ env: { HOME: join(dir, 'home'), TMPDIR: tmp }, uid: 0 });
    expect(real.runroot).toBe('/run/carrier');
    const st = lstatSync('/run/carrier');
    expect([st.uid, st.mode & 0o7777, st.isDirectory()]).toEqual([0, 0o700, true]);
    expect(lstatSync(squatted).uid).toBe(4242); // left alone
  });

  it('an unprivileged user keeps ${TMPDIR}/carrier-run-<uid>, made 0700 and checked', async () => {
    const other = UID + 4242;
    const mine = join(tmp, `carrier-run-${other}`);
    if (isRoot) {
      mkdirSync(mine, { mode: 0o700 });
      chownSync(mine, other, other);
    }
    const p = resolveStoreConfig(opts({}, { uid: other }));
    if (isRoot) expect((await p).runroot).toBe(mine);
    else expect((await rejection(p)).message).toMatch(/owned by uid/);
  });

  it('TMPDIR missing: the OS error comes through', async () => {
    const e = await rejection(resolveStoreConfig({ env: { HOME: dir, TMPDIR: join(dir, 'no-tmp') }, uid: UID + 4242 }));
    expect(e.code).toBe('ENOENT');
    expect(e.syscall).toBe('mkdir');
  });

});

describe('storage.conf', () => {
  const base = () => opts({ XDG_DATA_HOME: join(dir, 'data'), XDG_RUNTIME_DIR: runtime });

  it('is read from CONTAINERS_STORAGE_CONF', async () => {
    const f = conf('[storage]\ndriver = "vfs"\ngraphroot = "/srv/g"\nrunroot = "/srv/r"\n');
    const c = await resolveStoreConfig(opts({ CONTAINERS_STORAGE_CONF: f }));
    expect(c).toMatchObject({ driver: 'vfs', graphroot: '/srv/g', runroot: '/srv/r', configFile: f, warnings: [] });
  });

  it('configFile option beats CONTAINERS_STORAGE_CONF', async () => {
    const a = conf('[storage]\ngraphroot = "/a"\n', 'a.conf');
    const b = conf('[storage]\ngraphroot = "/b"\n', 'b.conf');
    const c = await resolveStoreConfig({ ...opts({ CONTAINERS_STORAGE_CONF: a, XDG_RUNTIME_DIR: runtime }), configFile: b });
    expect(c.graphroot).toBe('/b');
    expect(c.configFile).toBe(b);
  });

  it('a missing configured file is an error', async () => {
    const e = await rejection(resolveStoreConfig({ ...base(), configFile: join(dir, 'missing.conf') }));
    expect(e.code).toBe('ENOENT');
    expect(e.path).toBe(join(dir, 'missing.conf'));
  });

  it('TOML syntax errors name the file and line', async () => {
    const f = conf('[storage]\ndriver = "overlay"\ngraphroot = \n');
    const e = await rejection(resolveStoreConfig({ ...base(), configFile: f }));
    expect(e.code).toBe('CARRIER_INVALID_CONFIG');
    expect(e.message.startsWith(`${f}:3: `)).toBe(true);
  });

  it('honours every supported key', async () => {
    const f = conf(`
[storage]
driver = "overlay"
graphroot = "/var/g"
runroot = "/run/r"

[storage.options]
additionalimagestores = ["/ro/one", "/ro/two/"]

[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
mountopt = "nodev,metacopy=on"
force_mask = "0700"
`);
    const c = await resolveStoreConfig({ ...base(), configFile: f });
    expect(c).toEqual({
      graphroot: '/var/g',
      runroot: '/run/r',
      driver: 'overlay',
      blobCache: '/var/g/carrier-blob-cache',
      additionalImageStores: ['/ro/one', '/ro/two'],
      mountProgram: '/usr/bin/fuse-overlayfs',
      mountOpt: 'nodev,metacopy=on',
      forceMask: '0700',
      configFile: f,
      warnings: [],
    });
  });

  it('[storage.options] mount_program/mountopt/force_mask are honoured; the overlay table wins', async () => {
    const legacy = conf('[storage.options]\nmount_program = "/legacy/fuse"\nmountopt = "nodev"\nforce_mask = 0o700\n', 'l.conf');
    expect(await resolveStoreConfig({ ...base(), configFile: legacy })).toMatchObject({
      mountProgram: '/legacy/fuse',
      mountOpt: 'nodev',
      forceMask: '0700',
      warnings: [],
    });
    const both = conf(
      '[storage.options]\nmount_program = "/legacy/fuse"\nmountopt = "nodev"\n[storage.options.overlay]\nmount_program = "/new/fuse"\nmountopt = "metacopy=on"\n',
      'b.conf',
    );
    expect(await resolveStoreConfig({ ...base(), configFile: both })).toMatchObject({ mountProgram: '/new/fuse', mountOpt: 'metacopy=on' });
  });

  it('rootless_storage_path is the graphroot for non-root users, with $HOME and $UID expanded', async () => {
    const f = conf('[storage]\ngraphroot = "/var/lib/containers/storage"\nrootless_storage_path = "$HOME/store-$UID"\n');
    const env = { HOME: '/home/alice', XDG_RUNTIME_DIR: runtime, TMPDIR: tmp };
    const c = await resolveStoreConfig({ env, configFile: f, uid: 1000, runroot: '/r' });
    expect(c.graphroot).toBe('/home/alice/store-1000');
    const r = await resolveStoreConfig({ env, configFile: f, uid: 0, runroot: '/r' });
    expect(r.graphroot).toBe('/var/lib/containers/storage');
  });

  it('expands variables in graphroot and runroot too', async () => {
    const f = conf('[storage]\ngraphroot = "${HOME}/g/${UID}"\nrunroot = "/run/user/$UID/x"\n');
    const c = await resolveStoreConfig({ env: { HOME: '/home/bob' }, configFile: f, uid: 1234 });
    expect(c.graphroot).toBe('/home/bob/g/1234');
    expect(c.runroot).toBe('/run/user/1234/x');
  });

  it('an unset variable expands to nothing, with a warning', async () => {
    const f = conf('[storage]\ngraphroot = "/x/$NOPE/y"\nrunroot = "/r"\n');
    const c = await resolveStoreConfig({ env: {}, configFile: f });
    expect(c.graphroot).toBe('/x/y');
    expect(c.warnings).toEqual([`${f}: storage.graphroot refers to unset environment variable $NOPE`]);
  });

  it.each([
    ['graphroot', '[storage]\ngraphroot = "relative/g"\n'],
    ['runroot', '[storage]\nrunroot = "r"\n'],
    ['rootless_storage_path', '[storage]\nrootless_storage_path = "~/store"\n'],
    ['expanded to relative', '[storage]\ngraphroot = "${EMPTY}g"\n'],
    ['additionalimagestores', '[storage.options]\nadditionalimagestores = ["ro"]\n'],
  ])('relative path (%s) is an error', async (_what, text) => {
    const f = conf(text);
    const e = await rejection(resolveStoreConfig({ ...opts({ XDG_RUNTIME_DIR: runtime, EMPTY: '' }), configFile: f, uid: 1000 }));
    expect(e.code).toBe('CARRIER_INVALID_CONFIG');
    expect(e.message).toMatch(/absolute path/);
    expect(e.message).toContain(f);
  });

  it.each([
    ['[storage]\ndriver = 1\n', /storage\.driver must be a string/],
    ['[storage]\ngraphroot = ["/a"]\n', /storage\.graphroot must be a string/],
    ['storage = "x"\n', /storage must be a table/],
    ['[storage.options]\nadditionalimagestores = "/a"\n', /array of strings/],
    ['[storage.options]\nadditionalimagestores = [1]\n', /array of strings/],
    ['[storage.options.overlay]\nmountopt = true\n', /mountopt must be a string/],
  ])('wrong types are errors: %s', async (text, msg) => {
    const e = await rejection(resolveStoreConfig({ ...base(), configFile: conf(text) }));
    expect(e.code).toBe('CARRIER_INVALID_CONFIG');
    expect(e.message).toMatch(msg);
  });

  it('empty strings count as unset', async () => {
    const f = conf('[storage]\ndriver = ""\ngraphroot = ""\n');
    const c = await resolveStoreConfig({ ...base(), configFile: f });
    expect(c.driver).toBe('overlay');
    expect(c.graphroot).toBe(join(dir, 'data', 'carrier', 'storage'));
  });

  it('unknown keys and tables produce warnings naming file and key', async () => {
    const f = conf(`
top = 1
[storage]
drivr = "overlay"
[storage.options]
frobnicate = true
[storage.options.overlay]
mount_progam = "/x"
[storage.options.fancy]
a = 1
[other]
b = 2
`);
    const c = await resolveStoreConfig({ ...base(), configFile: f });
    expect(c.warnings).toEqual([
      `${f}: unknown key "top" ignored`,
      `${f}: unknown key "storage.drivr" ignored`,
      `${f}: unknown key "storage.options.frobnicate" ignored`,
      `${f}: unknown key "storage.options.overlay.mount_progam" ignored`,
      `${f}: unknown key "storage.options.fancy" ignored`,
      `${f}: unknown key "other" ignored`,
    ]);
    expect(c.mountProgram).toBeUndefined();
  });

  it('recognised keys Carrier does not implement are ignored with a warning', async () => {
    const f = conf(`
[storage]
transient_store = true
[storage.options]
pull_options = {enable_partial_images = "false", use_hard_links = "false", ostree_repos=""}
remap-uids = "0:1668442479:65536"
size = "10G"
[storage.options.overlay]
ignore_chown_errors = "true"
skip_mount_home = "false"
[storage.options.thinpool]
autoextend_percent = "20"
[storage.options.vfs]
ignore_chown_errors = "true"
`);
    const c = await resolveStoreConfig({ ...base(), configFile: f });
    const ignored = (k: string) => `${f}: "${k}" is not supported by Carrier and is ignored`;
    expect(c.warnings).toEqual([
      ignored('storage.transient_store'),
      ignored('storage.options.pull_options'),
      ignored('storage.options.remap-uids'),
      ignored('storage.options.size'),
      ignored('storage.options.overlay.ignore_chown_errors'),
      ignored('storage.options.overlay.skip_mount_home'),
      ignored('storage.options.thinpool.autoextend_percent'),
      ignored('storage.options.vfs.ignore_chown_errors'),
    ]);
  });

  it.each(['btrfs', 'zfs', 'devmapper', 'aufs', 'fancyfs'])('driver %s is CARRIER_UNSUPPORTED', async (driver) => {
    const f = conf(`[storage]\ndriver = "${driver}"\n`);
    const e = await rejection(resolveStoreConfig({ ...base(), configFile: f }));
    expect(e.code).toBe('CARRIER_UNSUPPORTED');
    expect(e.message).toContain(driver);
    expect(e.message).toContain(f);
  });

  it('driver option: overlay2 is overlay; others are unsupported', async () => {
    expect((await resolveStoreConfig({ ...base(), driver: 'overlay2' })).driver).toBe('overlay');
    expect((await resolveStoreConfig({ ...base(), driver: 'vfs' })).driver).toBe('vfs');
    expect((await rejection(resolveStoreConfig({ ...base(), driver: 'btrfs' }))).code).toBe('CARRIER_UNSUPPORTED');
  });

  it('an unsupported driver in the file is an error even when the option overrides it', async () => {
    // The file is wrong either way; say so instead of silently using it for its other keys.
    const f = conf('[storage]\ndriver = "zfs"\n');
    expect((await rejection(resolveStoreConfig({ ...base(), configFile: f, driver: 'vfs' }))).code).toBe('CARRIER_UNSUPPORTED');
  });

  it('precedence: options beat the file, the file beats defaults', async () => {
    const f = conf('[storage]\ndriver = "vfs"\ngraphroot = "/file/g"\nrunroot = "/file/r"\n');
    const fileOnly = await resolveStoreConfig({ ...base(), configFile: f });
    expect(fileOnly).toMatchObject({ driver: 'vfs', graphroot: '/file/g', runroot: '/file/r' });
    const explicit = await resolveStoreConfig({ ...base(), configFile: f, root: '/opt/g', runroot: '/opt/r', driver: 'overlay' });
    expect(explicit).toMatchObject({ driver: 'overlay', graphroot: '/opt/g', runroot: '/opt/r' });
    const partial = await resolveStoreConfig({ ...base(), configFile: f, root: '/opt/g' });
    expect(partial).toMatchObject({ driver: 'vfs', graphroot: '/opt/g', runroot: '/file/r' });
    const rootless = conf('[storage]\nrootless_storage_path = "/file/rootless"\n', 'rl.conf');
    expect((await resolveStoreConfig({ ...base(), configFile: rootless, uid: 1000, root: '/opt/g', runroot: '/r' })).graphroot).toBe('/opt/g');
  });

  it('a runroot from the file or options never touches the fallback directory', async () => {
    const f = conf('[storage]\nrunroot = "/file/r"\n');
    const env = { HOME: dir, TMPDIR: join(dir, 'no-such-tmp') }; // creating a fallback here would fail
    expect((await resolveStoreConfig({ env, configFile: f })).runroot).toBe('/file/r');
    expect((await resolveStoreConfig({ env, runroot: '/opt/r' })).runroot).toBe('/opt/r');
  });

  it('relative explicit options are resolved against the working directory', async () => {
    const c = await resolveStoreConfig({ ...base(), root: 'rel/root', runroot: 'rel/run' });
    expect(c.graphroot).toBe(join(process.cwd(), 'rel/root'));
    expect(c.runroot).toBe(join(process.cwd(), 'rel/run'));
  });

  it.skipIf(!existsSync('/usr/share/containers/storage.conf'))('reads the distribution storage.conf', async () => {
    const f = '/usr/share/containers/storage.conf';
    const c = await resolveStoreConfig({ ...base(), configFile: f, uid: 1000 });
    expect(c.driver).toBe('overlay');
    expect(c.graphroot).toBe('/var/lib/containers/storage');
    expect(c.runroot).toBe('/run/containers/storage');
    expect(c.warnings.some((w) => w.includes('storage.options.pull_options'))).toBe(true);
    expect(c.warnings.every((w) => !w.includes('unknown key'))).toBe(true);
  });
});

describe('expandPath', () => {
  it.each([
    ['$HOME/x', '/h/x'],
    ['${HOME}/x', '/h/x'],
    ['/a/$UID/b', '/a/7/b'],
    ['/a/${UID}/b', '/a/7/b'],
    ['/a/$UNSET/b', '/a//b'],
    ['/plain', '/plain'],
    ['/cost$', '/cost$'],
  ])('%s → %s', (input, want) => {
    expect(expandPath(input, { HOME: '/h' }, 7)).toBe(want);
  });
});

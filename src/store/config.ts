/**
 * Where a Carrier store lives and what storage.conf says about it.
 *
 * Precedence: explicit options (root/runroot/driver) beat storage.conf, which beats Carrier's own defaults.
 * storage.conf is read only when `configFile` is given or CONTAINERS_STORAGE_CONF is set: unlike podman, Carrier
 * never reads ~/.config/containers/storage.conf or the system files on its own.
 *
 * Carrier's defaults (deliberately not podman's, so the two never share a store by accident):
 *   graphroot  $XDG_DATA_HOME/carrier/storage      (else $HOME/.local/share/carrier/storage)
 *   blobCache  the store's own: <graphroot>/carrier-blob-cache, and for the default graphroot (above) the data dir's
 *              $XDG_DATA_HOME/carrier/cache/blobs, where it has always been. `blobCache` (the CLI's --blob-cache) or
 *              CARRIER_BLOB_CACHE names another one, which may be shared between stores (cache-users.ts).
 *   runroot    $XDG_RUNTIME_DIR/carrier when that is an existing directory owned by the user, else for root
 *              /run/carrier (as podman keeps root's run state under /run, where no other user can create it first),
 *              and for anyone else a private ${TMPDIR:-/tmp}/carrier-run-<uid>; either is created 0700 and verified
 *              (not a symlink, ours, no group/other bits).
 *
 * All disk access goes through fs/promises.
 */
import { lstat, mkdir, chmod, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { CarrierError } from '../errors.js';
import { parseToml } from '../config-toml.js';
import { registerCacheUser } from './cache-users.js';
import { inUserNamespace } from '../host.js';

export interface StoreLocationOptions {
  root?: string;
  runroot?: string;
  driver?: string;
  configFile?: string;
  /**
   * The blob cache directory (default: CARRIER_BLOB_CACHE, else the store's own). A cache named here or in the
   * environment may be shared by several stores: the store records itself in it, and no store then prunes blobs as
   * unreferenced while another uses the cache.
   */
  blobCache?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  /** Where root's run directory is made when XDG_RUNTIME_DIR is not usable: `<systemRunDir>/carrier`. Default /run. */
  systemRunDir?: string;
}

export interface StoreConfig {
  graphroot: string;
  runroot: string;
  driver: 'overlay' | 'vfs';
  blobCache: string;
  additionalImageStores: string[];
  mountProgram?: string;
  mountOpt?: string;
  forceMask?: string;
  configFile?: string;
  warnings: string[];
}

/** Drivers containers/storage knows but Carrier does not implement. */
const FOREIGN_DRIVERS = new Set(['btrfs', 'zfs', 'devmapper', 'aufs', 'windowsfilter']);

type KeyRule = 'use' | 'ignore';
/**
 * Every key containers/storage's storage.conf defines, by table. 'use' keys are honoured; 'ignore' keys are
 * recognised but have no effect in Carrier (each produces a warning). Anything else is unknown (also a warning).
 */
const SCHEMA: Record<string, Record<string, KeyRule>> = {
  '': { storage: 'use' },
  storage: {
    options: 'use',
    driver: 'use',
    graphroot: 'use',
    runroot: 'use',
    rootless_storage_path: 'use',
    driver_priority: 'ignore',
    imagestore: 'ignore',
    transient_store: 'ignore',
  },
  'storage.options': {
    overlay: 'use',
    vfs: 'use',
    btrfs: 'use',
    zfs: 'use',
    thinpool: 'use',
    additionalimagestores: 'use',
    mount_program: 'use',
    mountopt: 'use',
    force_mask: 'use',
    additionallayerstores: 'ignore',
    imagestore: 'ignore',
    size: 'ignore',
    ignore_chown_errors: 'ignore',
    use_composefs: 'ignore',
    skip_mount_home: 'ignore',
    pull_options: 'ignore',
    'disable-volatile': 'ignore',
    'remap-uids': 'ignore',
    'remap-gids': 'ignore',
    'remap-user': 'ignore',
    'remap-group': 'ignore',
    'root-auto-userns-user': 'ignore',
    'auto-userns-min-size': 'ignore',
    'auto-userns-max-size': 'ignore',
  },
  'storage.options.overlay': {
    mount_program: 'use',
    mountopt: 'use',
    force_mask: 'use',
    ignore_chown_errors: 'ignore',
    size: 'ignore',
    inodes: 'ignore',
    skip_mount_home: 'ignore',
    use_composefs: 'ignore',
  },
  'storage.options.vfs': { ignore_chown_errors: 'ignore' },
  'storage.options.btrfs': { min_space: 'ignore', size: 'ignore' },
  'storage.options.zfs': { mountopt: 'ignore', fsname: 'ignore', size: 'ignore' },
  'storage.options.thinpool': Object.fromEntries(
    [
      'autoextend_percent', 'autoextend_threshold', 'basesize', 'blocksize', 'directlvm_device',
      'directlvm_device_force', 'fs', 'log_level', 'min_free_space', 'mkfsarg', 'metadata_size', 'mountopt', 'size',
      'use_deferred_removal', 'use_deferred_deletion', 'xfs_nospace_max_retries',
    ].map((k) => [k, 'ignore' as KeyRule]),
  ),
};

/** What storage.conf contributed; every field optional. */
interface FileSettings {
  driver?: string;
  graphroot?: string;
  runroot?: string;
  additionalImageStores?: string[];
  mountProgram?: string;
  mountOpt?: string;
  forceMask?: string;
}

export async function resolveStoreConfig(opts: StoreLocationOptions = {}): Promise<StoreConfig> {
  const env = opts.env ?? process.env;
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const warnings: string[] = [];

  const configFile = nonEmpty(opts.configFile) ?? nonEmpty(env.CONTAINERS_STORAGE_CONF);
  const file: FileSettings = configFile === undefined ? {} : await readStorageConf(configFile, env, uid, warnings);

  const driver = checkDriver(nonEmpty(opts.driver) ?? file.driver ?? 'overlay', nonEmpty(opts.driver) ? 'driver option' : configFile);
  const dataHome = dataHomeOf(env);

  const root = nonEmpty(opts.root);
  const defaultGraphroot = join(dataHome, 'carrier', 'storage');
  const graphroot = root !== undefined ? resolve(root) : file.graphroot ?? defaultGraphroot;
  const explicitRunroot = nonEmpty(opts.runroot);
  const runroot =
    explicitRunroot !== undefined
      ? resolve(explicitRunroot)
      : file.runroot ?? (await defaultRunroot(env, uid, warnings, rootlessUid(env, uid), opts.systemRunDir ?? '/run'));

  const named = nonEmpty(opts.blobCache) ?? nonEmpty(env.CARRIER_BLOB_CACHE);
  if (named !== undefined && !isAbsolute(named) && opts.blobCache === undefined) {
    throw new CarrierError('CARRIER_INVALID_CONFIG', `CARRIER_BLOB_CACHE must be an absolute path, got "${named}"`);
  }
  const config: StoreConfig = {
    graphroot,
    runroot,
    driver,
    blobCache: named !== undefined ? resolve(named) : graphroot === defaultGraphroot ? join(dataHome, 'carrier', 'cache', 'blobs') : join(graphroot, 'carrier-blob-cache'),
    additionalImageStores: file.additionalImageStores ?? [],
    warnings,
  };
  if (file.mountProgram !== undefined) config.mountProgram = file.mountProgram;
  if (file.mountOpt !== undefined) config.mountOpt = file.mountOpt;
  if (file.forceMask !== undefined) config.forceMask = file.forceMask;
  if (configFile !== undefined) config.configFile = configFile;
  // A store records itself in a cache it names (cache-users.ts); its own default cache needs no record. Best effort: a
  // cache this user cannot write to is one its pulls cannot fill either, and reading it needs no record.
  if (named !== undefined) await registerCacheUser(config.blobCache, graphroot).catch(() => {});
  return config;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

function checkDriver(name: string, source: string | undefined): 'overlay' | 'vfs' {
  // containers/storage accepts "overlay2" as another spelling of "overlay".
  if (name === 'overlay' || name === 'overlay2') return 'overlay';
  if (name === 'vfs') return 'vfs';
  const what = FOREIGN_DRIVERS.has(name) ? `storage driver "${name}" is not supported` : `unknown storage driver "${name}"`;
  throw new CarrierError('CARRIER_UNSUPPORTED', `${source ?? 'driver'}: ${what}; Carrier supports overlay and vfs`);
}

/** $XDG_DATA_HOME when it is absolute (the XDG spec says relative values are to be ignored), else ~/.local/share. */
function dataHomeOf(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME;
  if (xdg && isAbsolute(xdg)) return resolve(xdg);
  const home = nonEmpty(env.HOME) ?? homedir();
  return join(home, '.local', 'share');
}

/**
 * Inside the user namespace `carrier unshare` makes, the process is uid 0 but the store is still the user's: the
 * user's uid comes in CARRIER_ROOTLESS_UID (podman's equivalent is _CONTAINERS_ROOTLESS_UID) and names the
 * private run directory, so commands inside and outside the namespace use the same one.
 */
function rootlessUid(env: NodeJS.ProcessEnv, uid: number): number {
  const v = env.CARRIER_ROOTLESS_UID;
  return uid === 0 && v !== undefined && /^[1-9][0-9]*$/.test(v) ? Number(v) : uid;
}

async function defaultRunroot(env: NodeJS.ProcessEnv, uid: number, warnings: string[], nameUid: number, systemRunDir: string): Promise<string> {
  const system = nameUid === 0 && !inUserNamespace();
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && isAbsolute(xdg)) {
    try {
      const st = await stat(xdg);
      if (st.isDirectory() && st.uid === uid) return join(resolve(xdg), 'carrier');
      warnings.push(`XDG_RUNTIME_DIR ${xdg} is not a directory owned by uid ${uid}; using a private directory under ${system ? systemRunDir : 'TMPDIR'}`);
    } catch {
      warnings.push(`XDG_RUNTIME_DIR ${xdg} does not exist; using a private directory under ${system ? systemRunDir : 'TMPDIR'}`);
    }
  }
  // The host's root never uses a shared /tmp: any local user could make /tmp/carrier-run-0 first and lock root out.
  // (Root of a user namespace, e.g. under `podman unshare`, cannot write the host's /run and keeps the TMPDIR rule.)
  if (system) return privateRunDir(join(systemRunDir, 'carrier'), uid);
  const tmp = env.TMPDIR && isAbsolute(env.TMPDIR) ? resolve(env.TMPDIR) : '/tmp';
  return privateRunDir(join(tmp, `carrier-run-${nameUid}`), uid);
}

/**
 * Creates `dir` 0700, or accepts an existing one only if it is a real directory (not a symlink) owned by `uid`
 * with no group/other permission bits: anything else in a shared /tmp may be another user's trap.
 */
async function privateRunDir(dir: string, uid: number): Promise<string> {
  let created = false;
  try {
    await mkdir(dir, { mode: 0o700 });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw osError(err, dir, 'cannot create run directory');
  }
  if (created) {
    try {
      await chmod(dir, 0o700); // the umask may have left fewer bits; make it exactly 0700
    } catch (err) {
      throw osError(err, dir, 'cannot set mode of run directory');
    }
  }
  let st;
  try {
    st = await lstat(dir);
  } catch (err) {
    throw osError(err, dir, 'cannot inspect run directory');
  }
  const refuse = (why: string): never => {
    throw new CarrierError('CARRIER_UNSAFE_PATH', `refusing run directory ${dir}: ${why}`, { path: dir });
  };
  if (st.isSymbolicLink()) refuse('it is a symbolic link');
  if (!st.isDirectory()) refuse('it is not a directory');
  if (st.uid !== uid) refuse(`it is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o077) !== 0) refuse(`its mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')} grants group/other access`);
  return dir;
}

function osError(err: unknown, path: string, what: string): CarrierError {
  const e = err as NodeJS.ErrnoException;
  const details: { path: string; cause: unknown; errno?: number; syscall?: string } = { path, cause: err };
  if (typeof e?.errno === 'number') details.errno = e.errno;
  if (typeof e?.syscall === 'string') details.syscall = e.syscall;
  return new CarrierError(typeof e?.code === 'string' ? e.code : 'CARRIER_INVALID_CONFIG', `${what} ${path}: ${e?.message ?? String(err)}`, details);
}

// --- storage.conf --------------------------------------------------------------------------------------------------

async function readStorageConf(
  file: string,
  env: NodeJS.ProcessEnv,
  uid: number,
  warnings: string[],
): Promise<FileSettings> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw osError(err, file, 'cannot read storage configuration');
  }
  const doc = parseToml(text, file);
  checkKeys(doc, '', file, warnings);

  const bad = (key: string, why: string): never => {
    throw new CarrierError('CARRIER_INVALID_CONFIG', `${file}: ${key} ${why}`, { path: file });
  };
  const table = (v: unknown, key: string): Record<string, unknown> => {
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad(key, 'must be a table');
    return v as Record<string, unknown>;
  };
  const str = (t: Record<string, unknown>, tableName: string, k: string): string | undefined => {
    const v = t[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return bad(`${tableName}.${k}`, 'must be a string');
    return v === '' ? undefined : v;
  };
  const path = (t: Record<string, unknown>, tableName: string, k: string): string | undefined => {
    const v = str(t, tableName, k);
    if (v === undefined) return undefined;
    const expanded = expandPath(v, env, uid, (name) =>
      warnings.push(`${file}: ${tableName}.${k} refers to unset environment variable $${name}`),
    );
    if (!isAbsolute(expanded)) bad(`${tableName}.${k}`, `must be an absolute path, got "${v}"`);
    return resolve(expanded);
  };

  const storage = table(doc.storage, 'storage');
  const options = table(storage.options, 'storage.options');
  const overlay = table(options.overlay, 'storage.options.overlay');

  const out: FileSettings = {};
  const driver = str(storage, 'storage', 'driver');
  if (driver !== undefined) out.driver = checkDriver(driver, file);

  const graphroot = path(storage, 'storage', 'graphroot');
  const rootless = path(storage, 'storage', 'rootless_storage_path');
  // As in containers/storage, a non-root user's store lives at rootless_storage_path when it is set.
  const effectiveRoot = uid !== 0 && rootless !== undefined ? rootless : graphroot;
  if (effectiveRoot !== undefined) out.graphroot = effectiveRoot;
  const runroot = path(storage, 'storage', 'runroot');
  if (runroot !== undefined) out.runroot = runroot;

  const stores = options.additionalimagestores;
  if (stores !== undefined) {
    if (!Array.isArray(stores) || stores.some((s) => typeof s !== 'string')) {
      bad('storage.options.additionalimagestores', 'must be an array of strings');
    }
    out.additionalImageStores = (stores as string[]).map((s) => {
      if (!isAbsolute(s)) bad('storage.options.additionalimagestores', `entries must be absolute paths, got "${s}"`);
      return resolve(s);
    });
  }

  // The [storage.options.overlay] value wins over the older [storage.options] spelling (c/storage does the same).
  const mountProgram = str(overlay, 'storage.options.overlay', 'mount_program') ?? str(options, 'storage.options', 'mount_program');
  if (mountProgram !== undefined) out.mountProgram = mountProgram;
  const mountOpt = str(overlay, 'storage.options.overlay', 'mountopt') ?? str(options, 'storage.options', 'mountopt');
  if (mountOpt !== undefined) out.mountOpt = mountOpt;
  let forceMask = str(overlay, 'storage.options.overlay', 'force_mask');
  if (forceMask === undefined) {
    const legacy = options.force_mask;
    if (typeof legacy === 'number' && Number.isInteger(legacy) && legacy >= 0) forceMask = `0${legacy.toString(8)}`;
    else if (legacy !== undefined) forceMask = str(options, 'storage.options', 'force_mask');
  }
  if (forceMask !== undefined) out.forceMask = forceMask;
  return out;
}

/** Warns about every key the schema does not honour; descends only into tables the schema knows. */
function checkKeys(table: Record<string, unknown>, prefix: string, file: string, warnings: string[]): void {
  const rules = SCHEMA[prefix];
  for (const [key, value] of Object.entries(table)) {
    const full = prefix === '' ? key : `${prefix}.${key}`;
    const rule = rules?.[key];
    if (rule === undefined) {
      warnings.push(`${file}: unknown key "${full}" ignored`);
    } else if (rule === 'ignore') {
      warnings.push(`${file}: "${full}" is not supported by Carrier and is ignored`);
    } else if (SCHEMA[full] !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      checkKeys(value as Record<string, unknown>, full, file, warnings);
    }
  }
}

/**
 * The expansion containers/storage applies to graphroot, runroot and rootless_storage_path: `$UID` becomes the
 * user's uid, then `$VAR` and `${VAR}` come from the environment (unset → empty, as Go's os.ExpandEnv does;
 * `onUnset` is told). Exported for tests and for other config readers.
 */
export function expandPath(
  value: string,
  env: NodeJS.ProcessEnv,
  uid: number,
  onUnset: (name: string) => void = () => {},
): string {
  const withUid = value.replaceAll('$UID', String(uid));
  return withUid.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced?: string, bare?: string) => {
    const name = (braced ?? bare)!;
    if (name === 'UID') return String(uid); // `${UID}` too: shells do not export UID
    const v = env[name];
    if (v === undefined) {
      onUnset(name);
      return '';
    }
    return v;
  });
}

// Containers: a containers.json record and read-write layer made by the store (so podman sees them, as "storage"
// containers in `podman ps -a --external`), plus Carrier's run configuration and state in the container's userdata
// directory: `<graphroot>/overlay-containers/<id>/userdata/carrier.json`.
import { mkdir, readFile, writeFile, chmod, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CarrierError } from '../errors.js';
import type { ContainerInfo, ImageInfo, Store } from '../store/store.js';
import { writeFileAtomic } from '../store/atomic.js';
import { normalizeLocalName } from '../reference.js';
import { generateSpec, type ContainerMount, type ImageRunConfig, type OciIdMapping, type OciSpec } from '../runtime/spec.js';
import { mkdirInRoot, resolveInRoot } from '../runtime/rootfs.js';
import { deleteRuntimeState, findRuntime, runBundle, signalNumber, type OciRuntime, type RunBundleResult, type SignalRelay } from '../runtime/runtime.js';
import { singleIdMapping } from '../runtime/userns.js';
import { inUserNamespace, processAlive } from '../host.js';
import { createVolume, deleteVolumeFiles, inspectVolume, isVolumeName, listVolumes, type VolumeInfo } from './volumes.js';
import { mountContainerRootfs, unmountContainerRootfs } from './mount.js';

/** `-v` as given: a host path or a named volume (or nothing: an anonymous volume) mounted at `destination`. */
export interface VolumeSpec {
  /** Absolute host path (bind mount) or volume name; undefined for an anonymous volume. */
  source?: string;
  destination: string;
  readOnly?: boolean;
}

export interface CreateContainerOptions {
  name?: string;
  /** Replaces the image's Cmd. */
  cmd?: string[];
  /** Replaces the image's Entrypoint. */
  entrypoint?: string[];
  /** `K=V` (or `K`: the host's value) added to the image's environment. */
  env?: string[];
  workdir?: string;
  /** `user`, `uid`, `user:group`, `uid:gid`. */
  user?: string;
  /** `SRC:DST[:ro]` strings or parsed specs. */
  volumes?: (string | VolumeSpec)[];
  /** Destinations of tmpfs mounts (`DST` or `DST:opts`). */
  tmpfs?: string[];
  tty?: boolean;
  interactive?: boolean;
  /** runc or crun (default: found on PATH). */
  runtime?: string;
  /** Remove the container when its process exits (`run --rm`). */
  autoRemove?: boolean;
}

export interface ContainerConfig {
  image: string;
  imageName: string;
  name: string;
  cmd?: string[];
  entrypoint?: string[];
  env: string[];
  workdir?: string;
  user?: string;
  volumes: VolumeSpec[];
  tmpfs: string[];
  tty: boolean;
  interactive: boolean;
  runtime?: string;
  autoRemove: boolean;
}

export type ContainerStatus = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerState {
  status: ContainerStatus;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  /** The Carrier process that runs the container (running only). */
  pid?: number;
  runtime?: string;
  error?: string;
}

/** carrier.json. */
interface CarrierFile {
  version: 1;
  config: ContainerConfig;
  state: ContainerState;
}

export interface ContainerDetails {
  id: string;
  name: string;
  names: string[];
  image: string;
  imageName: string;
  created: string;
  /** The read-write layer. */
  layer: string;
  /** Who made it: Carrier (carrier.json present) or another tool (podman). */
  origin: 'carrier' | 'external';
  config?: ContainerConfig;
  state: ContainerState;
  /** The command the container runs (Entrypoint + Cmd), as far as known. */
  command: string[];
  /** The container's own upper directory (its writes). */
  upperDir: string;
  info: ContainerInfo;
}

// ---- names --------------------------------------------------------------------------------------------------------

const ADJECTIVES = ['amazing', 'brave', 'calm', 'eager', 'fervent', 'gifted', 'happy', 'jolly', 'keen', 'lucid', 'nifty', 'quirky', 'serene', 'tender', 'vibrant', 'zealous'];
const NOUNS = ['archimedes', 'babbage', 'curie', 'darwin', 'euler', 'fermi', 'galileo', 'hopper', 'kepler', 'lovelace', 'meitner', 'noether', 'pascal', 'ritchie', 'turing', 'wozniak'];

function randomName(): string {
  const b = randomBytes(3);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]}_${NOUNS[b[1]! % NOUNS.length]}_${b[2]!.toString(16).padStart(2, '0')}`;
}

const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

// ---- specs --------------------------------------------------------------------------------------------------------

/** Parses `-v SRC:DST[:OPTS]` / `-v DST` (an anonymous volume). OPTS: ro, rw (z, Z and others are accepted and ignored). */
export function parseVolumeSpec(text: string): VolumeSpec {
  const parts = text.split(':');
  const bad = (why: string): never => {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid volume "${text}": ${why}`);
  };
  if (parts.some((p) => p === '') || parts.length > 3) bad('expected SRC:DST[:OPTIONS]');
  let source: string | undefined;
  let destination: string;
  let opts: string[] = [];
  if (parts.length === 1) {
    destination = parts[0]!;
  } else {
    source = parts[0]!;
    destination = parts[1]!;
    if (parts.length === 3) opts = parts[2]!.split(',');
  }
  if (!destination.startsWith('/')) bad(`destination "${destination}" must be an absolute path`);
  if (source !== undefined && !source.startsWith('/') && !isVolumeName(source)) bad(`"${source}" is neither an absolute path nor a volume name`);
  let readOnly = false;
  for (const o of opts) {
    if (o === 'ro') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else if (!['z', 'Z', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave', 'bind', 'rbind', 'nocopy', 'copy', 'O', 'U', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev'].includes(o)) {
      bad(`unknown option "${o}"`);
    }
  }
  const spec: VolumeSpec = { destination };
  if (source !== undefined) spec.source = source;
  if (readOnly) spec.readOnly = true;
  return spec;
}

function metadataOf(info: ContainerInfo): { imageName?: string; name?: string; createdAt?: number } {
  try {
    const m = JSON.parse(info.metadata ?? '{}') as Record<string, unknown>;
    const out: { imageName?: string; name?: string; createdAt?: number } = {};
    if (typeof m['image-name'] === 'string') out.imageName = m['image-name'];
    if (typeof m.name === 'string') out.name = m.name;
    if (typeof m['created-at'] === 'number') out.createdAt = m['created-at'];
    return out;
  } catch {
    return {};
  }
}

function userdataDir(store: Store, id: string): string {
  return store.containerDataDir(id);
}

function runDir(store: Store, id: string): string {
  return store.containerDataDir(id, 'run');
}

/** The OCI runtime's state directory for this store (`--root`): containers of different stores never collide. */
export function runtimeStateRoot(store: Store, runtime: string): string {
  return join(store.runroot, `carrier-${runtime}`);
}

async function readCarrierFile(store: Store, id: string): Promise<CarrierFile | undefined> {
  try {
    const f = JSON.parse(await readFile(join(userdataDir(store, id), 'carrier.json'), 'utf8')) as CarrierFile;
    return f && f.version === 1 && f.config ? f : undefined;
  } catch {
    return undefined;
  }
}

async function writeCarrierFile(store: Store, id: string, f: CarrierFile): Promise<void> {
  await writeFileAtomic(join(userdataDir(store, id), 'carrier.json'), JSON.stringify(f, null, 2), 0o600);
}

async function updateState(store: Store, id: string, change: (s: ContainerState) => ContainerState): Promise<void> {
  const f = await readCarrierFile(store, id);
  if (!f) return;
  f.state = change(f.state);
  await writeCarrierFile(store, id, f);
}

/** The name a container records for its image: the name the user asked by, normalised as podman does, else the id. */
function imageNameFor(img: ImageInfo, query: string): string {
  let wanted: string | undefined;
  try {
    wanted = normalizeLocalName(query);
  } catch {
    wanted = undefined;
  }
  if (wanted !== undefined && img.names.includes(wanted)) return wanted;
  const direct = img.names.find((n) => n === query);
  if (direct) return direct;
  if (img.id.startsWith(query.replace(/^sha256:/, ''))) return img.id;
  return img.names[0] ?? img.id;
}

// ---- the API ------------------------------------------------------------------------------------------------------

/**
 * Creates a container of `image`: the store's record and read-write layer, with the metadata podman writes
 * (`image-name`, `image-id`, `name`, `created-at`), and Carrier's run configuration in carrier.json.
 */
export async function createContainer(store: Store, image: string, options: CreateContainerOptions = {}): Promise<ContainerDetails> {
  const img = await store.requireImage(image);
  const name = options.name ?? randomName();
  if (!CONTAINER_NAME.test(name)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `container name "${name}" is not valid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
  const volumes = (options.volumes ?? []).map((v) => (typeof v === 'string' ? parseVolumeSpec(v) : v));
  for (const v of volumes) {
    if (v.source?.startsWith('/')) {
      await stat(v.source).catch(() => {
        throw new CarrierError('CARRIER_NOT_FOUND', `bind mount source ${v.source}: no such file or directory`, { path: v.source! });
      });
    }
  }
  for (const t of options.tmpfs ?? []) {
    if (!t.startsWith('/')) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid tmpfs "${t}": the destination must be an absolute path`);
  }
  if (options.runtime !== undefined) await findRuntime(options.runtime);
  const imageName = imageNameFor(img, image);
  const createdAt = Math.floor(Date.now() / 1000);
  const metadata = JSON.stringify({ 'image-name': imageName, 'image-id': img.id, name, 'created-at': createdAt });
  const info = await store.createContainer(img.id, { names: [name], metadata });
  const config: ContainerConfig = {
    image: img.id,
    imageName,
    name,
    env: options.env ?? [],
    volumes,
    tmpfs: options.tmpfs ?? [],
    tty: options.tty === true,
    interactive: options.interactive === true,
    autoRemove: options.autoRemove === true,
  };
  if (options.cmd !== undefined && options.cmd.length > 0) config.cmd = options.cmd;
  if (options.entrypoint !== undefined) config.entrypoint = options.entrypoint;
  if (options.workdir !== undefined) config.workdir = options.workdir;
  if (options.user !== undefined) config.user = options.user;
  if (options.runtime !== undefined) config.runtime = options.runtime;
  try {
    await writeCarrierFile(store, info.id, { version: 1, config, state: { status: 'created' } });
  } catch (err) {
    await store.deleteContainer(info.id).catch(() => {});
    throw err;
  }
  return details(store, info, await imageConfigOf(store, img.id));
}

async function imageConfigOf(store: Store, imageId: string): Promise<ImageRunConfig> {
  try {
    const raw = JSON.parse((await store.imageBigData(imageId, `sha256:${imageId}`)).toString('utf8')) as { config?: ImageRunConfig };
    return raw.config ?? {};
  } catch {
    return {};
  }
}

async function details(store: Store, info: ContainerInfo, imageConfig?: ImageRunConfig): Promise<ContainerDetails> {
  const meta = metadataOf(info);
  const file = await readCarrierFile(store, info.id);
  let state: ContainerState = file?.state ?? { status: 'unknown' };
  // A container whose Carrier process is gone without recording the end (killed): no longer running.
  if (state.status === 'running' && !processAlive(state.pid)) state = { ...state, status: 'exited', error: 'the Carrier process running it is gone' };
  const ic = imageConfig ?? (file ? await imageConfigOf(store, info.image) : {});
  let command: string[] = [];
  if (file) {
    const c = file.config;
    const ep = c.entrypoint ?? ic.Entrypoint ?? [];
    command = [...ep, ...(c.cmd ?? (c.entrypoint !== undefined ? [] : ic.Cmd ?? []))];
  }
  const out: ContainerDetails = {
    id: info.id,
    name: info.names[0] ?? meta.name ?? '',
    names: info.names,
    image: info.image,
    imageName: file?.config.imageName ?? meta.imageName ?? info.image,
    created: info.created ?? (meta.createdAt !== undefined ? new Date(meta.createdAt * 1000).toISOString() : ''),
    layer: info.layer,
    origin: file ? 'carrier' : 'external',
    state,
    command,
    upperDir: store.layerDiffPath(info.layer),
    info,
  };
  if (file) out.config = file.config;
  return out;
}

export async function listContainers(store: Store): Promise<ContainerDetails[]> {
  const all = await store.containers();
  const out: ContainerDetails[] = [];
  for (const c of all) out.push(await details(store, c));
  return out;
}

export async function inspectContainer(store: Store, query: string): Promise<ContainerDetails> {
  const c = await store.container(query);
  if (!c) throw new CarrierError('CARRIER_NOT_FOUND', `no such container ${query}`);
  return details(store, c);
}

export interface RemoveContainerOptions {
  /** Remove a running container too (its process is killed). */
  force?: boolean;
  /** Also remove the anonymous volumes it made (podman's `rm -v`). */
  volumes?: boolean;
}

/** Removes a container: stops it when `force`, unmounts its root file system, drops the runtime's state and the record. */
export async function removeContainer(store: Store, query: string, options: RemoveContainerOptions = {}): Promise<string> {
  const d = await inspectContainer(store, query);
  if (d.state.status === 'running') {
    if (!options.force) {
      throw new CarrierError('CARRIER_IN_USE', `cannot remove container ${d.id} as it is running - running or paused containers cannot be removed without force`);
    }
    const runtime = await findRuntime(d.state.runtime ?? d.config?.runtime).catch(() => undefined);
    if (runtime) await killContainer(store, runtime, d.id, 'KILL');
    // The Carrier process running it records the exit and unmounts; give it a moment.
    for (let i = 0; i < 50 && processAlive(d.state.pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
  for (const name of ['runc', 'crun'] as const) {
    const runtime = await findRuntime(name).catch(() => undefined);
    if (runtime) await deleteRuntimeState(runtime, runtimeStateRoot(store, name), d.id);
  }
  await unmountContainerRootfs(store, d.id, { force: true }).catch(() => {});
  await store.deleteContainer(d.id);
  if (options.volumes && d.config) {
    for (const v of d.config.volumes) {
      if (v.source === undefined || v.source.startsWith('/')) continue;
      const vol = await inspectVolume(store, v.source).catch(() => undefined);
      if (vol?.anonymous) await deleteVolumeFiles(store, vol.name).catch(() => {});
    }
  }
  return d.id;
}

async function killContainer(store: Store, runtime: OciRuntime, id: string, signal: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const p = spawn(runtime.path, ['--root', runtimeStateRoot(store, runtime.name), 'kill', id, signal], { stdio: 'ignore' });
    p.once('error', () => resolve());
    p.once('close', () => resolve());
  });
}

/** The volumes used by containers (volume name → container ids). */
export async function volumeUsers(store: Store): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  for (const c of await listContainers(store)) {
    for (const v of c.config?.volumes ?? []) {
      if (v.source === undefined || v.source.startsWith('/')) continue;
      users.set(v.source, [...(users.get(v.source) ?? []), c.id]);
    }
  }
  return users;
}

/** Removes a volume; one a container uses is refused unless `force`, which removes those containers first. */
export async function removeVolume(store: Store, name: string, options: { force?: boolean } = {}): Promise<void> {
  await inspectVolume(store, name);
  const users = (await volumeUsers(store)).get(name) ?? [];
  if (users.length > 0) {
    if (!options.force) {
      throw new CarrierError('CARRIER_IN_USE', `volume ${name} is being used by the following container(s): ${users.join(', ')}: volume is being used`);
    }
    for (const id of users) await removeContainer(store, id, { force: true });
  }
  await deleteVolumeFiles(store, name);
}

/** Removes every volume no container uses; returns their names. */
export async function pruneVolumes(store: Store): Promise<string[]> {
  const users = await volumeUsers(store);
  const removed: string[] = [];
  for (const v of await listVolumes(store)) {
    if (users.has(v.name)) continue;
    await deleteVolumeFiles(store, v.name);
    removed.push(v.name);
  }
  return removed;
}

/**
 * Removes Carrier's containers that are not running (created or exited), as `podman container prune` does. Containers
 * another tool made (podman's, found in the store without Carrier's userdata) are left alone: their owner keeps state
 * outside the store. Returns the removed ids.
 */
export async function pruneContainers(store: Store): Promise<string[]> {
  const removed: string[] = [];
  for (const c of await listContainers(store)) {
    if (c.origin !== 'carrier' || c.state.status === 'running') continue;
    removed.push(await removeContainer(store, c.id));
  }
  return removed;
}

// ---- running ------------------------------------------------------------------------------------------------------

export interface StartOptions {
  /** Where the container's stdout/stderr go (default: this process's). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Told about things worth a warning (a runtime that does not work here, …). */
  onWarning?: (message: string) => void;
  /** Signals caught since the run began; one that comes before the container starts cancels it. */
  signals?: SignalRelay;
}

export interface RunResult extends RunBundleResult {
  id: string;
  name: string;
  runtime: string;
}

/** Resolves the container's mounts: named volumes made when missing, anonymous ones made, tmpfs options parsed. */
async function resolveMounts(store: Store, config: ContainerConfig, id: string): Promise<ContainerMount[]> {
  const out: ContainerMount[] = [];
  for (const v of config.volumes) {
    if (v.source?.startsWith('/')) {
      out.push({ type: 'bind', source: v.source, destination: v.destination, ...(v.readOnly ? { readOnly: true } : {}) });
      continue;
    }
    let vol: VolumeInfo;
    if (v.source === undefined) {
      vol = await createVolume(store, undefined, { anonymous: true, labels: { 'carrier.container': id } });
      // Remember the name so the next start uses the same volume.
      v.source = vol.name;
      const f = await readCarrierFile(store, id);
      if (f) {
        f.config.volumes = config.volumes;
        await writeCarrierFile(store, id, f);
      }
    } else {
      vol = await createVolume(store, v.source, { ignoreExisting: true });
    }
    out.push({ type: 'bind', source: vol.mountpoint, destination: v.destination, volume: vol.name, ...(v.readOnly ? { readOnly: true } : {}) });
  }
  for (const t of config.tmpfs) {
    const colon = t.indexOf(':');
    const destination = colon === -1 ? t : t.slice(0, colon);
    const opts = colon === -1 ? undefined : t.slice(colon + 1).split(',').filter((o) => o !== '');
    out.push({ type: 'tmpfs', destination, ...(opts ? { options: ['nosuid', 'nodev', ...opts] } : {}) });
  }
  return out;
}

/**
 * Runs a created container in the foreground: mounts its root file system, writes config.json into its userdata
 * directory, runs the OCI runtime with stdio attached and returns its exit code. The mount is released afterwards;
 * with `autoRemove` the container is removed too.
 */
export async function startContainer(store: Store, query: string, options: StartOptions = {}): Promise<RunResult> {
  const d = await inspectContainer(store, query);
  const file = await readCarrierFile(store, d.id);
  if (!file) throw new CarrierError('CARRIER_UNSUPPORTED', `container ${d.id.slice(0, 12)} was not created by Carrier (no carrier.json); it cannot be started by Carrier`);
  if (d.state.status === 'running') throw new CarrierError('CARRIER_IN_USE', `container ${d.name} is already running`);
  const config = file.config;
  let runtime = await findRuntime(config.runtime);
  const imageConfig = await imageConfigOf(store, config.image);
  let result: RunBundleResult | undefined;
  let rootfs: string | undefined;
  try {
    try {
      rootfs = await mountContainerRootfs(store, d.id);
    } catch (err) {
      if ((process.geteuid?.() ?? 0) !== 0 && !inUserNamespace() && err instanceof Error) {
        err.message += " (rootless: run inside Carrier's user namespace — 'carrier unshare', which the CLI enters by itself)";
      }
      throw err;
    }
    const mounts = await resolveMounts(store, config, d.id);
    const { spec } = await generateSpec({
      rootfs,
      id: d.id,
      image: imageConfig,
      ...(config.cmd ? { cmd: config.cmd } : {}),
      ...(config.entrypoint ? { entrypoint: config.entrypoint } : {}),
      env: config.env,
      ...(config.workdir !== undefined ? { workdir: config.workdir } : {}),
      ...(config.user !== undefined ? { user: config.user } : {}),
      mounts,
      terminal: config.tty,
      ...outsideNamespace(),
      annotations: { 'io.podman.annotations.autoremove': config.autoRemove ? 'TRUE' : 'FALSE' },
    });
    await prepareRootfs(store, d.id, rootfs, spec);
    const bundle = userdataDir(store, d.id);
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2), { mode: 0o600 });
    const run = async (rt: OciRuntime): Promise<RunBundleResult> => {
      const early = options.signals?.cancelled;
      if (early) return { exitCode: 128 + (signalNumber(early) ?? 15), signal: early };
      await deleteRuntimeState(rt, runtimeStateRoot(store, rt.name), d.id);
      await updateState(store, d.id, () => ({ status: 'running', startedAt: new Date().toISOString(), pid: process.pid, runtime: rt.name }));
      return runBundle({
        runtime: rt,
        bundle,
        id: d.id,
        stateRoot: runtimeStateRoot(store, rt.name),
        tty: config.tty,
        interactive: config.interactive,
        ...(options.stdout ? { stdout: options.stdout } : {}),
        ...(options.stderr ? { stderr: options.stderr } : {}),
        ...(options.signals ? { signals: options.signals } : {}),
      });
    };
    result = await run(runtime);
    if (result.failure === 'cgroups' && runtime.name === 'crun') {
      // crun refuses hosts with a hybrid cgroup v1/v2 layout; runc copes when the config asks for no resources.
      const runc = await findRuntime('runc').catch(() => undefined);
      if (runc) {
        options.onWarning?.(`crun cannot run containers with this machine's cgroup layout (${result.runtimeError}); using runc instead`);
        runtime = runc;
        result = await run(runtime);
      }
    }
    return { ...result, id: d.id, name: d.name, runtime: runtime.name };
  } finally {
    const end = result;
    await updateState(store, d.id, (s) => ({
      ...s,
      status: 'exited',
      finishedAt: new Date().toISOString(),
      ...(end ? { exitCode: end.exitCode } : { exitCode: 125 }),
      ...(end?.runtimeError ? { error: end.runtimeError } : {}),
      pid: undefined,
    })).catch(() => {});
    await deleteRuntimeState(runtime, runtimeStateRoot(store, runtime.name), d.id);
    if (rootfs !== undefined) await unmountContainerRootfs(store, d.id).catch(() => {});
    if (config.autoRemove) await removeContainer(store, d.id, { force: true }).catch(() => {});
  }
}

/**
 * Unprivileged and outside Carrier's namespace (an API caller that did not enter it; the CLI always does): the store
 * mounts with fuse-overlayfs, and the runtime makes the user namespace itself (runc's rootless mode) with the user
 * as root. Inside the namespace, or as root, the container gets no user namespace of its own.
 */
function outsideNamespace(): { singleIdMapping: boolean; userNamespace?: { uidMappings: OciIdMapping[]; gidMappings: OciIdMapping[] } } {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0 || inUserNamespace()) return { singleIdMapping: singleIdMapping() };
  const gid = process.getegid?.() ?? 0;
  return {
    singleIdMapping: true,
    userNamespace: { uidMappings: [{ containerID: 0, hostID: uid, size: 1 }], gidMappings: [{ containerID: 0, hostID: gid, size: 1 }] },
  };
}

/** What runc expects to find: the working directory and the mount points of the container's own mounts. */
async function prepareRootfs(store: Store, id: string, rootfs: string, spec: OciSpec): Promise<void> {
  await mkdirInRoot(rootfs, spec.process.cwd);
  // /etc/hostname and /etc/hosts as podman gives them (loopback only: no other network).
  const run = runDir(store, id);
  await mkdir(run, { recursive: true, mode: 0o700 });
  const hostname = spec.hostname ?? id.slice(0, 12);
  await writeFile(join(run, 'hostname'), `${hostname}\n`);
  await writeFile(join(run, 'hosts'), `127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost localhost.localdomain\n127.0.1.1\t${hostname}\n`);
  for (const f of ['hostname', 'hosts']) await chmod(join(run, f), 0o644);
  const etc = await resolveInRoot(rootfs, '/etc');
  const etcExists = await stat(etc).then((s) => s.isDirectory(), () => false);
  if (etcExists) {
    for (const f of ['hostname', 'hosts']) {
      spec.mounts.push({ destination: `/etc/${f}`, type: 'bind', source: join(run, f), options: ['bind', 'rprivate', 'ro'] });
    }
  }
}

/** create + start: `carrier run`. */
export async function runContainer(store: Store, image: string, options: CreateContainerOptions = {}, io: StartOptions = {}): Promise<RunResult> {
  const c = await createContainer(store, image, options);
  return startContainer(store, c.id, io);
}

/** Mounts a container's root file system; returns the merged path (reference counted). */
export async function mountContainer(store: Store, query: string): Promise<string> {
  const d = await inspectContainer(store, query);
  return mountContainerRootfs(store, d.id);
}

/** Releases one mount reference (all with `force`); true while the container is still mounted. */
export async function unmountContainer(store: Store, query: string, options: { force?: boolean } = {}): Promise<boolean> {
  const d = await inspectContainer(store, query);
  return unmountContainerRootfs(store, d.id, options);
}

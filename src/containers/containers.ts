// Containers: a containers.json record and read-write layer made by the store (so podman sees them, as "storage"
// containers in `podman ps -a --external`), plus Carrier's run configuration and state in the container's userdata
// directory: `<graphroot>/overlay-containers/<id>/userdata/carrier.json`.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { CarrierError } from '../errors.js';
import type { ContainerInfo, ImageInfo, Store } from '../store/store.js';
import { normalizeLocalName } from '../reference.js';
import { randomBytes } from '../store/ids.js';
import type { ImageRunConfig } from '../runtime/spec.js';
import { deleteRuntimeState, findRuntime, type OciRuntime } from '../runtime/runtime.js';
import { processAlive } from '../host.js';
import { carrierFileData, carrierFilePath, parseCarrierFile, readCarrierFile, runtimeStateRoot } from './state.js';
import { readManyBytes } from '../fs/read-text.js';
import type { CarrierFile, ContainerConfig, ContainerDetails, ContainerState, CreateContainerOptions, VolumeSpec } from './types.js';
export type { ContainerConfig, ContainerDetails, ContainerState, ContainerStatus, CreateContainerOptions, VolumeSpec } from './types.js';
export { runtimeStateRoot } from './state.js';
import { deleteVolumeFiles, inspectVolume, isVolumeName, listVolumes } from './volumes.js';
import { mountContainerRootfs, unmountContainerRootfs } from './mount.js';

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
  let name = options.name ?? randomName();
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
  // read while the store records the container: details() needs it for the command
  const imageConfig = imageConfigOf(store, img.id);
  const createdAt = Math.floor(Date.now() / 1000);
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
  const file: CarrierFile = { version: 1, config, state: { status: 'created' } };
  // carrier.json is written by the store with the container, while its layer is made: the record never appears
  // without it, and create waits for one flush less. A generated name another container has (one in 65536 per
  // container) is drawn again, as podman does, rather than failing the create.
  let info: ContainerInfo | undefined;
  for (let draws = 1; info === undefined; draws++) {
    const metadata = JSON.stringify({ 'image-name': imageName, 'image-id': img.id, name, 'created-at': createdAt });
    info = await store.createContainer(img.id, { names: [name], metadata, userdata: [carrierFileData(file)] }).catch((err: unknown) => {
      if (options.name !== undefined || draws >= 10 || (err as CarrierError).code !== 'CARRIER_EXISTS') throw err;
      name = config.name = randomName();
      return undefined;
    });
  }
  return details(store, info, await imageConfig, file);
}

export async function imageConfigOf(store: Store, imageId: string): Promise<ImageRunConfig> {
  try {
    const raw = JSON.parse((await store.imageBigData(imageId, `sha256:${imageId}`)).toString('utf8')) as { config?: ImageRunConfig };
    return raw.config ?? {};
  } catch {
    return {};
  }
}

/**
 * A container's details; `imageConfig` and `known` (its carrier.json, null when the caller found none) when the
 * caller has them already.
 */
export async function details(store: Store, info: ContainerInfo, imageConfig?: ImageRunConfig, known?: CarrierFile | null): Promise<ContainerDetails> {
  const meta = metadataOf(info);
  const file = known === null ? undefined : (known ?? (await readCarrierFile(store, info.id)));
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
  // Each image's config read once for all the containers made from it, while every container's carrier.json is read
  // by one native job: `carrier ps` paid a lock round trip and a big-data read per container, then a thread-pool
  // round trip per container, then the config reads after the files. A config is read for an image only external
  // containers use too (its answer then unused): it costs nothing that the files' read does not cover.
  const configs = new Map<string, Promise<ImageRunConfig>>();
  for (const c of all) if (!configs.has(c.image)) configs.set(c.image, imageConfigOf(store, c.image));
  const files = (await readManyBytes(all.map((c) => carrierFilePath(store, c.id)))).map((bytes) =>
    Buffer.isBuffer(bytes) ? (parseCarrierFile(bytes.toString('utf8')) ?? null) : null,
  );
  return Promise.all(all.map(async (c, i) => details(store, c, files[i] ? await configs.get(c.image)! : {}, files[i])));
}

export async function inspectContainer(store: Store, query: string): Promise<ContainerDetails> {
  return details(store, await requireContainer(store, query));
}

export interface RemoveContainerOptions {
  /** Remove a running container too (its process is killed). */
  force?: boolean;
  /** Also remove the anonymous volumes it made (podman's `rm -v`). */
  volumes?: boolean;
}

/** Removes a container: stops it when `force`, unmounts its root file system, drops the runtime's state and the record. */
export async function removeContainer(store: Store, query: string, options: RemoveContainerOptions = {}): Promise<string> {
  // no image config: it gives only the command, which removing does not need (a lock round trip and a file read less)
  const c = await requireContainer(store, query);
  // the runtimes' state directories are looked for while carrier.json is read (again after a kill, below)
  let withState = runtimeStates(store, c.id);
  const d = await details(store, c, {});
  if (d.state.status === 'running') {
    if (!options.force) {
      throw new CarrierError('CARRIER_IN_USE', `cannot remove container ${d.id} as it is running - running or paused containers cannot be removed without force`);
    }
    const runtime = await findRuntime(d.state.runtime ?? d.config?.runtime).catch(() => undefined);
    if (runtime) await killContainer(store, runtime, d.id, 'KILL');
    // The Carrier process running it records the exit and unmounts; give it a moment.
    for (let i = 0; i < 50 && processAlive(d.state.pid); i++) await new Promise((r) => setTimeout(r, 100));
    withState = runtimeStates(store, c.id);
  }
  for (const name of await withState) {
    const runtime = await findRuntime(name).catch(() => undefined);
    if (runtime) await deleteRuntimeState(runtime, runtimeStateRoot(store, name), d.id);
  }
  // deleteContainer unmounts the container's layer whatever its mount count (and forgets the count) under the locks
  // it holds anyway: a separate unmount first cost rm a container lookup, two more locks and two mount table reads
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

/**
 * The runtimes that keep state for the container: each keeps a container's state in <its root>/<id>, and a container
 * it never ran has none (spawning `runc delete` to learn so was most of what `carrier rm` of a created container
 * cost). Both looked for together.
 */
async function runtimeStates(store: Store, id: string): Promise<('runc' | 'crun')[]> {
  const names = ['runc', 'crun'] as const;
  const found = await Promise.all(names.map((name) => stat(join(runtimeStateRoot(store, name), id)).then(() => true, () => false)));
  return names.filter((_, i) => found[i]);
}

export async function killContainer(store: Store, runtime: OciRuntime, id: string, signal: string): Promise<void> {
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

/** The container's record (by id, unique id prefix or name), or CARRIER_NOT_FOUND. */
async function requireContainer(store: Store, query: string): Promise<ContainerInfo> {
  const c = await store.container(query);
  if (!c) throw new CarrierError('CARRIER_NOT_FOUND', `no such container ${query}`);
  return c;
}

// mount and umount need only the record's id: not carrier.json and the image's config, which inspect reads

export async function mountContainer(store: Store, query: string): Promise<string> {
  return mountContainerRootfs(store, (await requireContainer(store, query)).id);
}

/** Releases one mount reference (all with `force`); true while the container is still mounted. */
export async function unmountContainer(store: Store, query: string, options: { force?: boolean } = {}): Promise<boolean> {
  return unmountContainerRootfs(store, (await requireContainer(store, query)).id, options);
}

// The container store: containers.json and its lock, each container's data directories
// (`<graphroot>/<driver>-containers/<id>/userdata` and the runroot's), and a container's own read-write layer, made
// with the container and removed with it.
import { join } from 'node:path';
import { CarrierError, settled } from '../errors.js';
import { removeTree } from '../fs/remove.js';
import { writeFileAtomic } from './atomic.js';
import { isFullId, randomId } from './ids.js';
import type { LayerStore } from './layers.js';
import type { StoreLock } from './lock.js';
import type { MountStore } from './mounts.js';
import { copyRecord, dedupe, nowRfc3339, omitEmpty, type ContainerRecord, type RecordFile } from './records.js';
import { makeDirs } from '../fs/batch.js';

const CONTAINER_FIELDS = ['names', 'metadata', 'big-data-names', 'big-data-sizes', 'big-data-digests', 'created', 'uidmap', 'gidmap', 'flags'] as const;

export interface ContainerInfo {
  id: string;
  names: string[];
  image: string;
  layer: string;
  created?: string;
  metadata?: string;
  record: ContainerRecord;
}

export interface CreateContainerOptions {
  names?: string[];
  id?: string;
  metadata?: string;
  /**
   * Files for the container's own data directory (`<graphroot>/<driver>-containers/<id>/userdata`), each written
   * atomically and durably before the record is saved, so no one sees the container without them.
   */
  userdata?: { name: string; data: string | Uint8Array }[];
}

export class ContainerStore {
  constructor(
    readonly file: RecordFile<ContainerRecord>,
    readonly lock: StoreLock,
    /** `<graphroot>/<driver>-containers`. */
    private readonly graphDir: string,
    /** `<runroot>/<driver>-containers`. */
    private readonly runDir: string,
  ) {}

  /** Runs `fn` holding the containers lock, the records reloaded when another process changed them. */
  async with<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.lock.with(exclusive, async () => {
      await this.refresh();
      return fn();
    });
  }

  /** Reloads the records when another process changed them. Hold the lock. */
  async refresh(): Promise<void> {
    await this.file.reloadIfChanged();
  }

  get records(): ContainerRecord[] {
    return this.file.records;
  }

  /** A container by full id, name, or unique id prefix. Hold the lock. */
  find(query: string): ContainerRecord | undefined {
    return this.file.records.find((r) => r.id === query || (r.names ?? []).includes(query)) ?? uniquePrefix(this.file.records, query);
  }

  /** The graphroot's or the runroot's containers directory. */
  dirOf(where: 'graph' | 'run'): string {
    return where === 'run' ? this.runDir : this.graphDir;
  }

  /** A container's own data directory, in the graphroot's or the runroot's containers directory. */
  dataDir(id: string, where: 'graph' | 'run' = 'graph'): string {
    return join(this.dirOf(where), id, 'userdata');
  }

  /** The container's directories (both roots), holding its `userdata`. */
  dirs(id: string): string[] {
    return [join(this.graphDir, id), join(this.runDir, id)];
  }
}

/** The image a container is made from, as far as making it needs. */
export interface ContainerImage {
  id: string;
  topLayer?: string;
}

/**
 * Records a container of an image, with its own empty read-write layer on top of the image's layers. Hold the layers
 * and containers write locks (and the images lock, so the image stays).
 */
export async function createContainerLocked(
  parts: { layers: LayerStore; containers: ContainerStore },
  img: ContainerImage,
  options: CreateContainerOptions,
): Promise<ContainerInfo> {
  const { layers, containers } = parts;
  const id = options.id ?? randomId();
  if (!isFullId(id)) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `container id must be 64 lowercase hex characters`);
  const layerId = randomId();
  const names = dedupe(options.names ?? []);
  for (const c of containers.records) {
    if (c.id === id) throw new CarrierError('CARRIER_EXISTS', `container ${id} already exists`);
    const clash = (c.names ?? []).find((n) => names.includes(n));
    if (clash) throw new CarrierError('CARRIER_EXISTS', `the container name "${clash}" is already in use by ${c.id}`);
  }
  for (const f of options.userdata ?? []) {
    if (!/^[^/\0]+$/.test(f.name) || f.name === '.' || f.name === '..') {
      throw new CarrierError('CARRIER_INVALID_ARGUMENT', `a container data file needs a plain file name, not ${JSON.stringify(f.name)}`);
    }
  }
  const dirs = containers.dirs(id);
  let recorded = false;
  try {
    // The layer, and the container's directories with its data files, together: the record below names both, and
    // neither needs the other. Made one after another, create waited for each flush in turn.
    const layerSaved = layers.createReadWrite(layerId, img.topLayer);
    const dirsMade = Promise.all(
      dirs.map(async (dir, i) => {
        await makeDirs(join(dir, 'userdata'), 0o700);
        // the graphroot's (the first): its own files, each flushed and its name made durable
        if (i === 0) await Promise.all((options.userdata ?? []).map((f) => writeFileAtomic(join(dir, 'userdata', f.name), f.data, 0o600)));
      }),
    );
    const record: ContainerRecord = { id, image: img.id, layer: layerId, metadata: options.metadata ?? '', created: nowRfc3339() };
    if (names.length > 0) record.names = names;
    omitEmpty(record, CONTAINER_FIELDS);
    containers.records.push(record);
    recorded = true;
    // Pipelined: containers.json's new contents are written and flushed at once, while the layer and the directories
    // are made; its rename waits until both are done and layers.json's complete record is durable (renamed, its
    // directory flushed). What a crash (the process killed, or the power cut) leaves at each point:
    // - before layers.json's complete record is durable: layers.json does not name the layer, its marker in the run
    //   root does (LayerStore.createReadWrite), and containers.json is as before; the next open's repair removes the
    //   layer (after a power cut that cleared a tmpfs run root, the orphan sweep does), and the sweep the container's
    //   directories and the temp files (`.<name>.<pid>.<hex>.tmp`, of a pid no longer alive). c/storage reads records
    //   by name and never those temp files, so podman sees the store as before the create.
    // - after it, before containers.json's rename is durable: a complete layer no container names yet, as when the
    //   saves ran one after the other. A power cut cannot keep the new containers.json without it: that rename is only
    //   made once layers.json's is flushed, and the renamed file's contents were flushed before it.
    // - after both: the container, whole.
    // If anything before fails, containers.json is not renamed and its temp file is removed.
    const ready = settled([layerSaved, dirsMade]);
    await settled([ready, containers.file.save(false, ready)]);
    return containerInfo(record);
  } catch (err) {
    // a save that failed after its rename (the directory flush) may have left the record on disk: saved again without
    if (recorded) {
      containers.file.records = containers.records.filter((r) => r.id !== id);
      await containers.file.save().catch(() => {});
    }
    await Promise.allSettled([layers.delete([layerId]), ...dirs.map((dir) => removeTree(dir))]);
    throw err;
  }
}

/**
 * Deletes a container: unmounts its layer (taking the mounts lock, last in the lock order), removes the layer, the
 * record and its directories. Hold the layers and containers write locks.
 */
export async function deleteContainerLocked(
  parts: { layers: LayerStore; containers: ContainerStore; mounts: MountStore },
  c: ContainerRecord,
): Promise<void> {
  const { layers, containers, mounts } = parts;
  const layerIds = layers.get(c.layer) ? [c.layer] : [];
  // The layer is flagged for removal (durably) while it is unmounted: a flagged layer is removed whole by whoever
  // opens the store next, mounted or not. Then the record goes (durably) while the layer's files do: once the flag
  // is on disk, a crash anywhere in either leaves a state the next open completes. Each step settles before a
  // failure is thrown, so none outlives the locks. One after another, rm waited for each in turn.
  const ready = settled([mounts.with(true, () => mounts.forget(c.layer)), layers.flagForRemoval(layerIds)]);
  // Pipelined: containers.json without the container is written and flushed while the flag is; its rename waits for
  // the flag to be durable and the layer unmounted. A crash before that rename finds containers.json as before (the
  // container and its layer, flagged or not: today's states between the two steps) and a temp file of a dead pid the
  // orphan sweep removes; one after it finds the flag on disk, as when the steps ran in turn. If unmounting or
  // flagging fails, nothing is renamed and the container stays recorded.
  const before = containers.file.records;
  containers.file.records = before.filter((r) => r !== c);
  const saved = containers.file.save(false, ready);
  try {
    await ready;
  } catch (err) {
    await saved.catch(() => {});
    containers.file.records = before;
    throw err;
  }
  // the container's directories (both roots' together) go once its record is gone for good, while the layer's files do
  await settled([saved.then(() => settled(containers.dirs(c.id).map((dir) => removeTree(dir)))), layers.removeFlagged(layerIds)]);
}

export function containerInfo(r: ContainerRecord): ContainerInfo {
  const info: ContainerInfo = { id: r.id, names: r.names ?? [], image: r.image, layer: r.layer, record: copyRecord(r) };
  if (r.created) info.created = r.created;
  if (r.metadata) info.metadata = r.metadata;
  return info;
}

function uniquePrefix<T extends { id: string }>(all: T[], query: string): T | undefined {
  if (!/^[0-9a-f]{3,63}$/.test(query)) return undefined;
  const hits = all.filter((x) => x.id.startsWith(query));
  return hits.length === 1 ? hits[0] : undefined;
}

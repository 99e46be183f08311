// The layer store: layers.json and its lock, the incomplete-flag protocol that makes a layer appear whole or not at
// all, each layer's tar-split (`<graphroot>/<driver>-layers/<id>.tar-split.gz`), and the layer rebuilt as its tar.
//
// The incomplete-flag protocol, as c/storage keeps it:
//   1. begin: the record is written flagged `incomplete`, then the driver makes the layer's directories;
//   2. fill: the driver extracts and verifies the content and gives the directory its final mode;
//   3. complete: the filesystem is synced (unless sync is off) and only then the flag cleared (layer-completion.ts).
// A writer holds the layers lock for as long as a layer of its is incomplete, so whoever takes the lock and still
// sees one knows its writer is gone and removes it.
//
// A container's read-write layer (createReadWrite) is empty when made, so it has no content to wait for: its record
// is saved once, complete, after its directories. Before them, a marker in the run root (`creating-<id>`, tmpfs as a rule,
// no flush) names it; a writer killed before the record leaves the marker, and the open that repairs removes what
// it names. c/storage saves an interim incomplete record instead: a flushed save more on the way of every create.
import { readdir, rm, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { fsBatch } from '../fs/batch.js';
import { pathExists } from '../fs/paths.js';
import { CarrierError, settled } from '../errors.js';
import type { AppliedLayer, ImageBudget, RebuiltTar } from '../layer/apply.js';
import { assembleLayer } from '../layer/assemble.js';
import type { Driver } from '../drivers/index.js';
import { notFound } from './failures.js';
import { isFullId } from './ids.js';
import type { StoreLock } from './lock.js';
import { RecordFile, nowRfc3339, omitEmpty, type LayerRecord } from './records.js';

const LAYER_FIELDS = [
  'names', 'parent', 'metadata', 'mountlabel', 'created', 'compressed-diff-digest', 'compressed-size', 'diff-digest',
  'toc-digest', 'diff-size', 'compression', 'uidset', 'gidset', 'flags', 'uidmap', 'gidmap', 'big-data-names',
] as const;

/** c/storage's archive.Compression numbers. */
const COMPRESSION_CODE = { none: 0, gzip: 2, zstd: 4 } as const;

export interface LayerInfo {
  id: string;
  names: string[];
  parent?: string;
  created?: string;
  compressedDigest?: string;
  compressedSize?: number;
  diffDigest?: string;
  diffSize?: number;
  compression?: number;
  uidset: number[];
  gidset: number[];
  incomplete: boolean;
  readOnly: boolean;
}

/** A layer's compressed bytes as a stream, with what else should happen to them as they are applied. */
export interface LayerStream {
  /** The blob's bytes, or (rebuiltTar) the parts the native apply rebuilds the layer's tar from. */
  stream: Readable | RebuiltTar;
  /** A file that receives a copy of the bytes (see ApplyLayerOptions.teeFd). */
  teeFd?: number;
  onBytes?: (total: number) => void;
  /**
   * The stream is the layer's uncompressed tar rebuilt from parts (a partial pull), not its blob: only the diff_id
   * can be checked, and is.
   */
  rebuiltTar?: boolean;
  /** Files the store already holds, by tar name, to reflink instead of writing (ApplyLayerOptions.cloneFrom). */
  cloneFrom?: ReadonlyMap<string, string>;
  /** Hard-link those files where owner, mode, mtime and xattrs match (ApplyLayerOptions.hardlinkClones). */
  hardlinkClones?: boolean;
}

/** What a layer's content must hash to. */
export interface LayerExpectation {
  diffID?: string;
  digest?: string;
  size?: number;
}

/** The name prefix of a read-write layer's marker in the run root's layers directory. */
const CREATING = 'creating-';

export class LayerStore {
  constructor(
    readonly file: RecordFile<LayerRecord>,
    readonly lock: StoreLock,
    readonly driver: Driver,
    /** The store's graphroot. */
    private readonly graphroot: string,
    /** `<graphroot>/<driver>-layers`: layers.json, layers.lock and the tar-splits. */
    readonly dir: string,
    /** `<runroot>/<driver>-layers`: mountpoints.json, and the markers of read-write layers being made. */
    private readonly runDir: string,
  ) {}

  get records(): LayerRecord[] {
    return this.file.records;
  }

  get(id: string): LayerRecord | undefined {
    return this.file.get(id);
  }

  /** Runs `fn` holding the layers lock; a writer that finds another's changes first removes layers left incomplete. */
  async with<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return this.lock.with(exclusive, async () => {
      await this.refresh(exclusive);
      return fn();
    });
  }

  /** Reloads the records when another process changed them; a writer then removes layers left incomplete. Hold the lock. */
  async refresh(exclusive: boolean): Promise<void> {
    if ((await this.file.reloadIfChanged()) && exclusive) await this.removeIncomplete();
  }

  /**
   * Runs a read-only look at the layer records without waiting for a writer: when a pull holds the layers lock
   * (it does for as long as its layers stream in), the last complete layers.json is read instead. Atomic renames make
   * that file consistent; layers still being made are left out.
   */
  async read<T>(fn: (records: readonly LayerRecord[]) => Promise<T>): Promise<T> {
    if (await this.lock.tryLock(false)) {
      try {
        await this.file.reloadIfChanged();
        return await fn(this.file.records);
      } finally {
        this.lock.unlock(false);
      }
    }
    const snapshot = new RecordFile<LayerRecord>(this.file.file, undefined, 'layer');
    await snapshot.load();
    return fn(snapshot.records.filter((r) => r.flags?.incomplete !== true));
  }

  /** Removes the layers a killed writer left incomplete. Hold the write lock. */
  async removeIncomplete(): Promise<string[]> {
    const broken = this.file.records.filter((l) => l.flags?.incomplete === true);
    if (broken.length === 0) return [];
    for (const layer of broken) await this.removeFiles(layer.id);
    const gone = new Set(broken.map((l) => l.id));
    this.file.records = this.file.records.filter((l) => !gone.has(l.id));
    await this.file.save();
    return [...gone];
  }

  tarSplitPath(id: string): string {
    return join(this.dir, `${id}.tar-split.gz`);
  }

  /**
   * The layer's directory of content as the driver stores it (overlay: its own changes; vfs: its whole tree). `root`
   * picks another graphroot of the same driver (an additional image store), laid out as this one.
   */
  contentDir(id: string, root: string = this.graphroot): string {
    const own = this.driver.contentDir(id);
    return root === this.graphroot ? own : join(root, relative(this.graphroot, own));
  }

  /** True when each layer directory holds the layer's whole tree (vfs); false when it holds only its changes. */
  get flat(): boolean {
    return this.driver.flat;
  }

  /** The layer as the tar it was made from, rebuilt from its tar-split and its content: hashes to its `diff-digest`. */
  async export(id: string): Promise<Readable> {
    const layer = await this.with(false, async () => this.file.get(id));
    if (!layer) throw notFound('layer', id);
    if (!(await pathExists(this.tarSplitPath(id)))) {
      throw new CarrierError('CARRIER_NOT_FOUND', `layer ${id} has no tar-split, so its original tar cannot be rebuilt`, { path: this.tarSplitPath(id) });
    }
    return assembleLayer(this.tarSplitPath(id), this.contentDir(id));
  }

  /**
   * The layer's own changes against its parent as the driver archives them (what a commit makes a layer of): an
   * uncompressed tar stream. Hold the layers lock (shared) until the stream has been read.
   */
  async diff(id: string): Promise<Readable> {
    const layer = this.file.get(id);
    if (!layer) throw notFound('layer', id);
    return this.driver.diff(id, layer.parent);
  }

  /**
   * The incomplete-flag protocol, step 1: records are written flagged incomplete and the directories made, before
   * any content. Hold the write lock. Layers are begun in parent-first order.
   */
  async begin(layers: { id: string; parent: string | undefined }[]): Promise<LayerRecord[]> {
    const records = layers.map(({ id, parent }) => {
      const r: LayerRecord = { id, created: nowRfc3339(), flags: { incomplete: true } };
      if (parent !== undefined) r.parent = parent;
      return r;
    });
    this.file.records.push(...records);
    await this.file.save();
    for (const { id, parent } of layers) await this.driver.create(id, parent);
    return records;
  }

  /**
   * A read-write layer (a container's), made ready at once by the driver (vfs copies the parent's tree) and recorded
   * complete, marked meanwhile (see the top of this file). Hold the write lock. Settles once the record is durable.
   */
  createReadWrite(id: string, parent: string | undefined): Promise<LayerRecord> {
    const record: LayerRecord = { id, created: nowRfc3339() };
    if (parent !== undefined) record.parent = parent;
    omitEmpty(record, LAYER_FIELDS);
    // The marker first (see the top of this file); the driver reads the parent meanwhile, and makes the layer's
    // directories once the marker is there. The record, complete, is written and flushed while they are made, and
    // renamed only once they are (a failure removes its temp file and renames nothing): a crash before that rename
    // leaves the marker naming directories no record names, which the next repair removes; one after, the layer.
    const marker = this.creatingMarker(id);
    const named = fsBatch([{ op: 'write', path: marker, data: '', mode: 0o600 }]);
    const made = settled([named, this.driver.createReadWrite(id, parent, { recorded: named })]);
    this.file.records.push(record);
    return this.file.save(false, made).then(() => {
      // the record is durable: the marker names nothing to remove now. Not waited for: a marker a crash leaves
      // behind names a recorded layer, and repair only drops it then
      void unlink(marker).catch(() => {});
      return record;
    });
  }

  /** The marker of a read-write layer being made (createReadWrite). */
  private creatingMarker(id: string): string {
    return join(this.runDir, `${CREATING}${id}`);
  }

  /** The ids the run root's markers name: read-write layers being made, or whose writer was killed making them. */
  async markedCreating(): Promise<string[]> {
    const names = await readdir(this.runDir).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(CREATING) && isFullId(n.slice(CREATING.length))).map((n) => n.slice(CREATING.length));
  }

  /**
   * Removes the read-write layers a killed writer was making (`marked`: {@link markedCreating}; a marker naming no
   * recorded layer) and drops the markers. Hold the write lock, the records loaded.
   */
  async removeAbandoned(marked: string[]): Promise<string[]> {
    const removed: string[] = [];
    for (const id of marked) {
      if (!this.get(id)) {
        await this.driver.remove(id);
        removed.push(id);
      }
      await unlink(this.creatingMarker(id)).catch(() => {});
    }
    return removed;
  }

  /**
   * Step 2: the driver extracts the content, verified against `expect`, and gives the directory its final mode
   * (`parentReady` settles once the parent's content is final; what it writes is charged to `budget`). Step 3 (a
   * LayerCompleter) syncs the filesystem and only then clears the flag. On failure the caller removes the layer. Returns the result and a directory on the
   * filesystem that must be synced. Hold the write lock.
   */
  async fill(
    record: LayerRecord,
    from: Readable | string | LayerStream,
    expect: LayerExpectation,
    signal: AbortSignal | undefined,
    afterApply?: (applied: AppliedLayer) => Promise<void>,
    parentReady?: Promise<void>,
    budget?: ImageBudget,
    /** The file system is synced once the layer is in place (ApplyLayerOptions.writeback). */
    writeback?: boolean,
  ): Promise<{ applied: AppliedLayer; syncDir: string }> {
    const { source, extra } =
      typeof from === 'object' && 'stream' in from
        ? {
            source: from.stream,
            extra: {
              ...(from.teeFd !== undefined ? { teeFd: from.teeFd } : {}),
              ...(from.onBytes ? { onBytes: from.onBytes } : {}),
              ...(from.rebuiltTar ? { compression: 'none' as const } : {}),
              ...(from.cloneFrom ? { cloneFrom: from.cloneFrom } : {}),
              ...(from.hardlinkClones ? { hardlinkClones: true } : {}),
            },
          }
        : { source: from, extra: {} };
    const blob = typeof from === 'object' && 'stream' in from && from.rebuiltTar === true ? {} : expect;
    // afterApply runs once: early when the driver calls it before waiting for the parent (vfs), else here after.
    let after: Promise<void> | undefined;
    const onApplied = (applied: AppliedLayer): Promise<void> => (after ??= afterApply?.(applied) ?? Promise.resolve());
    const applied = await this.driver.applyDiff(record.id, record.parent, source, {
      ...extra,
      tarSplit: this.tarSplitPath(record.id),
      ...(expect.diffID !== undefined ? { expectedDiffID: expect.diffID } : {}),
      ...(blob.digest !== undefined ? { expectedDigest: blob.digest } : {}),
      ...(blob.size !== undefined ? { expectedSize: blob.size } : {}),
      ...(signal ? { signal } : {}),
      ...(parentReady ? { parentReady } : {}),
      ...(budget ? { limits: { budget } } : {}),
      ...(writeback ? { writeback: true } : {}),
      onApplied,
    });
    await onApplied(applied);
    return { applied, syncDir: this.driver.contentDir(record.id) };
  }

  /** Removes layers (records and directories). Hold the write lock. */
  async delete(ids: string[]): Promise<void> {
    await this.flagForRemoval(ids);
    await this.removeFlagged(ids);
  }

  /**
   * Removal, step 1: the layers are flagged incomplete, durably, so a crash from here on leaves layers the next open
   * removes, never a record without its directory. Hold the write lock.
   */
  async flagForRemoval(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const set = new Set(ids);
    for (const l of this.file.records) if (set.has(l.id)) l.flags = { ...(l.flags ?? {}), incomplete: true };
    await this.file.save();
  }

  /**
   * Removal, step 2: the flagged layers' files and then their records go. That last save is interim (its rename is
   * not flushed): a crash that loses it leaves the records flagged, which the next open removes as step 1 ensured, so
   * the outcome is the same either way, and `rm` and `rmi` wait for one directory flush less. Hold the write lock.
   */
  async removeFlagged(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const set = new Set(ids);
    const removed = (async () => {
      for (const id of ids) await this.removeFiles(id);
    })();
    // written and flushed while the files go, renamed once they are gone (never a record lost before its files)
    const before = this.file.records;
    this.file.records = before.filter((l) => !set.has(l.id));
    try {
      await settled([removed, this.file.save(true, removed)]);
    } catch (err) {
      // the files of a layer may be left: its record stays (flagged), here as on disk
      if (!(await removed.then(() => true, () => false))) this.file.records = before;
      throw err;
    }
  }

  private async removeFiles(id: string): Promise<void> {
    // together: nothing orders them (the record is flagged), and each is a thread-pool round trip or several
    await settled([this.driver.remove(id), rm(this.tarSplitPath(id), { force: true }), rm(fileIndexPath(this.tarSplitPath(id)), { force: true })]);
  }
}

/** The layer's index of file digests (src/chunked/file-index.ts), kept beside its tar-split. */
export function fileIndexPath(tarSplitPath: string): string {
  return tarSplitPath.replace(/\.tar-split\.gz$/, '.files.json');
}

/**
 * The incomplete-flag protocol, step 3: the layer's content is in place (and durable, unless sync is off); record
 * what it is and clear the flag.
 */
export function markComplete(record: LayerRecord, applied: AppliedLayer): void {
  Object.assign(record, {
    'compressed-diff-digest': applied.compressedDigest,
    'compressed-size': applied.compressedSize,
    'diff-digest': applied.diffDigest,
    'diff-size': applied.diffSize,
    compression: COMPRESSION_CODE[applied.compression],
    uidset: [...applied.uidset].sort((a, b) => a - b),
    gidset: [...applied.gidset].sort((a, b) => a - b),
  });
  delete record.flags!.incomplete;
  omitEmpty(record, LAYER_FIELDS);
}

export function layerInfo(r: LayerRecord, readOnly: boolean): LayerInfo {
  const info: LayerInfo = {
    id: r.id,
    names: r.names ?? [],
    uidset: r.uidset ?? [],
    gidset: r.gidset ?? [],
    incomplete: r.flags?.incomplete === true,
    readOnly,
  };
  if (r.parent !== undefined) info.parent = r.parent;
  if (r.created !== undefined) info.created = r.created;
  if (r['compressed-diff-digest'] !== undefined) info.compressedDigest = r['compressed-diff-digest'];
  if (r['compressed-size'] !== undefined) info.compressedSize = r['compressed-size'];
  if (r['diff-digest'] !== undefined) info.diffDigest = r['diff-digest'];
  if (r['diff-size'] !== undefined) info.diffSize = r['diff-size'];
  if (r.compression !== undefined) info.compression = r.compression;
  return info;
}

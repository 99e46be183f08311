// One JSON record file of the store (layers.json, images.json, containers.json) and the lock that guards it.
// Records stay the plain objects JSON.parse made, so fields Carrier does not know survive a read-modify-write.
import { CarrierError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { readText } from '../fs/read-text.js';
import { isFullId } from './ids.js';
import type { StoreLock } from './lock.js';

export interface IdMap {
  container_id: number;
  host_id: number;
  size: number;
}

/** A layers.json record, field names as containers/storage writes them. */
export interface LayerRecord {
  id: string;
  names?: string[];
  parent?: string;
  metadata?: string;
  mountlabel?: string;
  created?: string;
  'compressed-diff-digest'?: string;
  'compressed-size'?: number;
  'diff-digest'?: string;
  'toc-digest'?: string;
  'diff-size'?: number;
  compression?: number;
  uidset?: number[];
  gidset?: number[];
  flags?: Record<string, unknown>;
  uidmap?: IdMap[];
  gidmap?: IdMap[];
  'big-data-names'?: string[];
  [field: string]: unknown;
}

/** An images.json record. `digests` is derived on load by c/storage and never written. */
export interface ImageRecord {
  id: string;
  digest?: string;
  names?: string[];
  'names-history'?: string[];
  layer?: string;
  'mapped-layers'?: string[];
  metadata?: string;
  'big-data-names'?: string[];
  'big-data-sizes'?: Record<string, number>;
  'big-data-digests'?: Record<string, string>;
  created?: string;
  flags?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A containers.json record. */
export interface ContainerRecord {
  id: string;
  names?: string[];
  image: string;
  layer: string;
  metadata?: string;
  'big-data-names'?: string[];
  'big-data-sizes'?: Record<string, number>;
  'big-data-digests'?: Record<string, string>;
  created?: string;
  uidmap?: IdMap[];
  gidmap?: IdMap[];
  flags?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A mountpoints.json record (in the run root): a mounted layer, where, and how many mounts it holds. */
export interface MountRecord {
  id: string;
  path: string;
  count: number;
  [field: string]: unknown;
}

/** Drops the named fields when empty, as c/storage's "omitempty" does: empty strings, arrays, maps, zero numbers. Other fields are left as found. */
export function omitEmpty<T extends Record<string, unknown>>(record: T, fields: readonly string[]): T {
  for (const k of fields) {
    const v = record[k];
    const empty =
      v === undefined ||
      v === null ||
      v === '' ||
      v === 0 ||
      v === false ||
      (Array.isArray(v) && v.length === 0) ||
      (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
    if (empty) delete record[k];
  }
  return record;
}

export class RecordFile<R extends { id: string }> {
  records: R[] = [];
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    readonly lock: StoreLock | undefined,
    readonly what: string,
    /** Flushed to disk on save: false for the run root's records, which do not outlive a reboot. */
    readonly durable = true,
  ) {}

  /** Reloads when another writer touched the lock since this process looked. Hold the lock. */
  async reloadIfChanged(): Promise<boolean> {
    try {
      if (!this.lock) await this.load();
      // the first look (every short command's): the file is read while the token is, as the lock is held and neither
      // can change meanwhile; after it, the file only when the token says another process wrote
      else if (!this.lock.looked) await Promise.all([this.lock.modified(), this.load()]);
      else if (await this.lock.modified()) await this.load();
      else return false;
    } catch (err) {
      // not loaded: the next holder loads (and reports) again rather than taking the empty records for the file's
      this.lock?.forget();
      throw err;
    }
    return true;
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readText(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.records = [];
        return;
      }
      throw err;
    }
    if (text.trim() === '') {
      this.records = [];
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CarrierError('CARRIER_CORRUPT_STORE', `${this.file} is not valid JSON: ${(err as Error).message}`, { path: this.file });
    }
    if (parsed === null) parsed = [];
    if (!Array.isArray(parsed) || !parsed.every((r) => typeof r === 'object' && r !== null && typeof r.id === 'string')) {
      throw new CarrierError('CARRIER_CORRUPT_STORE', `${this.file} is not an array of ${this.what} records`, { path: this.file });
    }
    for (const r of parsed as Record<string, unknown>[]) checkRecordIds(this.file, this.what, r);
    this.records = parsed as R[];
  }

  /**
   * Writes the records atomically, then a new last-writer token. Hold the lock exclusively. Saves are serialised.
   * `interim`: a state a crash may as well lose (the one before it is valid too), so its rename is not flushed; the
   * contents still are, so no crash finds the file half written.
   *
   * The token goes to the lock file once the new name is in place and before the directory is flushed (one native
   * job does the rename, the token and the flush in that order): a reader that sees the new token finds the new file.
   * Tokens only tell live processes apart; after a crash none remembers an earlier one, so each reader loads anew.
   *
   * `after`: the rename waits for it, the contents are written and flushed meanwhile (AtomicWriteOptions.after): a
   * record that may only appear once another step is done or durable.
   *
   * The records are written as they are at the call: a caller may change them for the next save while this one
   * waits for an earlier save or for `after`.
   */
  save(interim = false, after?: Promise<unknown>): Promise<void> {
    const text = JSON.stringify(this.records);
    const run = async (): Promise<void> => {
      if (!this.lock || this.lock.readOnly) throw new CarrierError('EROFS', `${this.file} belongs to a read-only store`, { path: this.file });
      const durable = this.durable && interim ? 'contents' : this.durable;
      await writeFileAtomic(this.file, text, 0o600, durable, { touch: this.lock.nextTouch(), ...(after ? { after } : {}) });
    };
    const next = this.saving.then(run, run);
    this.saving = next.catch(() => {});
    return next;
  }

  get(id: string): R | undefined {
    return this.records.find((r) => r.id === id);
  }
}

/**
 * The fields of each record kind that name another record by id, and so become paths (`overlay/<id>`,
 * `<id>.tar-split.gz`, `<d>-images/<id>/`). `id` itself is checked for every kind.
 */
const ID_FIELDS: Record<string, readonly string[]> = {
  layer: ['parent'],
  image: ['layer', 'mapped-layers'],
  container: ['layer', 'image'],
  mount: [],
};

/**
 * Refuses a record whose id, or an id it links to, is not 64 lowercase hex: a damaged or planted record (a store on
 * shared storage, an additional image store) must never turn into a path outside the store. Empty optional links
 * (c/storage writes none, but an image-less container has `image: ""`) are no link.
 */
function checkRecordIds(file: string, what: string, record: Record<string, unknown>): void {
  const bad = (field: string, value: unknown): never => {
    throw new CarrierError(
      'CARRIER_CORRUPT_STORE',
      `${file}: ${what} record ${JSON.stringify(record.id)} has an invalid ${field} ${JSON.stringify(value)} (an id is 64 lowercase hex digits); the record is not followed`,
      { path: file },
    );
  };
  if (!isFullId(record.id as string)) bad('id', record.id);
  for (const field of ID_FIELDS[what] ?? []) {
    const v = record[field];
    if (v === undefined || v === null || v === '') continue;
    const values = Array.isArray(v) ? v : [v];
    for (const x of values) if (typeof x !== 'string' || !isFullId(x)) bad(field, x);
  }
}

/** A record timestamp as c/storage writes one. */
export function nowRfc3339(): string {
  return new Date().toISOString();
}

/** Names in first-seen order, each once. */
export function dedupe(names: readonly string[]): string[] {
  return [...new Set(names)];
}

/** A deep copy of a record, so a caller cannot change the loaded one. */
export function copyRecord<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

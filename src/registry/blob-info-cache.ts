// What Carrier has learned about where a layer's compressed blobs are: for a diff_id, the compressed blobs (digest,
// size, compression) seen for it, and for each the registry repositories known to hold it. A push of a layer that
// would have to be compressed first asks here, so a blob the destination repository already has is skipped (HEAD)
// and one another repository of the same registry has is mounted — without compressing anything. containers/image
// keeps the same facts in its blob-info cache (blobinfocache); this one is a small JSON file beside the blob cache.
//
// The file is rewritten whole (temp file + rename) after each change, re-read first so concurrent pushes lose
// little; it is a cache: a lost or unreadable file only costs a compression. Its size is bounded (the most recently
// used diff_ids, blobs and repositories are kept).
import { readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { makeDirs } from '../fs/batch.js';

export type BlobCompression = 'gzip' | 'zstd' | 'none';

/** A compressed blob known for a diff_id, and the repositories (`path` within a registry) it was seen in. */
export interface KnownBlob {
  digest: string;
  size: number;
  compression: BlobCompression;
  /** Repositories of the registry asked about, most recently seen first. */
  repositories: string[];
}

interface StoredBlob {
  digest: string;
  size: number;
  compression: BlobCompression;
  /** `host/repo` → when it was last seen there (ms since the epoch). */
  seen: Record<string, number>;
}

interface StoredFile {
  version: 1;
  /** diff_id → its compressed blobs. */
  layers: Record<string, StoredBlob[]>;
}

const MAX_LAYERS = 4096;
const MAX_BLOBS_PER_LAYER = 8;
const MAX_LOCATIONS_PER_BLOB = 32;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function valid(b: unknown): b is StoredBlob {
  const x = b as StoredBlob;
  return (
    typeof x === 'object' && x !== null && typeof x.digest === 'string' && DIGEST.test(x.digest) && Number.isSafeInteger(x.size) && x.size >= 0 &&
    (x.compression === 'gzip' || x.compression === 'zstd' || x.compression === 'none') && typeof x.seen === 'object' && x.seen !== null
  );
}

const newest = (b: StoredBlob): number => Math.max(0, ...Object.values(b.seen));

export class BlobInfoCache {
  /** Writes in flight, one after another. */
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  private async load(): Promise<StoredFile> {
    try {
      const doc = JSON.parse(await readFile(this.file, 'utf8')) as StoredFile;
      if (doc?.version !== 1 || typeof doc.layers !== 'object' || doc.layers === null) return { version: 1, layers: {} };
      for (const [k, v] of Object.entries(doc.layers)) {
        const blobs = Array.isArray(v) ? v.filter(valid) : [];
        if (DIGEST.test(k) && blobs.length > 0) doc.layers[k] = blobs;
        else delete doc.layers[k];
      }
      return doc;
    } catch {
      return { version: 1, layers: {} };
    }
  }

  /**
   * The blobs known for `diffID` with `compression`, each with the repositories of `registry` (a host, as in a
   * reference's domain) it was seen in; blobs seen there most recently first, blobs never seen there left out.
   */
  async candidates(diffID: string, compression: BlobCompression, registry: string): Promise<KnownBlob[]> {
    const doc = await this.load();
    const prefix = `${registry}/`;
    const out: (KnownBlob & { at: number })[] = [];
    for (const b of doc.layers[diffID] ?? []) {
      if (b.compression !== compression) continue;
      const here = Object.entries(b.seen).filter(([loc]) => loc.startsWith(prefix)).sort((x, y) => y[1] - x[1]);
      if (here.length === 0) continue;
      out.push({ digest: b.digest, size: b.size, compression: b.compression, repositories: here.map(([loc]) => loc.slice(prefix.length)), at: here[0]![1] });
    }
    return out.sort((a, b) => b.at - a.at).map(({ at: _at, ...k }) => k);
  }

  /** Records that `repository` of `registry` holds `blob`, the compressed form of the layer `diffID`. */
  record(diffID: string, blob: { digest: string; size: number; compression: BlobCompression }, registry: string, repository: string): Promise<void> {
    const write = async (): Promise<void> => {
      const doc = await this.load();
      const blobs = doc.layers[diffID] ?? [];
      let b = blobs.find((x) => x.digest === blob.digest);
      if (!b) {
        b = { digest: blob.digest, size: blob.size, compression: blob.compression, seen: {} };
        blobs.push(b);
      }
      b.seen[`${registry}/${repository}`] = Date.now();
      const locations = Object.entries(b.seen).sort((x, y) => y[1] - x[1]).slice(0, MAX_LOCATIONS_PER_BLOB);
      b.seen = Object.fromEntries(locations);
      doc.layers[diffID] = blobs.sort((x, y) => newest(y) - newest(x)).slice(0, MAX_BLOBS_PER_LAYER);
      const keys = Object.keys(doc.layers);
      if (keys.length > MAX_LAYERS) {
        const recent = keys.map((k) => [k, Math.max(...doc.layers[k]!.map(newest))] as const).sort((x, y) => y[1] - x[1]);
        doc.layers = Object.fromEntries(recent.slice(0, MAX_LAYERS).map(([k]) => [k, doc.layers[k]!]));
      }
      await makeDirs(dirname(this.file), 0o700);
      const tmp = `${this.file}.tmp-${randomBytes(6).toString('hex')}`;
      await writeFile(tmp, JSON.stringify(doc), { mode: 0o600 });
      await rename(tmp, this.file);
    };
    // A cache: a failed write costs a later compression, never the push.
    const next = this.writing.then(write).catch(() => {});
    this.writing = next;
    return next;
  }
}

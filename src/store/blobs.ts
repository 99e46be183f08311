// The blob cache: compressed layer blobs as they came from a registry, addressed by digest, so a layer can be applied
// again (another store, a removed image pulled back) without the network.
//
//   <cache>/sha256/<hex>            a verified blob
//   <cache>/sha256/.tmp-<random>    a blob being written; it becomes <hex> only after the layer it fed verified it
//
// A writer holds an exclusive fcntl OFD lock on its temp file from before it writes the first byte until the file
// has been renamed or unlinked, so garbage collection (gc.ts) can tell a live download from a dead one's leftovers:
// it removes a temp file only when it can take that lock itself. A writer that finds its fresh file already locked
// or unlinked by a collector starts over with another name.
import { open, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { parseDigest } from '../oci/digest.js';
import { native } from '../native.js';
import { fromNative, type NativeFailure } from '../errors.js';
import { makeDirs } from '../fs/batch.js';

/** The name prefix of blobs being written. */
export const TEMP_PREFIX = '.tmp-';

export class BlobCache {
  constructor(readonly root: string) {}

  path(digest: string): string {
    const d = parseDigest(digest);
    return join(this.root, d.algorithm, d.hex);
  }

  /** The cached blob's path when present (and of the expected size); its mtime is refreshed for LRU eviction. */
  async lookup(digest: string, size?: number): Promise<string | undefined> {
    const p = this.path(digest);
    try {
      const st = await stat(p);
      if (!st.isFile() || (size !== undefined && st.size !== size)) return undefined;
      const now = new Date();
      await utimes(p, now, now).catch(() => {});
      return p;
    } catch {
      return undefined;
    }
  }

  /** Starts writing a blob; nothing is visible under its digest until {@link BlobWriter.commit}. */
  async begin(digest: string): Promise<BlobWriter> {
    const d = parseDigest(digest);
    return this.start(d.algorithm, d.hex);
  }

  /**
   * Starts writing a sha256 blob whose digest is known only once it is written (a layer compressed as it is
   * written); {@link BlobWriter.commit} names it.
   */
  async beginUnnamed(): Promise<BlobWriter> {
    return this.start('sha256', undefined);
  }

  private async start(algorithm: string, hex: string | undefined): Promise<BlobWriter> {
    const dir = join(this.root, algorithm);
    await makeDirs(dir, 0o700);
    for (let attempt = 0; ; attempt++) {
      const tmp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
      const fh = await open(tmp, 'wx', 0o600);
      try {
        const locked = await native.lockFile(fh.fd, true, false).catch((f: unknown) => {
          throw fromNative(f as NativeFailure);
        });
        // Not locked: a collector got it between open and lock. Unlinked: a collector already removed it.
        if (locked && (await fh.stat()).nlink > 0) return new BlobWriter(fh, tmp, hex === undefined ? undefined : join(dir, hex));
      } catch (err) {
        await fh.close().catch(() => {});
        await unlink(tmp).catch(() => {});
        throw err;
      }
      await fh.close();
      if (attempt >= 10) throw new Error(`blob cache: could not start writing in ${dir} (temp files keep disappearing)`);
    }
  }

  /**
   * Hashes the cached copies of `blobs` (on a worker thread) and evicts those that are no longer the bytes their
   * digests name: a crash can leave one corrupt, which {@link lookup}, checking only its size, cannot see. Returns the
   * digests evicted. A blob the cache does not hold at its size, or whose digest is not sha256, is left alone.
   */
  async evictBad(blobs: readonly { digest: string; size: number }[]): Promise<string[]> {
    const sha = [...new Map(blobs.filter((b) => parseDigest(b.digest).algorithm === 'sha256').map((b) => [b.digest, b])).values()];
    if (sha.length === 0) return [];
    const got = await native.hashFiles(join(this.root, 'sha256'), sha.map((b) => parseDigest(b.digest).hex), sha.map((b) => b.size)).catch((f: unknown) => {
      const err = fromNative(f as NativeFailure);
      // No cache directory: no cached blob to be bad.
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const bad = sha.filter((b, i) => got[i] !== undefined && got[i] !== '' && got[i] !== b.digest).map((b) => b.digest);
    for (const d of bad) await this.evict(d);
    return bad;
  }

  /** Drops a cached blob (one that failed verification). */
  async evict(digest: string): Promise<void> {
    await unlink(this.path(digest)).catch(() => {});
  }
}

export class BlobWriter {
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    readonly tmpPath: string,
    /** Where the blob goes; undefined for a blob begun unnamed, which {@link commit} names by its digest. */
    readonly finalPath: string | undefined,
  ) {}

  /**
   * The temp file's descriptor, for the writer of the bytes: a pull hands it to applyLayer (`teeFd`), whose native
   * thread copies the blob into it as it decompresses.
   */
  get fd(): number {
    return this.fh.fd;
  }

  /**
   * The blob was verified (by the layer it fed): make it the cached copy (renamed while still locked). `digest` names
   * a blob begun unnamed (it must be the digest of the bytes written).
   */
  async commit(digest?: string): Promise<void> {
    try {
      const target = digest === undefined ? this.finalPath : join(dirname(this.tmpPath), parseDigest(digest).hex);
      if (target === undefined) throw new Error('blob cache: a blob begun unnamed is committed with its digest');
      await rename(this.tmpPath, target);
    } finally {
      await this.close();
    }
  }

  async abort(): Promise<void> {
    await unlink(this.tmpPath).catch(() => {});
    await this.close();
  }

  /** Closing the file drops its lock. */
  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

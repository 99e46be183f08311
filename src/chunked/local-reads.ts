// The store files a partial pull takes its content from, read and hashed in batches on native threads
// (native/file_hash.cc readFiles), one batch ahead of the tar being rebuilt: one thread-pool trip for many files
// instead of four per file, and no hashing on the event loop. A file of up to a batch's bytes is read whole (alone in
// its batch when large): hashing multi-MiB files in JS on the main thread was a partial pull's largest CPU cost.
import { native } from '../native.js';

const BATCH_FILES = 256;
const BATCH_BYTES = 8 << 20;
/** Files up to this size are read in batches (so at most two batches' bytes are held); larger ones are streamed. */
export const BATCHED_FILE_MAX = BATCH_BYTES;

export interface LocalRead {
  /** The file's bytes (empty when it was not a regular file of its size). */
  bytes: Buffer;
  /** `sha256:<hex>` of the bytes; '' when the file was not usable. */
  digest: string;
}

type Batch = { data: Buffer; ends: number[]; digests: string[] };

/** Reads `files` (in the order they will be asked for), keeping the next batch in flight. */
export class LocalReads {
  private readonly batchOf: number[] = [];
  private readonly batches: { paths: string[]; sizes: number[]; first: number }[] = [];
  private readonly pending = new Map<number, Promise<Batch>>();

  constructor(files: readonly { path: string; size: number }[]) {
    let bytes = 0;
    files.forEach((f, i) => {
      let cur = this.batches[this.batches.length - 1];
      if (!cur || cur.paths.length >= BATCH_FILES || (cur.paths.length > 0 && bytes + f.size > BATCH_BYTES)) {
        cur = { paths: [], sizes: [], first: i };
        this.batches.push(cur);
        bytes = 0;
      }
      cur.paths.push(f.path);
      cur.sizes.push(f.size);
      bytes += f.size;
      this.batchOf.push(this.batches.length - 1);
    });
  }

  private load(b: number): Promise<Batch> | undefined {
    if (b >= this.batches.length) return undefined;
    let p = this.pending.get(b);
    if (!p) {
      p = native.readFiles(this.batches[b]!.paths, this.batches[b]!.sizes);
      p.catch(() => {}); // (awaited when asked for)
      this.pending.set(b, p);
    }
    return p;
  }

  /** The `i`th file of the list. */
  async get(i: number): Promise<LocalRead> {
    const b = this.batchOf[i]!;
    const batch = await this.load(b)!;
    this.load(b + 1);
    if (b > 0) this.pending.delete(b - 1);
    const k = i - this.batches[b]!.first;
    return { bytes: batch.data.subarray(k === 0 ? 0 : batch.ends[k - 1]!, batch.ends[k]!), digest: batch.digests[k]! };
  }
}

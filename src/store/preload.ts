// Loading a store's record files while it opens: each part's first use under its lock then only reads the lock's
// last-writer token and finds it unchanged, where it used to load its file then (an open, a read and a close, one
// after another, on every short command's path).
import type { StoreLock } from './lock.js';

/** A part of the store with a record file: its lock, and what reloads the file when another process changed it. */
export interface RecordPart {
  readonly lock: StoreLock;
  refresh(): Promise<void>;
}

/**
 * Loads each part's records under its lock (shared), all at once. A lock another holder has is passed over, not
 * waited for: that part loads on its first use as before. A failure is left for that first use to report.
 */
export async function preloadRecords(parts: readonly RecordPart[]): Promise<void> {
  await Promise.all(
    parts.map(async (part) => {
      if (!(await part.lock.tryLock(false).catch(() => false))) return;
      try {
        await part.refresh();
      } catch {
        // reported by the first use, which loads again
      } finally {
        part.lock.unlock(false);
      }
    }),
  );
}

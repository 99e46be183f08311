// The incomplete-flag protocol's step 3 for many layers at once: completion rounds.
import { open } from 'node:fs/promises';
import { CarrierError } from '../errors.js';
import { native } from '../native.js';
import type { AppliedLayer } from '../layer/apply.js';
import { markComplete } from './layers.js';
import type { LayerRecord } from './records.js';

/**
 * Layers whose content is in place queue here; a round syncs the filesystem once, then clears the flag of every
 * layer it covers and writes layers.json once. While layers are still being applied, a round starts at most every
 * `intervalMs`; once {@link flush} says none are left, at once. A 300-layer image so needs a few dozen rounds instead
 * of 300 syncfs calls and 300 rewrites of a growing layers.json, and a one-layer image waits for nothing. A layer's
 * flag is never cleared before a syncfs that began after its content was in place, unless `sync` is false
 * (CommitOptions.sync: no syncfs at all, as podman).
 */
export class LayerCompleter {
  private waiting: { record: LayerRecord; applied: AppliedLayer; syncDir: string; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private eager = false;

  constructor(
    private readonly save: () => Promise<void>,
    private readonly sync: boolean,
    private readonly intervalMs = 100,
  ) {}

  /** Resolves once the layer is durable (when syncing) and recorded complete; rejects with its round's failure. */
  complete(record: LayerRecord, applied: AppliedLayer, syncDir: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ record, applied, syncDir, resolve, reject });
      this.schedule();
    });
  }

  /** No more layers will come: rounds run back to back from now on. */
  flush(): void {
    this.eager = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.running || this.waiting.length === 0) return;
    if (this.eager) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.round();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.round();
      }, this.intervalMs);
    }
  }

  private async round(): Promise<void> {
    this.running = true;
    const round = this.waiting.splice(0);
    try {
      // All of a store's layer directories are on the graphroot's filesystem: one syncfs covers the round.
      if (this.sync) await syncFilesystem(round[0]!.syncDir);
      for (const l of round) markComplete(l.record, l.applied);
      await this.save();
      for (const l of round) l.resolve();
    } catch (err) {
      for (const l of round) l.reject(err);
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}

async function syncFilesystem(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await native.syncFs(fh.fd).catch((f: unknown) => {
      throw new CarrierError((f as { code: string }).code, (f as { message: string }).message, { path: dir });
    });
  } finally {
    await fh.close();
  }
}

// The incomplete-flag protocol's step 3 for many layers at once: completion rounds.
import { open } from 'node:fs/promises';
import { CarrierError } from '../errors.js';
import { native } from '../native.js';
import type { AppliedLayer } from '../layer/apply.js';
import { markComplete } from './layers.js';
import type { LayerRecord } from './records.js';

interface Waiting {
  record: LayerRecord;
  applied: AppliedLayer;
  syncDir: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Layers whose content is in place queue here; a round syncs the filesystem once, then clears the flag of every
 * layer it covers and writes layers.json once. While layers are still being applied, a round starts at most every
 * `intervalMs`; once {@link flush} says none are left, at once. A 300-layer image so needs a few dozen rounds instead
 * of 300 syncfs calls and 300 rewrites of a growing layers.json, and a one-layer image waits for nothing. A layer's
 * flag is never cleared before a syncfs that began after its content was in place, unless `sync` is false
 * (CommitOptions.sync: no syncfs at all, as podman).
 *
 * Nor is it cleared while its parent's is still set: a layer whose parent is incomplete waits for a round that
 * completes the parent too (or a later one). A power cut between two rounds would otherwise leave a complete layer on
 * a parent the next open removes as incomplete (found by test/power-loss.test.ts).
 */
export class LayerCompleter {
  private waiting: Waiting[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private eager = false;

  constructor(
    private readonly save: () => Promise<void>,
    private readonly sync: boolean,
    /** The store's record of a layer (a parent's, to see whether it is still incomplete). */
    private readonly get: (id: string) => LayerRecord | undefined,
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

  /** The waiting layers a round can complete now, parents first: each one's parent is complete, or is one of them. */
  private ready(): Waiting[] {
    const byId = new Map(this.waiting.map((w) => [w.record.id, w]));
    const verdict = new Map<string, boolean>();
    const out: Waiting[] = [];
    const visit = (w: Waiting): boolean => {
      const known = verdict.get(w.record.id);
      if (known !== undefined) return known;
      const parentId = w.record.parent;
      const parent = parentId !== undefined ? this.get(parentId) : undefined;
      const queued = parentId !== undefined ? byId.get(parentId) : undefined;
      const ok = parent?.flags?.incomplete !== true || (queued !== undefined && visit(queued));
      verdict.set(w.record.id, ok);
      if (ok) out.push(w);
      return ok;
    };
    for (const w of this.waiting) visit(w);
    return out;
  }

  private schedule(): void {
    if (this.running || this.waiting.length === 0) return;
    if (this.ready().length === 0) {
      // Each waits for a parent still being applied, which will queue here and bring them along. Once no more
      // layers will come (flush), their parents failed: they can never be completed.
      if (this.eager) {
        const stuck = this.waiting.splice(0);
        for (const w of stuck) w.reject(new CarrierError('CARRIER_NOT_FOUND', `layer ${w.record.id}: its parent ${w.record.parent} was not made`));
      }
      return;
    }
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
    const round = this.ready(); // parents first
    if (round.length === 0) {
      this.running = false;
      return;
    }
    this.waiting = this.waiting.filter((w) => !round.includes(w));
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

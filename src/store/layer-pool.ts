// The commit worker pool: the missing layers of an image are begun together, filled by a few workers at once
// (overlay layers do not depend on each other's content), and completed in rounds; the first failure stops the rest
// and removes every layer the pool began, so a failed commit leaves the store as it was.
import type { Readable } from 'node:stream';
import { CONTENT_ERRORS, CarrierError, abortError } from '../errors.js';
import { imageBudget, type AppliedLayer } from '../layer/apply.js';
import { LayerCompleter } from './layer-completion.js';
import type { LayerStore, LayerStream } from './layers.js';

/** One layer of an image being committed: its content comes from `open()` only if the store lacks it. */
export interface CommitLayer {
  diffID: string;
  digest?: string;
  size?: number;
  open(): Promise<Readable | string | LayerStream>;
  /**
   * Called once the layer's content is settled: with the verified result before the store makes it durable, or
   * with undefined when the layer failed or was not needed after all (a pull moves its cached blob into place here).
   */
  settle?(applied: AppliedLayer | undefined): Promise<void>;
}

export interface CommitOptions {
  signal?: AbortSignal;
  /** Layers applied at once (overlay layers do not depend on each other's content). Default 3. */
  concurrency?: number;
  onLayer?: (event: { diffID: string; id: string; state: 'exists' | 'applying' | 'applied' }) => void;
  /**
   * false: a layer is recorded complete without first flushing its content to disk (no syncfs), as podman does.
   * Faster (a syncfs is 0.2-1.5 s on a large image), but a power loss soon after the pull can leave a layer that is
   * recorded complete with files missing or empty; a killed process cannot. For throwaway machines (CI runners).
   * Metadata files are still written atomically either way. Default true.
   */
  sync?: boolean;
  /**
   * Bytes of file content the image's new layers may write to disk in all (runs of zeros are left as holes and not
   * counted); past it the commit fails with CARRIER_LIMIT_EXCEEDED and the store is left as it was. Default:
   * {@link defaultImageBudget} of the layers' declared sizes. Infinity: no budget.
   */
  maxImageBytes?: number;
}

const GiB = 1024 ** 3;

/**
 * The default image budget: 50 times the compressed size the layers declare, and at least 8 GiB. Real layers
 * expand 2-10 times (runs of zeros, which compress best, cost nothing); a few MB of gzip that would expand into
 * many GB of data is refused instead of filling the disk.
 */
export function defaultImageBudget(declaredSizes: readonly (number | undefined)[]): number {
  const declared = declaredSizes.reduce<number>((sum, n) => sum + (n ?? 0), 0);
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(8 * GiB, 50 * declared));
}

/** A layer to make: its storage id, its parent's, and where its content comes from. */
export interface PlannedLayer {
  id: string;
  parent: string | undefined;
  layer: CommitLayer;
}

interface Gate {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function gate(): Gate {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * Makes the `missing` layers (parent first) and returns the ids it applied. Hold the layers write lock. On failure
 * every layer begun here is removed again and the first failure thrown.
 */
export async function fillLayers(layers: LayerStore, missing: PlannedLayer[], options: CommitOptions): Promise<Set<string>> {
  const applied = new Set<string>();
  let failure: unknown;
  const limit = options.maxImageBytes ?? defaultImageBudget(missing.map((p) => p.layer.size));
  const budget = limit === Infinity ? undefined : imageBudget(limit);
  if (options.signal?.aborted) throw abortError(options.signal);
  const n = Math.max(1, Math.min(options.concurrency ?? 3, missing.length));
  // The first layers' sources are opened while their records are written (a registry's GET is a round trip; the
  // records are a flushed layers.json): nothing is extracted before a layer is recorded incomplete.
  const early = new Map(missing.slice(0, n).map((p) => [p.id, p.layer.open()]));
  for (const o of early.values()) o.catch(() => {});
  // Parents must exist before children are recorded, but content can be extracted for all at once.
  let begun: Awaited<ReturnType<LayerStore['begin']>>;
  try {
    begun = await layers.begin(missing.map((p) => ({ id: p.id, parent: p.parent })));
  } catch (err) {
    await Promise.all(missing.filter((p) => early.has(p.id)).map(async (p) => {
      closeSource(await early.get(p.id)!.catch(() => undefined));
      await p.layer.settle?.(undefined).catch(() => {});
    }));
    throw err;
  }
  const queue = missing.map((p, i) => ({ ...p, record: begun[i]! }));
  // vfs merges each layer over its parent's finished tree: a layer's merge waits for its parent (one begun by this
  // commit; others exist already). Layers are taken parent first, so a waited-for parent is in flight.
  const ready = new Map(missing.map((p) => [p.id, gate()]));
  // Content that is in place is made durable and recorded complete in rounds (one syncfs and one layers.json write
  // for every layer that finished meanwhile), while the workers go on with the next layers.
  const completer = new LayerCompleter(() => layers.file.save(), options.sync ?? true, (id) => layers.get(id));
  const completions: Promise<void>[] = [];
  // The first failure stops the layers still in flight.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const worker = async (): Promise<void> => {
    while (queue.length > 0 && failure === undefined) {
      const p = queue.shift()!;
      options.onLayer?.({ diffID: p.layer.diffID, id: p.id, state: 'applying' });
      let settled = false;
      const opening = early.get(p.id);
      early.delete(p.id);
      try {
        if (signal.aborted) {
          if (opening) closeSource(await opening.catch(() => undefined));
          throw abortError(signal);
        }
        const source = await (opening ?? p.layer.open());
        const filled = await layers.fill(
          p.record,
          source,
          {
            diffID: p.layer.diffID,
            ...(p.layer.digest !== undefined ? { digest: p.layer.digest } : {}),
            ...(p.layer.size !== undefined ? { size: p.layer.size } : {}),
          },
          signal,
          async (result) => {
            settled = true;
            await p.layer.settle?.(result);
          },
          p.parent !== undefined ? ready.get(p.parent)?.promise : undefined,
          budget,
          options.sync ?? true,
        );
        ready.get(p.id)!.resolve();
        const completion = completer.complete(p.record, filled.applied, filled.syncDir).then(
          () => {
            applied.add(p.id);
            options.onLayer?.({ diffID: p.layer.diffID, id: p.id, state: 'applied' });
          },
          (err: unknown) => {
            stop.abort(); // the layers still in flight would be removed anyway
            throw err;
          },
        );
        completion.catch(() => {}); // read below, after the workers: not an unhandled rejection meanwhile
        completions.push(completion);
      } catch (err) {
        ready.get(p.id)!.reject(err);
        if (!settled) await p.layer.settle?.(undefined).catch(() => {});
        failure ??= namingBlob(err, p.layer.digest);
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
  // Sources opened early for layers a failure kept the workers from: closed, their settle told.
  for (const [id, opening] of early) {
    closeSource(await opening.catch(() => undefined));
    await missing.find((p) => p.id === id)?.layer.settle?.(undefined).catch(() => {});
  }
  completer.flush();
  // Every round has ended once every completion has (each round settles all of its layers).
  for (const outcome of await Promise.allSettled(completions)) {
    if (outcome.status === 'rejected') failure ??= outcome.reason;
  }
  if (failure !== undefined) {
    await layers.delete(missing.map((p) => p.id)).catch(() => {});
    throw failure;
  }
  return applied;
}

/** A layer source opened and not handed to `fill`: its stream is closed (a path, or a tar to rebuild, holds nothing open). */
function closeSource(source: Readable | string | LayerStream | undefined): void {
  if (source === undefined || typeof source === 'string') return;
  const stream = 'stream' in source ? source.stream : source;
  if (!('plan' in stream)) stream.destroy();
}

/** A content error names the blob whose bytes were wrong (once): the decoder that found it knows no digest. */
function namingBlob(err: unknown, digest: string | undefined): unknown {
  if (digest !== undefined && err instanceof CarrierError && CONTENT_ERRORS.has(err.code) && !err.message.includes(digest)) {
    err.message = `layer blob ${digest}: ${err.message}`;
  }
  return err;
}

import { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import { RegistryError } from './errors.js';
import { SpeedGuard, discard, sleep, stopError, tooSlow, type LowSpeed, type Response } from './http.js';

/**
 * A blob body that survives dropped connections: each response body is read in flowing mode (its chunks are pushed
 * on as they come, the body paused while the consumer is full), and a reset or a short body is resumed from the
 * next byte with a new request. Flowing mode, not an async iterator, because a layer blob is a thousand or more
 * chunks and each iterator step costs promise and tick round trips on the main thread, which a pull on two cores
 * pays for in wall time.
 *
 * Bounded against a registry that never lets go: resumes without progress stop after `maxRetries`, resumes in all
 * after `maxResumes`, every retry is charged to the client's budget (`spendRetry`), and a body slower than `speed`
 * ends the download.
 */
export class BlobStream extends Readable {
  private body: Readable | undefined;
  private guard: SpeedGuard | undefined;
  private offset = 0;
  private failures = 0;
  private resumes = 0;
  private offsetAtFailure = -1;
  /** The first body has not been attached yet (nobody has read). */
  private pending = false;
  private progressSoon: NodeJS.Immediate | undefined;

  constructor(
    first: Response,
    private readonly o: {
      digest: string;
      registry: string;
      size: number | undefined;
      signal: AbortSignal;
      maxRetries: number;
      maxResumes: number;
      speed: LowSpeed;
      backoff: (failures: number) => number;
      /** Charges one retry and its wait to the client's budgets; throws when one is spent; returns the wait. */
      spendRetry: (what: string, waitMs: number) => number;
      reopen: (offset: number) => Promise<Response>;
      onProgress?: (bytes: number, total: number | undefined) => void;
    },
  ) {
    super({ highWaterMark: 1 << 20 });
    // The first body is read only once the consumer asks: until then this stream can fail with nobody listening
    // for its 'error' (a caller awaiting something else first), which would end the process.
    this.body = first.body;
    this.pending = true;
  }

  private what(): string {
    return `blob ${this.o.digest} from ${this.o.registry}`;
  }

  private attach(body: Readable): void {
    this.body = body;
    if (body.destroyed) {
      // The first body, failed before anyone read it: its events are gone, so resume now.
      this.retryFrom(body.errored ?? new RegistryError('CARRIER_TRUNCATED', `${this.what()}: the connection closed before the body was read`));
      return;
    }
    const { size } = this.o;
    const guard = new SpeedGuard(this.o.speed, (bytes, ms) => {
      if (this.body === body) this.destroy(tooSlow(`${this.what()} (at byte ${this.offset})`, this.o.speed, bytes, ms));
    });
    this.guard = guard;
    body.on('data', (chunk: Buffer) => {
      if (this.body !== body) return;
      guard.add(chunk.length);
      if (size !== undefined && this.offset + chunk.length > size) {
        this.destroy(new RegistryError('CARRIER_LIMIT_EXCEEDED', `${this.what()} has more bytes than its size ${size}`));
        return;
      }
      this.offset += chunk.length;
      if (!this.push(chunk)) {
        body.pause();
        guard.pause();
      }
      if (this.o.onProgress) this.progressSoon ??= setImmediate(() => this.progress());
    });
    body.on('end', () => {
      if (this.body !== body) return;
      if (size === undefined || this.offset === size) {
        this.letGo();
        this.progress();
        this.push(null);
      } else this.retryFrom(new RegistryError('CARRIER_TRUNCATED', `${this.what()} ended after ${this.offset} of ${size} bytes`));
    });
    body.on('error', (err: unknown) => {
      if (this.body !== body) return;
      if (this.o.signal.aborted) this.destroy(this.stopped());
      else if (err instanceof CarrierError) this.destroy(err);
      else this.retryFrom(err);
    });
  }

  private stopped(): CarrierError {
    return stopError(this.o.signal, `${this.what()} at byte ${this.offset}${this.o.size !== undefined ? ` of ${this.o.size}` : ''}`);
  }

  /**
   * Reports the bytes received so far, once per turn of the event loop at most. Chunks themselves are passed on as
   * they come, not joined: a consumer in flowing mode batches them as it needs (applyLayer hands a turn's chunks to
   * its job in one call), and one that reads (an async iterator) gets all the bytes waiting as one chunk anyway.
   */
  private progress(): void {
    if (this.progressSoon) clearImmediate(this.progressSoon);
    this.progressSoon = undefined;
    this.o.onProgress?.(this.offset, this.o.size);
  }

  /** Lets go of the current body (its late errors go nowhere) and its speed guard. */
  private letGo(): void {
    this.guard?.stop();
    this.guard = undefined;
    const body = this.body;
    this.body = undefined;
    if (body) discard(body);
  }

  /** Drops the current body and asks again from the next byte, within the bounds above. */
  private retryFrom(err: unknown): void {
    this.letGo();
    if (this.offset > this.offsetAtFailure) this.failures = 0;
    this.offsetAtFailure = this.offset;
    const { maxRetries, maxResumes, signal } = this.o;
    const why = (err as Error)?.message ?? String(err);
    const code = err instanceof CarrierError ? err.code : 'CARRIER_REGISTRY_ERROR';
    if (++this.failures > maxRetries) {
      this.destroy(new RegistryError(code, `${this.what()}: giving up after ${maxRetries} resumes at byte ${this.offset} without progress: ${why}`, { cause: err }));
      return;
    }
    if (++this.resumes > maxResumes) {
      this.destroy(new RegistryError(code, `${this.what()}: giving up after ${maxResumes} resumes in all (maxResumesPerBlob), at byte ${this.offset}: ${why}`, { cause: err }));
      return;
    }
    let wait: number;
    try {
      wait = this.o.spendRetry(`resuming ${this.what()} at byte ${this.offset} after: ${why}`, this.o.backoff(this.failures - 1));
    } catch (e) {
      this.destroy(e as Error);
      return;
    }
    sleep(wait, signal)
      .then(() => this.o.reopen(this.offset))
      .then(
        (res) => {
          if (this.destroyed) discard(res.body);
          else this.attach(res.body);
        },
        (e: unknown) => this.destroy(signal.aborted ? this.stopped() : (e as Error)),
      );
  }

  override _read(): void {
    if (this.pending) {
      this.pending = false;
      this.attach(this.body!);
      return;
    }
    this.guard?.resume();
    this.body?.resume();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.progressSoon) clearImmediate(this.progressSoon);
    this.progressSoon = undefined;
    this.letGo();
    cb(err);
  }
}

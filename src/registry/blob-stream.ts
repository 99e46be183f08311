import { Readable } from 'node:stream';
import { CarrierError, abortError } from '../errors.js';
import { RegistryError } from './errors.js';
import { sleep, type Response } from './http.js';

/**
 * A blob body that survives dropped connections: each response body is read in flowing mode (its chunks are pushed
 * on as they come, the body paused while the consumer is full), and a reset or a short body is resumed from the
 * next byte with a new request. Flowing mode, not an async iterator, because a layer blob is a thousand or more
 * chunks and each iterator step costs promise and tick round trips on the main thread, which a pull on two cores
 * pays for in wall time.
 */
export class BlobStream extends Readable {
  private body: Readable | undefined;
  private offset = 0;
  private failures = 0;
  private offsetAtFailure = -1;

  constructor(
    first: Response,
    private readonly o: {
      digest: string;
      registry: string;
      size: number | undefined;
      signal: AbortSignal;
      maxRetries: number;
      backoff: (failures: number) => number;
      reopen: (offset: number) => Promise<Response>;
      onProgress?: (bytes: number, total: number | undefined) => void;
    },
  ) {
    super({ highWaterMark: 1 << 16 });
    this.attach(first.body);
  }

  private attach(body: Readable): void {
    this.body = body;
    const { size, digest, registry } = this.o;
    body.on('data', (chunk: Buffer) => {
      if (this.body !== body) return;
      if (size !== undefined && this.offset + chunk.length > size) {
        this.destroy(new RegistryError('CARRIER_LIMIT_EXCEEDED', `blob ${digest} from ${registry} has more bytes than its size ${size}`));
        return;
      }
      this.offset += chunk.length;
      const more = this.push(chunk);
      this.o.onProgress?.(this.offset, size);
      if (!more) body.pause();
    });
    body.on('end', () => {
      if (this.body !== body) return;
      if (size === undefined || this.offset === size) this.push(null);
      else this.retryFrom(new RegistryError('CARRIER_TRUNCATED', `blob ${digest} from ${registry} ended after ${this.offset} of ${size} bytes`));
    });
    body.on('error', (err: unknown) => {
      if (this.body !== body) return;
      if (this.o.signal.aborted) this.destroy(abortError(this.o.signal));
      else if (err instanceof CarrierError) this.destroy(err);
      else this.retryFrom(err);
    });
  }

  /** Drops the current body and asks again from the next byte, or gives up after maxRetries without progress. */
  private retryFrom(err: unknown): void {
    this.body?.destroy();
    this.body = undefined;
    if (this.offset > this.offsetAtFailure) this.failures = 0;
    this.offsetAtFailure = this.offset;
    const { maxRetries, digest, registry, signal } = this.o;
    if (++this.failures > maxRetries) {
      const code = err instanceof CarrierError ? err.code : 'CARRIER_REGISTRY_ERROR';
      this.destroy(new RegistryError(code, `blob ${digest} from ${registry}: giving up after ${maxRetries} resumes at byte ${this.offset}: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      return;
    }
    sleep(this.o.backoff(this.failures - 1), signal)
      .then(() => this.o.reopen(this.offset))
      .then(
        (res) => {
          if (this.destroyed) res.body.destroy();
          else this.attach(res.body);
        },
        (e: unknown) => this.destroy(e as Error),
      );
  }

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.body?.destroy();
    this.body = undefined;
    cb(err);
  }
}

// What bounds a registry client as a whole: its overall deadline (RegistryClientOptions.timeoutMs), one timer whose
// abort reason is a CARRIER_TIMEOUT, so every request, backoff sleep and blob body still open stops with an error that
// says why; and its retry budget (maxTotalRetries, maxRetryWaitMs), shared by every request and blob resume.
import { CarrierError } from '../errors.js';
import { RegistryError } from './errors.js';

export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  readonly signal = this.controller.signal;

  constructor(readonly ms: number) {
    if (!Number.isFinite(ms) || ms <= 0) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid timeout ${ms} ms`);
    this.timer = setTimeout(() => {
      const secs = ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
      this.controller.abort(new CarrierError('CARRIER_TIMEOUT', `registry operations did not finish within the ${secs} s timeout`));
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

export class RetryBudget {
  private retries = 0;
  private waitedMs = 0;

  constructor(private readonly maxRetries: number, private readonly maxWaitMs: number) {}

  /** Charges one retry (`what`, for the message) and the wait before it; throws once either budget is spent. */
  spend(what: string, waitMs: number): number {
    if (++this.retries > this.maxRetries) {
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `giving up: ${this.maxRetries} retries spent in all (maxTotalRetries); the last was ${what}`);
    }
    if (this.waitedMs + waitMs > this.maxWaitMs) {
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `giving up: ${Math.round(this.waitedMs / 1000)} s already spent waiting to retry, of ${Math.round(this.maxWaitMs / 1000)} s (maxRetryWaitMs); the last was ${what}`);
    }
    this.waitedMs += waitMs;
    return waitMs;
  }
}

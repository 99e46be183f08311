// The client's overall deadline (RegistryClientOptions.timeoutMs): one timer whose abort reason is a CARRIER_TIMEOUT,
// so every request, backoff sleep and blob body the client has open stops with an error that says why.
import { CarrierError } from '../errors.js';

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

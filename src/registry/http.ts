// HTTP plumbing of the registry client: undici's Agent loaded lean, and the small helpers every request uses
// (bounded body reads, error summaries, retry classification, abortable sleeps).
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import { CarrierError, abortError } from '../errors.js';

export type Agent = UndiciAgent;
let agentClass: typeof UndiciAgent | undefined;

/** A new undici Agent; undici is loaded on the first call, so commands that never reach a registry never load it. */
export function newAgent(options: ConstructorParameters<typeof UndiciAgent>[0]): Agent {
  agentClass ??= loadAgent();
  return new agentClass(options);
}

/**
 * undici's Agent and its `request` method, without the rest of the package: the package index also loads fetch,
 * WebSocket, the caches and the mocks, about 90 ms of start-up on every `carrier pull` spent for nothing. The index
 * does no more than this for the two pieces used here (it puts the api methods on Dispatcher.prototype). Should a
 * future undici move these files, the whole package is loaded instead.
 */
function loadAgent(): typeof UndiciAgent {
  const require = createRequire(import.meta.url);
  try {
    const agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
    const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: Record<string, unknown> };
    const api = require('undici/lib/api/index.js') as Record<string, unknown>;
    if (typeof agent === 'function' && typeof api.request === 'function' && agent.prototype instanceof (dispatcher as unknown as Function)) {
      for (const [name, fn] of Object.entries(api)) if (dispatcher.prototype[name] === undefined) dispatcher.prototype[name] = fn;
      return agent;
    }
  } catch {
    // the files moved: fall through
  }
  return (require('undici') as { Agent: typeof UndiciAgent }).Agent;
}

const MAX_ERROR_BODY = 64 * 1024;
/** Longest wait for a body that is read only to be dropped. */
const DRAIN_MS = 5_000;

export type Response = Dispatcher.ResponseData;

export const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
// UND_ERR_INVALID_ARG: undici refused the request itself (a header it cannot send); asking again cannot help.
const PERMANENT_NET_CODES = /^(?:CERT_|ERR_TLS_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(?:VERIFY|GET)|ERR_SSL_|ERR_INVALID_URL|ENOTFOUND|UND_ERR_INVALID_ARG)/;

/**
 * The error for a stopped operation: the client's overall deadline (a CARRIER_TIMEOUT given as the abort reason)
 * is reported as itself (after `context`, what was under way), any other abort as ABORT_ERR.
 */
export function stopError(signal: AbortSignal, context?: string): CarrierError {
  const reason: unknown = signal.reason;
  if (!(reason instanceof CarrierError && reason.code === 'CARRIER_TIMEOUT')) return abortError(signal);
  return context === undefined ? reason : new CarrierError('CARRIER_TIMEOUT', `${context}: ${reason.message}`, { cause: reason });
}

/**
 * Drops a response body unread. undici's body emits RequestAbortedError when destroyed before its end; without a
 * listener that error would end the process, so one is attached first.
 */
export function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(stopError(signal));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(stopError(signal));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const date = Date.parse(t);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Reads and drops a small body so the connection can be reused; a big or slow one drops the connection instead. */
export async function drain(res: Response): Promise<void> {
  try {
    await res.body.dump({ limit: 256 * 1024, signal: AbortSignal.timeout(DRAIN_MS) });
  } catch {
    /* the connection is dropped instead */
  }
}

/**
 * Reads a body, refusing it as soon as it passes `cap` bytes (and before reading, when Content-Length says so), and
 * ending it when it arrives slower than `speed` allows.
 */
export async function readCapped(res: Response, cap: number, what: string, code = 'CARRIER_LIMIT_EXCEEDED', speed: LowSpeed = DEFAULT_LOW_SPEED): Promise<Buffer> {
  const len = header(res, 'content-length');
  if (len !== undefined && /^\d+$/.test(len) && Number(len) > cap) {
    discard(res.body);
    throw new CarrierError(code, `${what} is ${len} bytes, over the ${cap}-byte cap`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  let slow: CarrierError | undefined;
  const guard = new SpeedGuard(speed, (bytes, ms) => {
    slow = tooSlow(what, speed, bytes, ms);
    res.body.destroy(slow);
  });
  try {
    for await (const c of res.body) {
      const chunk = c as Buffer;
      total += chunk.length;
      guard.add(chunk.length);
      if (total > cap) {
        discard(res.body);
        throw new CarrierError(code, `${what} is over the ${cap}-byte cap`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (slow) throw slow;
    if (err instanceof CarrierError) throw err;
    throw new CarrierError('CARRIER_REGISTRY_ERROR', `${what}: the connection failed after ${total} bytes: ${errCode(err) ? errCode(err) + ': ' : ''}${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    guard.stop();
  }
  return Buffer.concat(chunks, total);
}

/** curl's low-speed rule: a transfer slower than `limit` bytes per second over `timeMs` is ended. 0 disables it. */
export interface LowSpeed {
  limit: number;
  timeMs: number;
}

/** 1 KiB/s averaged over 30 s: a link that slow cannot finish a layer, and a registry that slow is holding the pull. */
export const DEFAULT_LOW_SPEED: LowSpeed = { limit: 1024, timeMs: 30_000 };

export function tooSlow(what: string, speed: LowSpeed, bytes: number, ms: number): CarrierError {
  const secs = (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
  return new CarrierError('CARRIER_REGISTRY_ERROR', `${what} is too slow: ${bytes} bytes in ${secs} s, under the ${speed.limit} bytes/s minimum (lowSpeedLimit)`);
}

/**
 * Watches one body's rate over tumbling windows of `timeMs` of active time: time while the reader holds the body
 * paused (a full consumer) does not count. Calls `onSlow` once when a window ends under the limit.
 */
export class SpeedGuard {
  private bytes = 0;
  private activeMs = 0;
  private since: number | undefined = Date.now();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly speed: LowSpeed, private readonly onSlow: (bytes: number, ms: number) => void) {
    if (speed.limit > 0 && speed.timeMs > 0) {
      this.timer = setInterval(() => this.check(), Math.max(10, Math.floor(speed.timeMs / 4)));
      this.timer.unref();
    }
  }

  add(n: number): void {
    this.bytes += n;
  }

  pause(): void {
    if (this.since === undefined) return;
    this.activeMs += Date.now() - this.since;
    this.since = undefined;
  }

  resume(): void {
    if (this.since === undefined) this.since = Date.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private check(): void {
    const now = Date.now();
    const active = this.activeMs + (this.since !== undefined ? now - this.since : 0);
    if (active < this.speed.timeMs) return;
    if (this.bytes < (this.speed.limit * active) / 1000) {
      this.stop();
      this.onSlow(this.bytes, active);
      return;
    }
    this.bytes = 0;
    this.activeMs = 0;
    if (this.since !== undefined) this.since = now;
  }
}

/** The registry's JSON error body, summarised (codes and messages, printable, bounded). */
export async function errorSummary(res: Response): Promise<{ codes: string[]; text: string }> {
  let body: Buffer;
  try {
    body = await readCapped(res, MAX_ERROR_BODY, 'error body');
  } catch {
    return { codes: [], text: '' };
  }
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(doc.errors)) {
      const codes = doc.errors.map((e) => String(e?.code ?? '')).filter(Boolean);
      const text = doc.errors.map((e) => `${String(e?.code ?? '')}: ${String(e?.message ?? '')}`).join('; ');
      return { codes, text: printable(text) };
    }
  } catch {
    /* not JSON */
  }
  const text = body.toString('utf8');
  // A web server's error page says nothing a user needs, and its markup fills the terminal.
  if (/^\s*<(?:!doctype|html|\?xml|head|body)\b/i.test(text) || /^text\/html\b/i.test(header(res, 'content-type') ?? '')) return { codes: [], text: 'an HTML page' };
  return { codes: [], text: printable(text) };
}

export function printable(s: string, max = 300): string {
  const cut = s.length > max ? s.slice(0, max) + '…' : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}

export function errCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return String(e?.code ?? e?.cause?.code ?? '');
}

/** Connection-level failures worth retrying (resets, timeouts, refused connections), not TLS trust failures. */
export function isRetryableNetworkError(err: unknown): boolean {
  if (err instanceof CarrierError) return false;
  const code = errCode(err);
  if (PERMANENT_NET_CODES.test(code)) return false;
  return true;
}


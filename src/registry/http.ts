// HTTP plumbing of the registry client: undici's Agent loaded lean, and the small helpers every request uses
// (bounded body reads, error summaries, retry classification, abortable sleeps).
import { createRequire } from 'node:module';
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

export type Response = Dispatcher.ResponseData;

export const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const PERMANENT_NET_CODES = /^(?:CERT_|ERR_TLS_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(?:VERIFY|GET)|ERR_SSL_|ERR_INVALID_URL|ENOTFOUND)/;

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal));
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

export async function drain(res: Response): Promise<void> {
  try {
    await res.body.dump({ limit: 256 * 1024 });
  } catch {
    /* the connection is dropped instead */
  }
}

/** Reads a body, refusing it as soon as it passes `cap` bytes (and before reading, when Content-Length says so). */
export async function readCapped(res: Response, cap: number, what: string, code = 'CARRIER_LIMIT_EXCEEDED'): Promise<Buffer> {
  const len = header(res, 'content-length');
  if (len !== undefined && /^\d+$/.test(len) && Number(len) > cap) {
    res.body.destroy();
    throw new CarrierError(code, `${what} is ${len} bytes, over the ${cap}-byte cap`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of res.body) {
    const chunk = c as Buffer;
    total += chunk.length;
    if (total > cap) {
      res.body.destroy();
      throw new CarrierError(code, `${what} is over the ${cap}-byte cap`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
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
  return { codes: [], text: printable(body.toString('utf8')) };
}

export function printable(s: string): string {
  const cut = s.length > 300 ? s.slice(0, 300) + '…' : s;
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


/**
 * The registry client (OCI distribution spec, pull side) on undici: `/v2/` ping and scheme choice, bearer tokens
 * from `WWW-Authenticate` challenges (cached per host and scope), basic auth, manifests with a streaming size cap and
 * media-type checks, and blobs as a Readable that resumes with `Range` after a dropped connection.
 *
 * Every answer is untrusted: digests are validated before they enter a URL, manifest bodies are capped while they
 * stream, redirects never carry Authorization to another origin, and blob bodies may not exceed their size.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import { CarrierError, abortError } from '../errors.js';
import { parseReference, type ImageReference } from '../reference.js';
import { digestMatches, parseDigest, sha256Digest } from '../oci/digest.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V1,
  DOCKER_MANIFEST_V1_SIGNED,
  OCI_INDEX,
  OCI_MANIFEST,
  manifestKind,
} from '../oci/mediatypes.js';
import { MAX_DOCUMENT_BYTES, choosePlatform, hostPlatform, parseManifest, type ImageManifest, type PlatformWant } from '../oci/manifest.js';
import { resolveRegistry, type RegistriesConf, type RegistryEndpoint } from '../registries-conf.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { RegistryError } from './errors.js';

type Agent = UndiciAgent;
const Agent = loadAgent();

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
import type { CredentialStore, Credentials } from './auth.js';

export interface RegistryClientOptions {
  /** false: plain http and untrusted TLS certificates are allowed for every registry (podman --tls-verify=false). */
  tlsVerify?: boolean;
  /** Mirrors, blocked and insecure registries, location rewrites. */
  registriesConf?: RegistriesConf;
  credentials?: CredentialStore;
  userAgent?: string;
  /** Retries per request on connection errors, 408, 429 and 5xx; and resumes of a blob without progress. Default 5. */
  maxRetries?: number;
  /** First backoff delay, doubled per attempt (with jitter), capped at 10 s. Default 200 ms. */
  retryBaseMs?: number;
  /** Longest Retry-After honoured (ms); longer values are clamped. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Time to wait for response headers, and the longest pause between body chunks. Default 60 s. */
  requestTimeoutMs?: number;
  /** Cancels everything this client does. */
  signal?: AbortSignal;
  /** Warnings (ignored settings); never given credentials. */
  onWarning?: (message: string) => void;
}

/** The endpoint that served a manifest. */
export interface ManifestSource {
  registry: string;
  repository: string;
  mirror: boolean;
  /** `https://host` or `http://host` actually used. */
  origin: string;
}

export interface FetchedDocument {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface GetManifestOptions {
  /** Accept header values (default: OCI and Docker schema 2 manifests and indexes). */
  accept?: string[];
  /** Platform to pick from an index (default: this machine). */
  platform?: PlatformWant;
  signal?: AbortSignal;
}

export interface GetManifestResult extends FetchedDocument {
  /** The image manifest, parsed and validated. */
  manifest: ImageManifest;
  /** The index / manifest list it was chosen from, when the reference named one. */
  list?: FetchedDocument;
  source: ManifestSource;
}

export interface GetBlobOptions {
  /** The descriptor's size: more bytes are refused, fewer mean the download resumes. */
  size?: number;
  signal?: AbortSignal;
  /** Bytes delivered so far (after each chunk). */
  onProgress?: (bytes: number, total: number | undefined) => void;
}

const DEFAULT_ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST];
const MAX_TOKEN_RESPONSE = 1 << 20;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 10;

interface Target {
  /** Registry name (credentials key): `docker.io`, `host:port`. */
  registry: string;
  /** Host contacted: `registry-1.docker.io` for docker.io. */
  apiHost: string;
  repository: string;
  insecure: boolean;
  mirror: boolean;
}

interface HostState {
  origin: string;
  challenge: Challenge | null;
}

interface CachedToken {
  value: string;
  expires: number;
}

type Response = Dispatcher.ResponseData;

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const PERMANENT_NET_CODES = /^(?:CERT_|ERR_TLS_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(?:VERIFY|GET)|ERR_SSL_|ERR_INVALID_URL|ENOTFOUND)/;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
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

function header(res: Response, name: string): string | undefined {
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

async function drain(res: Response): Promise<void> {
  try {
    await res.body.dump({ limit: 256 * 1024 });
  } catch {
    /* the connection is dropped instead */
  }
}

/** Reads a body, refusing it as soon as it passes `cap` bytes (and before reading, when Content-Length says so). */
async function readCapped(res: Response, cap: number, what: string, code = 'CARRIER_LIMIT_EXCEEDED'): Promise<Buffer> {
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
async function errorSummary(res: Response): Promise<{ codes: string[]; text: string }> {
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

function printable(s: string): string {
  const cut = s.length > 300 ? s.slice(0, 300) + '…' : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}

function errCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return String(e?.code ?? e?.cause?.code ?? '');
}

/** Connection-level failures worth retrying (resets, timeouts, refused connections), not TLS trust failures. */
function isRetryableNetworkError(err: unknown): boolean {
  if (err instanceof CarrierError) return false;
  const code = errCode(err);
  if (PERMANENT_NET_CODES.test(code)) return false;
  return true;
}

function mergeScopes(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

export class RegistryClient {
  private readonly tlsVerify: boolean;
  private readonly conf: RegistriesConf | undefined;
  private readonly credentials: CredentialStore | undefined;
  private readonly userAgent: string;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly timeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly secureAgent: Agent;
  private readonly insecureAgent: Agent;
  private readonly hosts = new Map<string, Promise<HostState>>();
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  /** Where the last manifest of a repository came from: blobs are fetched there first. */
  private readonly preferred = new Map<string, Target>();

  constructor(opts: RegistryClientOptions = {}) {
    this.tlsVerify = opts.tlsVerify ?? true;
    this.conf = opts.registriesConf;
    this.credentials = opts.credentials;
    this.userAgent = opts.userAgent ?? 'carrier';
    this.maxRetries = opts.maxRetries ?? 5;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    this.timeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.signal = opts.signal;
    const common = { keepAliveTimeout: 30_000, connections: 32 };
    this.secureAgent = new Agent(common);
    this.insecureAgent = new Agent({ ...common, connect: { rejectUnauthorized: false } });
    for (const w of opts.registriesConf?.warnings ?? []) opts.onWarning?.(w);
  }

  /** Closes the connection pools. */
  async close(): Promise<void> {
    await Promise.all([this.secureAgent.close(), this.insecureAgent.close()]);
  }

  // --- endpoints ------------------------------------------------------------------------------------------------

  private combinedSignal(signal?: AbortSignal): AbortSignal {
    const list = [signal, this.signal].filter((s): s is AbortSignal => s !== undefined);
    if (list.length === 0) return new AbortController().signal;
    return list.length === 1 ? list[0]! : AbortSignal.any(list);
  }

  private toRef(ref: ImageReference | string): ImageReference {
    return typeof ref === 'string' ? parseReference(ref) : ref;
  }

  private targets(ref: ImageReference): Target[] {
    const resolved = resolveRegistry(this.conf, ref);
    if (resolved.blocked) {
      throw new CarrierError('CARRIER_BLOCKED', `registry ${ref.domain} is blocked in registries.conf (prefix "${resolved.match?.prefix}")`);
    }
    return resolved.endpoints.map((ep: RegistryEndpoint) => ({
      registry: ep.registry,
      apiHost: ep.registry === 'docker.io' ? 'registry-1.docker.io' : ep.registry,
      repository: ep.repository,
      insecure: ep.insecure || !this.tlsVerify,
      mirror: ep.mirror,
    }));
  }

  private agentFor(insecure: boolean): Agent {
    return insecure ? this.insecureAgent : this.secureAgent;
  }

  // --- HTTP -----------------------------------------------------------------------------------------------------

  /** One request, following redirects itself; Authorization goes only to the origin it was meant for. */
  private async dispatch(
    url: URL,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    insecure: boolean,
    signal: AbortSignal,
  ): Promise<{ res: Response; url: URL }> {
    const authOrigin = url.origin;
    let current = url;
    let m: 'GET' | 'HEAD' = method;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = { 'user-agent': this.userAgent, ...headers };
      if (current.origin !== authOrigin) delete h.authorization;
      const res = await this.agentFor(insecure).request({
        origin: current.origin,
        path: current.pathname + current.search,
        method: m,
        headers: h,
        signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      if (![301, 302, 303, 307, 308].includes(res.statusCode)) return { res, url: current };
      const location = header(res, 'location');
      await drain(res);
      if (location === undefined) throw new RegistryError('CARRIER_REGISTRY_ERROR', `redirect ${res.statusCode} without a Location from ${current.origin}`, { status: res.statusCode });
      if (hop >= MAX_REDIRECTS) throw new RegistryError('CARRIER_REGISTRY_ERROR', `too many redirects fetching ${url.pathname}`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch (err) {
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `invalid redirect location from ${current.origin}`, { cause: err });
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `redirect to unsupported scheme ${next.protocol}`);
      }
      if (current.protocol === 'https:' && next.protocol === 'http:' && !insecure) {
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `refusing a redirect from https to plain http (${next.host})`);
      }
      if (res.statusCode === 303) m = 'GET';
      current = next;
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(10_000, this.retryBaseMs * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  /** dispatch() with retries on connection errors and 408/429/5xx (honouring Retry-After). */
  private async dispatchRetrying(
    url: URL,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    insecure: boolean,
    signal: AbortSignal,
    retries = this.maxRetries,
  ): Promise<{ res: Response; url: URL }> {
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw abortError(signal);
      let out: { res: Response; url: URL };
      try {
        out = await this.dispatch(url, method, headers, insecure, signal);
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        if (attempt >= retries || !isRetryableNetworkError(err)) throw this.networkError(url, err);
        await sleep(this.backoff(attempt), signal);
        continue;
      }
      if (!RETRYABLE_STATUS.has(out.res.statusCode) || attempt >= retries) return out;
      const retryAfter = parseRetryAfter(header(out.res, 'retry-after'));
      await drain(out.res);
      const delay = retryAfter !== undefined ? Math.min(retryAfter, this.maxRetryAfterMs) : this.backoff(attempt);
      await sleep(delay, signal);
    }
  }

  private networkError(url: URL, err: unknown): CarrierError {
    if (err instanceof CarrierError) return err;
    const code = errCode(err);
    return new RegistryError('CARRIER_REGISTRY_ERROR', `cannot reach ${url.origin}: ${code ? code + ': ' : ''}${(err as Error)?.message ?? String(err)}`, { cause: err });
  }

  // --- ping and auth --------------------------------------------------------------------------------------------

  private hostKey(t: Target): string {
    return `${t.apiHost}|${t.insecure ? 'insecure' : 'secure'}`;
  }

  /** `GET /v2/`: decides the scheme (https, or http when insecure and https fails) and records the challenge. */
  private host(t: Target, signal: AbortSignal): Promise<HostState> {
    const key = this.hostKey(t);
    let p = this.hosts.get(key);
    if (!p) {
      p = this.ping(t, signal);
      this.hosts.set(key, p);
      p.catch(() => this.hosts.delete(key));
    }
    return p;
  }

  private async ping(t: Target, signal: AbortSignal): Promise<HostState> {
    const tryOrigin = async (origin: string, retries: number): Promise<HostState> => {
      const { res } = await this.dispatchRetrying(new URL('/v2/', origin), 'GET', {}, t.insecure, signal, retries);
      const challenges = res.statusCode === 401 ? parseChallenges(res.headers['www-authenticate']) : [];
      await drain(res);
      if (res.statusCode !== 200 && res.statusCode !== 401 && res.statusCode >= 500) {
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `pinging ${origin}/v2/: status ${res.statusCode}`, { status: res.statusCode });
      }
      const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
      return { origin, challenge };
    };
    const https = `https://${t.apiHost}`;
    if (!t.insecure) return tryOrigin(https, this.maxRetries);
    try {
      return await tryOrigin(https, 0);
    } catch (err) {
      if (signal.aborted) throw abortError(signal);
      try {
        return await tryOrigin(`http://${t.apiHost}`, this.maxRetries);
      } catch {
        throw err;
      }
    }
  }

  private creds(t: Target): Credentials | undefined {
    return this.credentials?.lookup(t.registry, t.repository);
  }

  private async token(t: Target, host: HostState, challenge: Challenge, scopes: string[], signal: AbortSignal, fresh: boolean): Promise<string> {
    const creds = this.creds(t);
    const key = `${host.origin}|${challenge.params.realm}|${challenge.params.service ?? ''}|${scopes.join(' ')}|${creds?.username ?? ''}`;
    const cached = this.tokens.get(key);
    if (cached && !fresh) {
      const tok = await cached.catch(() => undefined);
      if (tok && tok.expires > Date.now()) return tok.value;
    }
    const p = this.fetchToken(t, challenge, scopes, creds, signal);
    this.tokens.set(key, p);
    p.catch(() => {
      if (this.tokens.get(key) === p) this.tokens.delete(key);
    });
    return (await p).value;
  }

  private async fetchToken(t: Target, challenge: Challenge, scopes: string[], creds: Credentials | undefined, signal: AbortSignal): Promise<CachedToken> {
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `${t.apiHost} sent a bearer challenge without a valid realm`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RegistryError('CARRIER_REGISTRY_ERROR', `token realm has unsupported scheme ${url.protocol}`);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds) {
      url.searchParams.set('account', creds.username);
      headers.authorization = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    }
    const started = Date.now();
    const { res } = await this.dispatchRetrying(url, 'GET', headers, t.insecure, signal);
    if (res.statusCode === 401 || res.statusCode === 403) {
      await drain(res);
      throw new RegistryError('CARRIER_UNAUTHORIZED', `authentication to ${t.registry} failed${creds ? ' (invalid username or password?)' : ''}: token server answered ${res.statusCode}`, { status: res.statusCode });
    }
    if (res.statusCode !== 200) {
      const s = await errorSummary(res);
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} answered ${res.statusCode}${s.text ? ': ' + s.text : ''}`, { status: res.statusCode });
    }
    const body = await readCapped(res, MAX_TOKEN_RESPONSE, 'token response');
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch (err) {
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} sent invalid JSON`, { cause: err });
    }
    const value = typeof doc.token === 'string' && doc.token !== '' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (value === '' || /[\r\n]/.test(value)) throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} sent no token`);
    const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? Math.max(doc.expires_in, 60) : 60;
    return { value, expires: started + expiresIn * 1000 - 5000 };
  }

  private async authorization(t: Target, host: HostState, scopes: string[], signal: AbortSignal, fresh: boolean, challenge = host.challenge): Promise<string | undefined> {
    if (!challenge) return undefined;
    if (challenge.scheme === 'bearer') return 'Bearer ' + (await this.token(t, host, challenge, scopes, signal, fresh));
    if (challenge.scheme === 'basic') {
      const c = this.creds(t);
      return c ? 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64') : undefined;
    }
    return undefined;
  }

  /**
   * An authenticated GET on the registry API with retries; a 401 is answered once with a fresh token (for the
   * scopes asked plus any the challenge names, e.g. after `insufficient_scope`), then reported as
   * CARRIER_UNAUTHORIZED.
   */
  private async apiGet(t: Target, path: string, headers: Record<string, string>, signal: AbortSignal): Promise<{ res: Response; url: URL; origin: string }> {
    const host = await this.host(t, signal);
    let scopes = [`repository:${t.repository}:pull`];
    const url = new URL(path, host.origin);
    let auth = await this.authorization(t, host, scopes, signal, false);
    for (let attempt = 0; ; attempt++) {
      const h = { ...headers };
      if (auth) h.authorization = auth;
      const out = await this.dispatchRetrying(url, 'GET', h, t.insecure, signal);
      if (out.res.statusCode !== 401) return { ...out, origin: host.origin };
      const challenges = parseChallenges(out.res.headers['www-authenticate']);
      const s = await errorSummary(out.res);
      const bearer = challenges.find((c) => c.scheme === 'bearer');
      const basic = challenges.find((c) => c.scheme === 'basic');
      if (attempt === 0 && bearer) {
        scopes = mergeScopes(scopes, (bearer.params.scope ?? '').split(' ').filter(Boolean));
        auth = await this.authorization(t, host, scopes, signal, true, bearer);
        continue;
      }
      if (attempt === 0 && basic && !auth?.startsWith('Basic ') && this.creds(t)) {
        auth = await this.authorization(t, host, scopes, signal, true, basic);
        continue;
      }
      const who = this.creds(t) ? 'with the credentials given' : 'anonymously';
      throw new RegistryError('CARRIER_UNAUTHORIZED', `${t.registry}/${t.repository}: access denied ${who}${s.text ? ' (' + s.text + ')' : ''}`, {
        status: 401,
        registryCodes: s.codes,
      });
    }
  }

  private async statusError(t: Target, res: Response, what: string): Promise<CarrierError> {
    const s = await errorSummary(res);
    const detail = s.text ? `: ${s.text}` : '';
    if (res.statusCode === 404) return new RegistryError('CARRIER_NOT_FOUND', `${what} not found in ${t.registry}/${t.repository}${detail}`, { status: 404, registryCodes: s.codes });
    if (res.statusCode === 403) return new RegistryError('CARRIER_UNAUTHORIZED', `${what}: access to ${t.registry}/${t.repository} denied${detail}`, { status: 403, registryCodes: s.codes });
    return new RegistryError('CARRIER_REGISTRY_ERROR', `${what} from ${t.registry}/${t.repository}: status ${res.statusCode}${detail}`, { status: res.statusCode, registryCodes: s.codes });
  }

  // --- manifests ------------------------------------------------------------------------------------------------

  /** Tries each endpoint (mirrors first); the primary's error is reported when all fail. */
  private async firstWorking<T>(targets: Target[], signal: AbortSignal, fn: (t: Target) => Promise<T>): Promise<T> {
    const failures: string[] = [];
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      try {
        return await fn(t);
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        const fatal = err instanceof CarrierError && ['CARRIER_INVALID_DIGEST', 'CARRIER_INVALID_REFERENCE'].includes(err.code);
        if (i === targets.length - 1 || fatal) {
          if (failures.length > 0 && err instanceof CarrierError) err.message += ` (mirrors failed too: ${failures.join('; ')})`;
          throw err;
        }
        failures.push(`${t.registry}/${t.repository}: ${(err as Error).message}`);
      }
    }
    throw new CarrierError('CARRIER_INVALID_CONFIG', 'no registry endpoint to try');
  }

  private async fetchManifest(t: Target, reference: string, accept: string[], signal: AbortSignal): Promise<FetchedDocument & { origin: string }> {
    const { res, origin } = await this.apiGet(t, `/v2/${t.repository}/manifests/${reference}`, { accept: accept.join(', ') }, signal);
    if (res.statusCode !== 200) throw await this.statusError(t, res, `manifest ${reference}`);
    const bytes = await readCapped(res, MAX_DOCUMENT_BYTES, `manifest ${reference}`);
    const contentType = (header(res, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType === DOCKER_MANIFEST_V1 || contentType === DOCKER_MANIFEST_V1_SIGNED || hasSchemaVersion1(bytes)) {
      throw new RegistryError('CARRIER_UNSUPPORTED', `${t.registry}/${t.repository}:${reference} is a Docker schema 1 manifest, which is not supported`);
    }
    if (reference.includes(':') && !digestMatches(reference, bytes)) {
      throw new RegistryError('CARRIER_DIGEST_MISMATCH', `manifest from ${t.registry}/${t.repository} does not match its digest ${reference}`);
    }
    // Generic content types say nothing; the body's mediaType (or its fields) decide.
    const declared = contentType.startsWith('application/vnd.') ? contentType : undefined;
    const parsed = parseManifest(bytes, declared);
    return { bytes, mediaType: parsed.mediaType, digest: reference.includes(':') ? reference : sha256Digest(bytes), origin };
  }

  /**
   * The image manifest for `ref` (tag, default `latest`, or digest). An index or manifest list is resolved to the
   * entry for `opts.platform` (default: this machine), fetched by digest and verified; both documents are returned.
   */
  async getManifest(ref: ImageReference | string, opts: GetManifestOptions = {}): Promise<GetManifestResult> {
    const r = this.toRef(ref);
    const signal = this.combinedSignal(opts.signal);
    if (signal.aborted) throw abortError(signal);
    const reference = r.digest ?? r.tag ?? 'latest';
    if (r.digest !== undefined) parseDigest(r.digest);
    const accept = opts.accept ?? DEFAULT_ACCEPT;
    return this.firstWorking(this.targets(r), signal, async (t) => {
      const top = await this.fetchManifest(t, reference, accept, signal);
      const source: ManifestSource = { registry: t.registry, repository: t.repository, mirror: t.mirror, origin: top.origin };
      const parsed = parseManifest(top.bytes, top.mediaType);
      let result: GetManifestResult;
      if (parsed.kind === 'manifest') {
        result = { bytes: top.bytes, mediaType: top.mediaType, digest: top.digest, manifest: parsed, source };
      } else {
        const want = opts.platform ?? hostPlatform();
        const entry = choosePlatform(parsed, want);
        if (!entry) {
          const have = parsed.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? '/' + m.platform.variant : ''}` : '?')).join(', ');
          throw new RegistryError('CARRIER_NOT_FOUND', `no image for ${want.os}/${want.architecture}${want.variant ? '/' + want.variant : ''} in ${t.registry}/${t.repository}:${reference} (it has: ${have || 'nothing'})`);
        }
        if (manifestKind(entry.mediaType) !== 'manifest') throw new CarrierError('CARRIER_INVALID_MANIFEST', `index entry ${entry.digest} is not an image manifest (${entry.mediaType})`);
        if (entry.size > MAX_DOCUMENT_BYTES) throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `manifest ${entry.digest} is ${entry.size} bytes, over the ${MAX_DOCUMENT_BYTES}-byte cap`);
        const child = await this.fetchManifest(t, entry.digest, accept, signal);
        const childParsed = parseManifest(child.bytes, entry.mediaType);
        if (childParsed.kind !== 'manifest') throw new CarrierError('CARRIER_INVALID_MANIFEST', `index entry ${entry.digest} is itself an index`);
        result = {
          bytes: child.bytes,
          mediaType: childParsed.mediaType,
          digest: child.digest,
          manifest: childParsed,
          list: { bytes: top.bytes, mediaType: top.mediaType, digest: top.digest },
          source,
        };
      }
      this.preferred.set(`${r.domain}/${r.path}`, t);
      return result;
    });
  }

  // --- blobs ----------------------------------------------------------------------------------------------------

  private blobTargets(r: ImageReference): Target[] {
    const all = this.targets(r);
    const pref = this.preferred.get(`${r.domain}/${r.path}`);
    if (!pref) return all;
    return [pref, ...all.filter((t) => !(t.registry === pref.registry && t.repository === pref.repository))];
  }

  /** GET the blob from `offset`; checks the status and Content-Range, returns the body. */
  private async openBlob(t: Target, digest: string, offset: number, size: number | undefined, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { accept: '*/*' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const { res } = await this.apiGet(t, `/v2/${t.repository}/blobs/${digest}`, headers, signal);
    if (res.statusCode === 200) {
      if (offset > 0) {
        await drain(res);
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `${t.registry} ignored the Range request for blob ${digest} after ${offset} bytes were delivered`, { status: 200 });
      }
    } else if (res.statusCode === 206) {
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
      if (!cr || Number(cr[1]) !== offset) {
        res.body.destroy();
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `${t.registry} answered blob ${digest} from byte ${offset} with Content-Range "${printable(header(res, 'content-range') ?? '')}"`, { status: 206 });
      }
    } else if (res.statusCode === 416) {
      await drain(res);
      throw new RegistryError('CARRIER_TRUNCATED', `blob ${digest} from ${t.registry} ended after ${offset} bytes${size !== undefined ? ` of ${size}` : ''}`, { status: 416 });
    } else {
      throw await this.statusError(t, res, `blob ${digest}`);
    }
    const len = header(res, 'content-length');
    if (size !== undefined && len !== undefined && /^\d+$/.test(len) && offset + Number(len) > size) {
      res.body.destroy();
      throw new RegistryError('CARRIER_LIMIT_EXCEEDED', `blob ${digest} from ${t.registry} is ${offset + Number(len)} bytes, more than its size ${size}`);
    }
    return res;
  }

  /**
   * The whole blob as a Readable. Connection resets and truncated bodies are resumed with `Range: bytes=N-`;
   * bytes beyond `size` are refused (CARRIER_LIMIT_EXCEEDED). The digest is not verified here: hash what you read.
   * The promise rejects when the blob cannot be opened (CARRIER_NOT_FOUND, CARRIER_UNAUTHORIZED, ...).
   */
  async getBlob(ref: ImageReference | string, digest: string, opts: GetBlobOptions = {}): Promise<Readable> {
    parseDigest(digest);
    const r = this.toRef(ref);
    const signal = this.combinedSignal(opts.signal);
    if (signal.aborted) throw abortError(signal);
    const size = opts.size;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid blob size ${size}`);
    let target: Target | undefined;
    const first = await this.firstWorking(this.blobTargets(r), signal, async (t) => {
      const res = await this.openBlob(t, digest, 0, size, signal);
      target = t;
      return res;
    });
    const t = target!;
    return new BlobStream(first, {
      digest,
      registry: t.registry,
      size,
      signal,
      maxRetries: this.maxRetries,
      backoff: (failures) => this.backoff(failures),
      reopen: (offset) => this.openBlob(t, digest, offset, size, signal),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
  }
}

/**
 * A blob body that survives dropped connections: each response body is read in flowing mode (its chunks are pushed
 * on as they come, the body paused while the consumer is full), and a reset or a short body is resumed from the
 * next byte with a new request. Flowing mode, not an async iterator, because a layer blob is a thousand or more
 * chunks and each iterator step costs promise and tick round trips on the main thread, which a pull on two cores
 * pays for in wall time.
 */
class BlobStream extends Readable {
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

/** A body `{"schemaVersion": 1, ...}` served with a generic content type. */
function hasSchemaVersion1(bytes: Buffer): boolean {
  if (bytes.length > MAX_DOCUMENT_BYTES) return false;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { schemaVersion?: unknown };
    return doc?.schemaVersion === 1;
  } catch {
    return false;
  }
}

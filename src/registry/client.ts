/**
 * The registry client (OCI distribution spec) on undici: `/v2/` ping and scheme choice, bearer tokens
 * from `WWW-Authenticate` challenges (cached per host and scope), basic auth, manifests with a streaming size cap and
 * media-type checks, and blobs as a Readable that resumes with `Range` after a dropped connection.
 *
 * Every answer is untrusted: digests are validated before they enter a URL, manifest bodies are capped while they
 * stream, redirects never carry Authorization to another origin, and blob bodies may not exceed their size. The push
 * side (src/registry/upload.ts) speaks through `request`, with the same authentication, retries and limits.
 */
import type { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
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
import { MAX_DOCUMENT_BYTES, choosePlatform, hostPlatform, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { resolveRegistry, type RegistriesConf, type RegistryEndpoint } from '../registries-conf.js';
import { mergeScopes, parseChallenges, type Challenge } from './challenge.js';
import { RegistryError, describeNetError, unreachable } from './errors.js';
import { pingRegistry, redirectTarget, requestUnpinged } from './ping.js';
import { describePlatforms, hasSchemaVersion1 } from './documents.js';
import { requestToken } from './token.js';
import type { ApiRequest, ApiResponse, CachedToken, FetchedDocument, GetBlobOptions, GetManifestOptions, GetManifestResult, HostState, HttpMethod, ManifestSource,
  RegistryClientOptions, Target } from './types.js';
export type { RegistryClientOptions, ManifestSource, FetchedDocument, GetManifestOptions, GetManifestResult, GetBlobOptions } from './types.js';
import { BlobStream } from './blob-stream.js';
import { RETRYABLE_STATUS, discard, drain, errCode, errorSummary, header, isRetryableNetworkError, parseRetryAfter, printable,
  readCapped, sleep, stopError, type LowSpeed, type Response } from './http.js';
import { Deadline, RetryBudget } from './limits.js';
import { RegistryAgents } from './agents.js';
import type { CredentialStore, Credentials } from './auth.js';

const DEFAULT_ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST];
const MAX_REDIRECTS = 10;

export class RegistryClient {
  private readonly tlsVerify: boolean;
  private readonly conf: RegistriesConf | undefined;
  private readonly credentials: CredentialStore | undefined;
  private readonly userAgent: string;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly timeoutMs: number;
  private readonly speed: LowSpeed;
  private readonly maxResumes: number;
  private readonly budget: RetryBudget;
  private readonly deadline: Deadline | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onWarning: ((message: string) => void) | undefined;
  private readonly agents: RegistryAgents;
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
    this.speed = { limit: opts.lowSpeedLimit ?? 1024, timeMs: opts.lowSpeedTimeMs ?? 30_000 };
    this.maxResumes = opts.maxResumesPerBlob ?? 50;
    this.budget = new RetryBudget(opts.maxTotalRetries ?? 200, opts.maxRetryWaitMs ?? 300_000);
    this.deadline = opts.timeoutMs !== undefined ? new Deadline(opts.timeoutMs) : undefined;
    this.signal = opts.signal;
    this.onWarning = opts.onWarning;
    this.agents = new RegistryAgents(opts.certDir);
    for (const w of opts.registriesConf?.warnings ?? []) opts.onWarning?.(w);
  }

  /** Closes the connection pools. */
  async close(): Promise<void> {
    this.deadline?.stop();
    await this.agents.close();
  }

  // --- endpoints ------------------------------------------------------------------------------------------------

  private combinedSignal(signal?: AbortSignal): AbortSignal {
    const list = [signal, this.signal, this.deadline?.signal].filter((s): s is AbortSignal => s !== undefined);
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

  // --- HTTP -----------------------------------------------------------------------------------------------------

  /** One request, following redirects itself; Authorization goes only to the origin it was meant for. */
  private async dispatch(
    url: URL,
    method: HttpMethod,
    headers: Record<string, string>,
    insecure: boolean,
    signal: AbortSignal,
    body?: Buffer | Readable,
  ): Promise<{ res: Response; url: URL }> {
    // undici frees a keep-alive connection one loop turn after its response ends: sent sooner, a request opens another.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const authOrigin = url.origin;
    let current = url;
    let m: HttpMethod = method;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = { 'user-agent': this.userAgent, ...headers };
      if (current.origin !== authOrigin) delete h.authorization;
      const res = await (await this.agents.for(insecure, current.host)).request({
        origin: current.origin,
        path: current.pathname + current.search,
        method: m,
        headers: h,
        ...(body !== undefined && m !== 'GET' ? { body } : {}),
        signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || (body !== undefined && !Buffer.isBuffer(body))) return { res, url: current };
      await drain(res);
      if (hop >= MAX_REDIRECTS) throw new RegistryError('CARRIER_REGISTRY_ERROR', `too many redirects fetching ${url.pathname}`);
      if (res.statusCode === 303) m = 'GET';
      current = redirectTarget(res, current, insecure);
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(10_000, this.retryBaseMs * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  /**
   * dispatch() with retries on connection errors and 408/429/5xx, honouring a Retry-After up to maxRetryAfterMs; a
   * registry that asks for a longer wait is reported at once.
   */
  private async dispatchRetrying(
    url: URL,
    method: HttpMethod,
    headers: Record<string, string>,
    insecure: boolean,
    signal: AbortSignal,
    retries = this.maxRetries,
    body?: Buffer | Readable,
  ): Promise<{ res: Response; url: URL }> {
    if (body !== undefined && !Buffer.isBuffer(body)) retries = 0;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw stopError(signal);
      let out: { res: Response; url: URL };
      try {
        out = await this.dispatch(url, method, headers, insecure, signal, body);
      } catch (err) {
        if (signal.aborted) throw stopError(signal);
        // Nothing listening is worth one brief retry (a registry restarting), not the full backoff series.
        const refused = errCode(err) === 'ECONNREFUSED';
        const limit = refused ? Math.min(retries, 1) : retries;
        if (attempt >= limit || !isRetryableNetworkError(err)) throw unreachable(url, err, this.timeoutMs);
        const wait = this.budget.spend(`${method} ${url.origin}${url.pathname}: ${(err as Error)?.message ?? String(err)}`, refused ? Math.max(this.backoff(attempt), this.retryBaseMs * 5) : this.backoff(attempt));
        this.onWarning?.(`${method} ${url.origin}${printable(url.pathname, 200)}: ${describeNetError(err, { advice: false })}; retrying in ${(wait / 1000).toFixed(1)} s (${attempt + 1} of ${limit})`);
        await sleep(wait, signal);
        continue;
      }
      const status = out.res.statusCode;
      if (!RETRYABLE_STATUS.has(status) || attempt >= retries) return out;
      const retryAfter = parseRetryAfter(header(out.res, 'retry-after'));
      if (retryAfter !== undefined && retryAfter > this.maxRetryAfterMs) {
        const asked = printable(header(out.res, 'retry-after') ?? '', 64);
        await drain(out.res);
        throw new RegistryError(
          'CARRIER_REGISTRY_ERROR',
          `${url.origin} answered ${status} to ${method} ${printable(url.pathname, 200)} and asks to retry after "${asked}", longer than the ${Math.round(this.maxRetryAfterMs / 1000)} s Carrier waits (maxRetryAfterMs)`,
          { status },
        );
      }
      await drain(out.res);
      await sleep(this.budget.spend(`${method} ${url.origin}${url.pathname}: status ${status}`, retryAfter ?? this.backoff(attempt)), signal);
    }
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

  private ping(t: Target, signal: AbortSignal): Promise<HostState> {
    // A mirror that does not answer is passed over at once for the next endpoint (the upstream is always there
    // after it), as podman does: retrying a mirror that is down cost every pull seconds of backoff.
    return pingRegistry(t, t.mirror ? 0 : this.maxRetries, signal, (url, retries) => this.dispatchRetrying(url, 'GET', {}, t.insecure, signal, retries));
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
    const p = requestToken((url, headers) => this.dispatchRetrying(url, 'GET', headers, t.insecure, signal), t, challenge, scopes, creds, this.speed);
    this.tokens.set(key, p);
    p.catch(() => {
      if (this.tokens.get(key) === p) this.tokens.delete(key);
    });
    return (await p).value;
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
   * An authenticated request (GET unless `req.method` says otherwise) on the registry API with retries; a 401 is
   * answered once with a fresh token (for the scopes asked plus any the challenge names, e.g. after
   * `insufficient_scope`), then reported as CARRIER_UNAUTHORIZED. Authorization goes only to the registry's origin.
   */
  private async apiRequest(t: Target, path: string, headers: Record<string, string>, signal: AbortSignal, req: ApiRequest = {}): Promise<{ res: Response; url: URL; origin: string }> {
    const key = this.hostKey(t);
    const first = this.hosts.has(key) ? undefined : await requestUnpinged(t, path, req, signal, {
      dispatch: (url) => this.dispatch(url, req.method ?? 'GET', headers, false, signal), ping: () => this.host(t, signal),
      record: (h) => void (this.hosts.has(key) || this.hosts.set(key, Promise.resolve(h))), timeoutMs: this.timeoutMs,
    });
    if (first?.answer) return first.answer;
    const host = first?.host ?? (await this.host(t, signal));
    let scopes = [`repository:${t.repository}:${req.actions ?? 'pull'}`, ...(req.extraScopes ?? [])];
    const url = new URL(path, host.origin);
    let auth = first?.unauthorized ? undefined : await this.authorization(t, host, scopes, signal, false);
    for (let attempt = 0; ; attempt++) {
      const h = { ...headers };
      if (auth && url.origin === host.origin) h.authorization = auth;
      const out = attempt === 0 && first?.unauthorized ? first.unauthorized : await this.dispatchRetrying(url, req.method ?? 'GET', h, t.insecure, signal, req.retries, req.body);
      if (out.res.statusCode !== 401 || (req.body !== undefined && !Buffer.isBuffer(req.body))) return { ...out, origin: host.origin };
      if (out.url.origin !== host.origin) {
        // Redirected elsewhere, and that host wants credentials: they go only to the registry (and the token realm its
        // own challenge names), never to a host the user did not name.
        await drain(out.res);
        throw new RegistryError('CARRIER_UNAUTHORIZED', `${t.registry}/${t.repository}: ${host.origin} redirected to ${out.url.origin}, which asks for credentials; Carrier sends credentials only to the registry itself`, { status: 401 });
      }
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

  /**
   * One authenticated request on the registry `ref` names, for the push side: its primary endpoint after
   * registries.conf rewriting (never a mirror; a blocked registry is refused). `path` is under `/v2/REPOSITORY/`, or
   * an absolute URL (an upload's Location).
   */
  async request(ref: ImageReference, method: HttpMethod, path: string, req: ApiRequest = {}): Promise<ApiResponse> {
    const t = this.targets(ref).find((x) => !x.mirror)!;
    const signal = this.combinedSignal(req.signal);
    const out = await this.apiRequest(t, /^https?:/.test(path) ? path : `/v2/${t.repository}/${path}`, req.headers ?? {}, signal, { ...req, method });
    return { res: out.res, url: out.url, registry: t.registry, repository: t.repository };
  }

  /** Waits the client's backoff before retry `attempt` of `what`, charged to its retry budget. */
  async retryWait(attempt: number, what: string, signal?: AbortSignal): Promise<void> {
    await sleep(this.budget.spend(what, this.backoff(attempt)), this.combinedSignal(signal));
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
        if (signal.aborted) throw stopError(signal, `${t.registry}/${t.repository}`);
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

  private async fetchManifest(t: Target, reference: string, accept: string[], signal: AbortSignal): Promise<FetchedDocument & { origin: string; parsed: ParsedManifest }> {
    const { res, origin } = await this.apiRequest(t, `/v2/${t.repository}/manifests/${reference}`, { accept: accept.join(', ') }, signal);
    if (res.statusCode !== 200) throw await this.statusError(t, res, `manifest ${reference}`);
    const bytes = await readCapped(res, MAX_DOCUMENT_BYTES, `manifest ${reference} from ${t.registry}`, undefined, this.speed);
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
    return { bytes, mediaType: parsed.mediaType, digest: reference.includes(':') ? reference : sha256Digest(bytes), origin, parsed };
  }

  /**
   * The image manifest for `ref` (tag, default `latest`, or digest). An index or manifest list is resolved to the
   * entry for `opts.platform` (default: this machine), fetched by digest and verified; both documents are returned.
   */
  async getManifest(ref: ImageReference | string, opts: GetManifestOptions = {}): Promise<GetManifestResult> {
    const r = this.toRef(ref);
    const signal = this.combinedSignal(opts.signal);
    if (signal.aborted) throw stopError(signal);
    const reference = r.digest ?? r.tag ?? 'latest';
    if (r.digest !== undefined) parseDigest(r.digest);
    const accept = opts.accept ?? DEFAULT_ACCEPT;
    return this.firstWorking(this.targets(r), signal, async (t) => {
      const top = await this.fetchManifest(t, reference, accept, signal);
      const source: ManifestSource = { registry: t.registry, repository: t.repository, mirror: t.mirror, origin: top.origin };
      const parsed = top.parsed; // parsed once, as it arrived
      let result: GetManifestResult;
      if (parsed.kind === 'manifest') {
        result = { bytes: top.bytes, mediaType: top.mediaType, digest: top.digest, manifest: parsed, source };
      } else {
        const want = opts.platform ?? hostPlatform();
        const entry = choosePlatform(parsed, want);
        if (!entry) {
          throw new RegistryError('CARRIER_NOT_FOUND', `no image for ${want.os}/${want.architecture}${want.variant ? '/' + want.variant : ''} in ${t.registry}/${t.repository}:${reference} (it has: ${describePlatforms(parsed.manifests)})`);
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
    const { res } = await this.apiRequest(t, `/v2/${t.repository}/blobs/${digest}`, headers, signal);
    if (res.statusCode === 200) {
      if (offset > 0) {
        discard(res.body);
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `${t.registry} ignored the Range request for blob ${digest} after ${offset} bytes were delivered`, { status: 200 });
      }
    } else if (res.statusCode === 206) {
      // The range must start where the download stopped and stay inside a blob of the size expected (a range that
      // ends early is resumed again when its body ends).
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
      const fits = cr !== null && Number(cr[1]) === offset && Number(cr[2]) >= offset
        && (size === undefined || (Number(cr[2]) < size && (cr[3] === '*' || Number(cr[3]) === size)));
      if (!fits) {
        discard(res.body);
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `${t.registry} answered blob ${digest} from byte ${offset} with Content-Range "${printable(header(res, 'content-range') ?? '(none)', 100)}"`, { status: 206 });
      }
    } else if (res.statusCode === 416) {
      await drain(res);
      throw new RegistryError('CARRIER_TRUNCATED', `blob ${digest} from ${t.registry} ended after ${offset} bytes${size !== undefined ? ` of ${size}` : ''}`, { status: 416 });
    } else {
      throw await this.statusError(t, res, `blob ${digest}`);
    }
    const len = header(res, 'content-length');
    if (size !== undefined && len !== undefined && /^\d+$/.test(len) && offset + Number(len) > size) {
      discard(res.body);
      throw new RegistryError('CARRIER_LIMIT_EXCEEDED', `blob ${digest} from ${t.registry} is ${offset + Number(len)} bytes, more than its size ${size}`);
    }
    return res;
  }

  /** A GET of a blob with extra headers (a Range), through mirrors and auth as getBlob; 200 or 206, body unread (ranges.ts). */
  async requestBlob(ref: ImageReference | string, digest: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const s = this.combinedSignal(signal);
    return this.firstWorking(this.blobTargets(this.toRef(ref)), s, async (t) => {
      const { res } = await this.apiRequest(t, `/v2/${t.repository}/blobs/${digest}`, { accept: '*/*', ...headers }, s);
      if (res.statusCode !== 200 && res.statusCode !== 206) throw await this.statusError(t, res, `blob ${digest}`);
      return res;
    });
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
    if (signal.aborted) throw stopError(signal);
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
      maxResumes: this.maxResumes,
      speed: this.speed,
      backoff: (failures) => this.backoff(failures),
      spendRetry: (what, waitMs) => this.budget.spend(what, waitMs),
      reopen: (offset) => this.openBlob(t, digest, offset, size, signal),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
  }
}


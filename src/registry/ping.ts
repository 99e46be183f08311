// `GET /v2/`: which scheme a registry answers on, and the authentication challenge it sends; and where a redirect
// may lead.
import { NOT_TLS, RegistryError, describeNetError, plainHttpError, unreachable } from './errors.js';
import { parseChallenges } from './challenge.js';
import { RETRYABLE_STATUS, drain, errCode, header, stopError, type Response } from './http.js';
import type { HostState, Target } from './types.js';

/**
 * Pings `t` over https, or (insecure registries only) over plain http when https fails. A challenge counts only when
 * it comes from the registry's own origin: one from a host `/v2/` was redirected to is not followed. A server that
 * answers `/v2/` as no registry does (404, or an HTML page) is reported as not a registry. When both schemes fail to
 * connect, the plain-http failure is the one reported (that is what was used), with the https one when it differs; a
 * secure registry whose https port speaks plain HTTP is reported as that, with the option that allows it.
 */
export async function pingRegistry(
  t: Target,
  maxRetries: number,
  signal: AbortSignal,
  get: (url: URL, retries: number) => Promise<{ res: Response; url: URL }>,
): Promise<HostState> {
  const tryOrigin = async (origin: string, retries: number): Promise<HostState> => {
    const { res, url } = await get(new URL('/v2/', origin), retries);
    const challenges = res.statusCode === 401 && url.origin === origin ? parseChallenges(res.headers['www-authenticate']) : [];
    const html = /^text\/html\b/i.test(header(res, 'content-type') ?? '');
    await drain(res);
    if (res.statusCode !== 200 && res.statusCode !== 401 && res.statusCode >= 500) {
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `pinging ${origin}/v2/: status ${res.statusCode}`, { status: res.statusCode });
    }
    if (res.statusCode === 404 || (res.statusCode === 200 && html)) {
      const answer = `${res.statusCode}${html ? ' with an HTML page' : ''}`;
      throw new RegistryError(
        'CARRIER_REGISTRY_ERROR',
        `${origin} is not a container registry: GET /v2/ answered ${answer}, where a registry answers 200 or 401; check the registry's address`,
        { status: res.statusCode },
      );
    }
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
    return { origin, challenge };
  };
  const https = `https://${t.apiHost}`;
  const plain = `http://${t.apiHost}`;
  if (!t.insecure) {
    try {
      return await tryOrigin(https, maxRetries);
    } catch (err) {
      if (signal.aborted || !NOT_TLS.test(errCode((err as Error)?.cause))) throw err;
      // Does the port speak plain HTTP? One bare GET /v2/ (no credentials) tells.
      let answered = false;
      try {
        await drain((await get(new URL('/v2/', plain), 0)).res);
        answered = true;
      } catch {
        // not HTTP either: the TLS failure stands
      }
      if (signal.aborted) throw stopError(signal);
      throw answered ? plainHttpError(t.apiHost, err) : err;
    }
  }
  try {
    return await tryOrigin(https, 0);
  } catch (err) {
    if (signal.aborted) throw stopError(signal);
    try {
      return await tryOrigin(plain, maxRetries);
    } catch (plainErr) {
      if (signal.aborted) throw stopError(signal);
      // The server answered over plain http: what it answered is the news.
      if (plainErr instanceof RegistryError && plainErr.status !== undefined) throw plainErr;
      const a = errCode((err as Error)?.cause);
      const b = errCode((plainErr as Error)?.cause);
      if (a !== '' && a === b) {
        const message = `cannot reach ${plain} (https failed the same way): ${describeNetError((plainErr as Error).cause)}`;
        throw new RegistryError('CARRIER_REGISTRY_ERROR', message, { cause: plainErr });
      }
      const why = (e: unknown): string => String((e as Error)?.message ?? e).replace(/^cannot reach \S+: /, '');
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `cannot reach ${t.apiHost}: over https: ${why(err)}; over plain http: ${why(plainErr)}`, { cause: plainErr });
    }
  }
}

/** The URL a redirect names: http(s) only, and never from https down to plain http unless the registry is insecure. */
export function redirectTarget(res: Response, current: URL, insecure: boolean): URL {
  const location = header(res, 'location');
  if (location === undefined) throw new RegistryError('CARRIER_REGISTRY_ERROR', `redirect ${res.statusCode} without a Location from ${current.origin}`, { status: res.statusCode });
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
  return next;
}

/** What a request sent without a ping first came to: an `answer` to return, or a `host` to go on with (and a 401 to answer). */
export interface Unpinged {
  host?: HostState;
  answer?: { res: Response; url: URL; origin: string };
  unauthorized?: { res: Response; url: URL };
}

/**
 * The first GET or HEAD (without a body) to a registry that must speak https, sent without the `GET /v2/` ping before
 * it: the ping would only tell the scheme (https, the only one allowed) and the challenge, which a 401 to this request
 * tells as well, so a pull's first round trip is its manifest. When it cannot tell (no connection, a retryable
 * status) the ping decides as before, with its retries and its diagnoses (undefined); an answer that may come from
 * something that is not a registry, or that credentials might change (any error status but 401, an HTML page), is
 * checked by the ping too. A 401's challenge is recorded as the host's and returned to be answered; any other answer
 * records a host without one.
 */
export async function requestUnpinged(
  t: Target,
  path: string,
  req: { method?: string; body?: unknown },
  signal: AbortSignal,
  deps: {
    dispatch: (url: URL) => Promise<{ res: Response; url: URL }>;
    ping: () => Promise<HostState>;
    record: (host: HostState) => void;
    timeoutMs: number;
  },
): Promise<Unpinged | undefined> {
  const method = req.method ?? 'GET';
  if (t.insecure || req.body !== undefined || (method !== 'GET' && method !== 'HEAD')) return undefined;
  const origin = `https://${t.apiHost}`;
  const url = new URL(path, origin);
  if (url.origin !== origin) return undefined;
  let out: { res: Response; url: URL };
  try {
    out = await deps.dispatch(url);
  } catch (err) {
    if (signal.aborted) throw stopError(signal);
    // A mirror is passed over after one failed attempt, as its ping would be (a second could double a timeout).
    if (t.mirror && !NOT_TLS.test(errCode(err))) throw unreachable(url, err, deps.timeoutMs);
    return undefined;
  }
  const status = out.res.statusCode;
  const html = status === 200 && /^text\/html\b/i.test(header(out.res, 'content-type') ?? '');
  if (RETRYABLE_STATUS.has(status) || (status === 401 && out.url.origin !== origin)) {
    await drain(out.res);
    return undefined;
  }
  if (status !== 401 && (status >= 400 || html)) {
    // A registry that lacks the resource or refuses it to an anonymous client (some answer 403, not 401, when the
    // credentials they want are missing), or a web server that is no registry: the ping tells which.
    let host: HostState;
    try {
      host = await deps.ping();
    } catch (err) {
      await drain(out.res);
      throw err;
    }
    if (!host.challenge) return { answer: { ...out, origin } };
    await drain(out.res); // asked anonymously of a registry that wants credentials: asked again with them
    return { host };
  }
  if (status === 401) {
    const challenges = parseChallenges(out.res.headers['www-authenticate']);
    const host: HostState = { origin, challenge: challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null };
    deps.record(host);
    return { host, unauthorized: out };
  }
  deps.record({ origin, challenge: null });
  return { answer: { ...out, origin } };
}

// `GET /v2/`: which scheme a registry answers on, and the authentication challenge it sends; and where a redirect
// may lead.
import { RegistryError } from './errors.js';
import { parseChallenges } from './challenge.js';
import { drain, header, stopError, type Response } from './http.js';
import type { HostState, Target } from './types.js';

/**
 * Pings `t` over https, or (insecure registries only) over plain http when https fails. A challenge counts only when
 * it comes from the registry's own origin: one from a host `/v2/` was redirected to is not followed. When both
 * schemes fail, both failures are reported, so a plain-http registry's own failure is not hidden behind the TLS one.
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
    await drain(res);
    if (res.statusCode !== 200 && res.statusCode !== 401 && res.statusCode >= 500) {
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `pinging ${origin}/v2/: status ${res.statusCode}`, { status: res.statusCode });
    }
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
    return { origin, challenge };
  };
  const https = `https://${t.apiHost}`;
  if (!t.insecure) return tryOrigin(https, maxRetries);
  try {
    return await tryOrigin(https, 0);
  } catch (err) {
    if (signal.aborted) throw stopError(signal);
    try {
      return await tryOrigin(`http://${t.apiHost}`, maxRetries);
    } catch (plain) {
      if (signal.aborted) throw stopError(signal);
      const why = (e: unknown): string => String((e as Error)?.message ?? e).replace(/^cannot reach \S+: /, '');
      throw new RegistryError('CARRIER_REGISTRY_ERROR', `cannot reach ${t.apiHost}: over https: ${why(err)}; over plain http: ${why(plain)}`, { cause: plain });
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

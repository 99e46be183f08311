// Bearer tokens from a registry's token server (the distribution spec's token authentication): the request with the
// scopes and, when the user gave some, Basic credentials; the answer bounded, checked and given an expiry.
import type { Challenge } from './challenge.js';
import type { Credentials } from './auth.js';
import { RegistryError } from './errors.js';
import { drain, errorSummary, readCapped, type LowSpeed, type Response } from './http.js';
import type { CachedToken, Target } from './types.js';

const MAX_TOKEN_RESPONSE = 1 << 20;

/** Asks the challenge's realm for a token for `scopes`; `get` performs the (retrying) request. */
export async function requestToken(
  get: (url: URL, headers: Record<string, string>) => Promise<{ res: Response }>,
  t: Target,
  challenge: Challenge,
  scopes: string[],
  creds: Credentials | undefined,
  speed?: LowSpeed,
): Promise<CachedToken> {
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
  const { res } = await get(url, headers);
  if (res.statusCode === 401 || res.statusCode === 403) {
    await drain(res);
    throw new RegistryError('CARRIER_UNAUTHORIZED', `authentication to ${t.registry} failed${creds ? ' (invalid username or password?)' : ''}: token server answered ${res.statusCode}`, { status: res.statusCode });
  }
  if (res.statusCode !== 200) {
    const s = await errorSummary(res);
    throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} answered ${res.statusCode}${s.text ? ': ' + s.text : ''}`, { status: res.statusCode });
  }
  const body = await readCapped(res, MAX_TOKEN_RESPONSE, `token response from ${url.origin}`, undefined, speed);
  let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8')) as typeof doc;
  } catch (err) {
    throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} sent invalid JSON`, { cause: err });
  }
  const value = typeof doc.token === 'string' && doc.token !== '' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
  if (value === '') throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} sent no token`);
  // Control characters cannot go into a header (Go's net/http, and so podman, refuses them too).
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new RegistryError('CARRIER_REGISTRY_ERROR', `token server for ${t.registry} sent a token with control characters`);
  const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? Math.max(doc.expires_in, 60) : 60;
  return { value: headerBytes(value), expires: started + expiresIn * 1000 - 5000 };
}

/**
 * A token as its UTF-8 bytes, one character per byte: undici writes header values as latin1 and refuses characters
 * above U+00FF, while podman (Go) sends any non-control character as its UTF-8 bytes. So a token holding U+2028 goes
 * out byte for byte as podman sends it.
 */
function headerBytes(value: string): string {
  return /^[\x20-\x7e\t]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1');
}

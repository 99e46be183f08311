import { CarrierError, type CarrierErrorCode, type CarrierErrorDetails } from '../errors.js';
import { errCode } from './http.js';

/** A CarrierError raised for a registry HTTP answer: carries the status and the registry's error codes. */
export class RegistryError extends CarrierError {
  /** HTTP status, when the registry answered. */
  readonly status?: number;
  /** `errors[].code` of the registry's JSON error body (MANIFEST_UNKNOWN, DENIED, ...). */
  readonly registryCodes: string[];

  constructor(code: CarrierErrorCode, message: string, details: CarrierErrorDetails & { status?: number; registryCodes?: string[] } = {}) {
    const { status, registryCodes, ...rest } = details;
    super(code, message, rest);
    if (status !== undefined) this.status = status;
    this.registryCodes = registryCodes ?? [];
  }
}

/**
 * A request that got no answer (connection refused, reset, TLS failure), naming the origin and saying what the
 * failure means; a host that was reached but sent no response headers in time is reported as that.
 */
export function unreachable(url: URL, err: unknown, requestTimeoutMs?: number): CarrierError {
  if (err instanceof CarrierError) return err;
  const code = errCode(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' && requestTimeoutMs !== undefined) {
    const path = url.pathname.length > 200 ? url.pathname.slice(0, 200) + '…' : url.pathname;
    return new RegistryError('CARRIER_REGISTRY_ERROR', `${url.origin} sent no response to ${path} within the ${requestTimeoutMs / 1000} s request timeout (requestTimeoutMs)`, { cause: err });
  }
  return new RegistryError('CARRIER_REGISTRY_ERROR', `cannot reach ${url.origin}: ${describeNetError(err)}`, { cause: err });
}

/** TLS record errors that mean the peer does not speak TLS at all (a plain-http server answers a ClientHello). */
export const NOT_TLS = /^(?:ERR_SSL_WRONG_VERSION_NUMBER|ERR_SSL_PACKET_LENGTH_TOO_LONG|ERR_SSL_HTTP_REQUEST|EPROTO)$/;

const TRUST_HINT = 'if you trust this registry, use --tls-verify=false (library option tlsVerify: false) or list it as insecure in registries.conf';

/**
 * What a connection-level failure means, in one line a user can act on (OpenSSL's record-layer text left out);
 * `advice: false` leaves out what to do (a retry notice).
 */
export function describeNetError(err: unknown, { advice = true } = {}): string {
  const code = errCode(err);
  const raw = oneLine(String((err as Error)?.message ?? err));
  const say = (what: string, todo: string): string => (advice ? `${what}: ${todo}` : what);
  if (code === 'ECONNREFUSED') return say('connection refused', 'is a registry running there, and is the address right?');
  if (code === 'ENOTFOUND') return say('no such host', 'is the registry name right?');
  if (code === 'EAI_AGAIN') return say('the host name could not be resolved just now', 'check the network and DNS');
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return say(`no route to the host (${code})`, 'check the network');
  if (code === 'ECONNRESET') return 'the connection was reset';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'connecting timed out';
  if (code === 'UND_ERR_SOCKET') return `the connection closed before an answer (${raw})`;
  if (code.startsWith('HPE_') || (err as Error)?.name === 'HTTPParserError') return `the answer is not HTTP (${code || raw})`;
  if (NOT_TLS.test(code)) return `the server does not speak TLS (${code})`;
  if (/^(?:CERT_|ERR_TLS_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(?:VERIFY|GET))/.test(code)) {
    return say(`its TLS certificate is not trusted (${code}: ${raw})`, TRUST_HINT);
  }
  if (code.startsWith('ERR_SSL_')) return `the TLS handshake failed (${code})`;
  return code && !raw.includes(code) ? `${code}: ${raw}` : raw;
}

/** The advice for a plain-http registry asked for over https. */
export function plainHttpError(host: string, cause: unknown): RegistryError {
  return new RegistryError(
    'CARRIER_REGISTRY_ERROR',
    `https://${host} answered in plain HTTP: the server gave an HTTP response to an HTTPS client; ${TRUST_HINT}`,
    { cause },
  );
}

/** Line breaks and runs of white space (OpenSSL ends its messages with a newline) as one space. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

import { CarrierError, type CarrierErrorCode, type CarrierErrorDetails } from '../errors.js';

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
 * A request that got no answer (connection refused, reset, TLS failure), naming the origin; a host that was reached
 * but sent no response headers in time is reported as that.
 */
export function unreachable(url: URL, err: unknown, requestTimeoutMs?: number): CarrierError {
  if (err instanceof CarrierError) return err;
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const code = String(e?.code ?? e?.cause?.code ?? '');
  if (code === 'UND_ERR_HEADERS_TIMEOUT' && requestTimeoutMs !== undefined) {
    const path = url.pathname.length > 200 ? url.pathname.slice(0, 200) + '…' : url.pathname;
    return new RegistryError('CARRIER_REGISTRY_ERROR', `${url.origin} sent no response to ${path} within the ${requestTimeoutMs / 1000} s request timeout (requestTimeoutMs)`, { cause: err });
  }
  return new RegistryError('CARRIER_REGISTRY_ERROR', `cannot reach ${url.origin}: ${code ? code + ': ' : ''}${String(e?.message ?? err)}`, { cause: err });
}

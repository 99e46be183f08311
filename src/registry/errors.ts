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

/** A request that got no answer (connection refused, reset, timed out, TLS failure), naming the origin. */
export function unreachable(url: URL, err: unknown): CarrierError {
  if (err instanceof CarrierError) return err;
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const code = String(e?.code ?? e?.cause?.code ?? '');
  return new RegistryError('CARRIER_REGISTRY_ERROR', `cannot reach ${url.origin}: ${code ? code + ': ' : ''}${String(e?.message ?? err)}`, { cause: err });
}

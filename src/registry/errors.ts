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

import crypto from 'node:crypto';
import { CarrierError } from '../errors.js';

/** Digest algorithms Carrier accepts, with the exact length of their lowercase hex encoding. */
const HEX_LENGTH = { sha256: 64, sha512: 128 } as const;

export type DigestAlgorithm = keyof typeof HEX_LENGTH;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  /** Lowercase hex, exactly 64 (sha256) or 128 (sha512) characters. */
  hex: string;
  /** The digest string itself, `algorithm:hex`. */
  digest: string;
}

const HEX = /^[a-f0-9]+$/;

/**
 * Validates a digest string before it is used anywhere (a path, a URL, a map key): `sha256:` + 64 lowercase hex
 * digits or `sha512:` + 128. Anything else (upper case, other algorithms, separators, extra characters) throws
 * CARRIER_INVALID_DIGEST.
 */
export function parseDigest(s: unknown): ParsedDigest {
  if (typeof s !== 'string') {
    throw new CarrierError('CARRIER_INVALID_DIGEST', `digest must be a string, got ${typeof s}`);
  }
  const colon = s.indexOf(':');
  const algorithm = colon < 0 ? '' : s.slice(0, colon);
  const hex = colon < 0 ? '' : s.slice(colon + 1);
  if (!Object.hasOwn(HEX_LENGTH, algorithm)) {
    throw new CarrierError('CARRIER_INVALID_DIGEST', `unsupported or malformed digest '${printable(s)}' (want sha256:<64 hex> or sha512:<128 hex>)`);
  }
  const want = HEX_LENGTH[algorithm as DigestAlgorithm];
  if (hex.length !== want || !HEX.test(hex)) {
    throw new CarrierError('CARRIER_INVALID_DIGEST', `malformed ${algorithm} digest '${printable(s)}' (want ${want} lowercase hex digits)`);
  }
  return { algorithm: algorithm as DigestAlgorithm, hex, digest: s };
}

/** True when `s` is a digest {@link parseDigest} accepts. */
export function isDigest(s: unknown): s is string {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** `sha256:<hex>` of the bytes. */
export function sha256Digest(buf: Uint8Array): string {
  return 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
}

/** The hex part of a (validated) digest: the image id for a config digest, a blob's file name in an OCI layout. */
export function digestHex(d: string): string {
  return parseDigest(d).hex;
}

/** Hash of `buf` with the algorithm `d` names, compared with `d`. */
export function digestMatches(d: string, buf: Uint8Array): boolean {
  const { algorithm, hex } = parseDigest(d);
  return crypto.createHash(algorithm).update(buf).digest('hex') === hex;
}

/** A short, log-safe rendering of an untrusted string. */
function printable(s: string): string {
  const cut = s.length > 140 ? s.slice(0, 140) + '…' : s;
  return JSON.stringify(cut).slice(1, -1);
}

/**
 * The signed payload both signature formats carry: `{"critical": {"type", "image": {"docker-manifest-digest"},
 * "identity": {"docker-reference"}}, "optional": {…}}`, read strictly (exact keys, no duplicates) as containers/image
 * reads it, and only after the cryptographic check has passed.
 */
import { isJsonObject, parseStrictJson, type JsonObject, type JsonValue } from './strict-json.js';

export const SIMPLE_SIGNING_TYPE = 'atomic container signature';
export const SIGSTORE_PAYLOAD_TYPE = 'cosign container image signature';

export interface SignedClaims {
  manifestDigest: string;
  dockerReference: string;
  creator?: string;
  timestamp?: number;
}

export class InvalidPayloadError extends Error {}

/** A reason a signature was not accepted, written for the person who has to fix it. */
export class SignatureRejected extends Error {}

function exact(v: JsonValue | undefined, keys: string[], where: string): JsonObject {
  if (!isJsonObject(v)) throw new InvalidPayloadError(`${where} is not a JSON object`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw new InvalidPayloadError(`unknown key "${k}" in ${where}`);
  for (const k of keys) if (!(k in v)) throw new InvalidPayloadError(`key "${k}" missing in ${where}`);
  return v;
}

function text(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string') throw new InvalidPayloadError(`${where} is not a string`);
  return v;
}

/** Parses a verified payload of `type`; throws InvalidPayloadError. */
export function parseSignedClaims(bytes: Uint8Array, type: string): SignedClaims {
  let doc: JsonValue;
  try {
    doc = parseStrictJson(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidPayloadError(`the signed payload is not valid JSON: ${(err as Error).message}`);
  }
  const top = exact(doc, ['critical', 'optional'], 'the signed payload');
  const claims: SignedClaims = { manifestDigest: '', dockerReference: '' };
  if (top.optional !== null) {
    if (!isJsonObject(top.optional)) throw new InvalidPayloadError('"optional" is not a JSON object');
    if (top.optional.creator !== undefined) claims.creator = text(top.optional.creator, 'optional.creator');
    if (top.optional.timestamp !== undefined) {
      const t = top.optional.timestamp;
      if (typeof t !== 'number' || !Number.isInteger(t)) throw new InvalidPayloadError('optional.timestamp is not an integer');
      claims.timestamp = t;
    }
  }
  const critical = exact(top.critical, ['type', 'image', 'identity'], '"critical"');
  const t = text(critical.type, 'critical.type');
  if (t !== type) throw new InvalidPayloadError(`unrecognized signature type "${t}"`);
  claims.manifestDigest = text(exact(critical.image, ['docker-manifest-digest'], 'critical.image')['docker-manifest-digest'], 'docker-manifest-digest');
  claims.dockerReference = text(exact(critical.identity, ['docker-reference'], 'critical.identity')['docker-reference'], 'docker-reference');
  return claims;
}

/** Field readers for policy.json's objects: each names where in the file a wrong value was. */
import { isJsonObject, type JsonObject, type JsonValue } from './strict-json.js';

/** An error inside the file's structure; turned into CARRIER_INVALID_POLICY naming the file. */
export class PolicyFormatError extends Error {}

export function object(v: JsonValue | undefined, where: string): JsonObject {
  if (!isJsonObject(v)) throw new PolicyFormatError(`${where} must be a JSON object`);
  return v;
}

export function known(o: JsonObject, keys: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new PolicyFormatError(`unknown key "${k}" in ${where}`);
  }
}

export function str(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string') throw new PolicyFormatError(`${where} must be a string`);
  return v;
}


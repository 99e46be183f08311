/**
 * The TOML reader behind containers' configuration files (storage.conf, registries.conf): smol-toml, with the
 * choices Carrier needs made once, here.
 *
 * Values map to: strings → string, integers → number (bigint when beyond ±2^53−1; beyond 64 bits is an error),
 * floats → number, booleans → boolean, arrays → array, tables → plain objects, dates and times → smol-toml's
 * `TomlDate` (no configuration key Carrier reads is a date, so a date where a string belongs is refused by the
 * caller's type check). `__proto__` and `constructor` stay ordinary keys. Every syntax or semantic error raises
 * CarrierError('CARRIER_INVALID_CONFIG', `${file}:${line}: ...`).
 */
import { parse, TomlError } from 'smol-toml';
import { CarrierError } from './errors.js';

/**
 * Arrays and inline tables nest at most this deep. smol-toml descends into them recursively, so the bound is what
 * keeps a hostile file from overflowing the stack (a RangeError) instead of being refused.
 */
export const MAX_TOML_DEPTH = 1000;

export type TomlTable = Record<string, unknown>;

export function parseToml(text: string, file = '<toml>'): TomlTable {
  try {
    return parse(text, { integersAsBigInt: 'asNeeded', unsafeKeyBehaviour: 'keep', maxDepth: MAX_TOML_DEPTH });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: <reason>" followed by a code excerpt; keep the reason only.
    const reason = err.message.replace(/^Invalid TOML document: /, '').split('\n')[0];
    throw new CarrierError('CARRIER_INVALID_CONFIG', `${file}:${err.line}: ${reason}`, { path: file, cause: err });
  }
}

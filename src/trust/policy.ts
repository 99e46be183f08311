/**
 * policy.json, read as containers/image reads it: strictly. An unknown key, a key given twice, an unknown requirement
 * or identity type, a scope the transport cannot have, or malformed JSON rejects the whole file — a policy that is
 * misread is a policy that is not enforced.
 */
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CarrierError } from '../errors.js';
import { parseStrictJson, type JsonObject, type JsonValue } from './strict-json.js';
import { PolicyFormatError, known, object, str } from './json-fields.js';
import { parseIdentityMatch, type IdentityMatch } from './identity.js';
import { validateScope } from './scope-validation.js';

export type { IdentityMatch } from './identity.js';

/** The GPG key types policy.json names; only `GPGKeys` can be evaluated (as in containers/image). */
const KEY_TYPES = new Set(['GPGKeys', 'signedByGPGKeys', 'X509Certificates', 'signedByX509CAs']);

export type PolicyRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | {
      type: 'signedBy';
      keyType: string;
      keyPath?: string;
      keyPaths?: string[];
      keyData?: Buffer;
      signedIdentity: IdentityMatch;
    }
  | { type: 'signedBaseLayer'; baseLayerIdentity: IdentityMatch }
  | {
      type: 'sigstoreSigned';
      keyPath?: string;
      keyPaths?: string[];
      keyData?: Buffer;
      keyDatas?: Buffer[];
      /** Present when the policy asks for Fulcio certificates: parsed, and refused when evaluated. */
      fulcio?: JsonObject;
      rekorPublicKeyPath?: string;
      rekorPublicKeyData?: Buffer;
      signedIdentity: IdentityMatch;
    };

export interface Policy {
  default: PolicyRequirement[];
  /** transport name → scope → requirements (scope `""` is the transport's own default). */
  transports: Record<string, Record<string, PolicyRequirement[]>>;
}

/** The policy in force: `policy` is undefined when no policy file exists (everything is accepted). */
export interface PolicySource {
  path: string | undefined;
  policy: Policy | undefined;
}

export interface LoadPolicyOptions {
  /** An explicit policy file (`--signature-policy`); it must exist. */
  signaturePolicy?: string;
  /** Home directory for `~/.config/containers/policy.json` (default: `os.homedir()`). */
  home?: string;
}

export const SYSTEM_POLICY_PATH = '/etc/containers/policy.json';

/** The policy file that applies, in containers/image's order, or undefined when none exists. */
export async function findPolicyFile(opts: LoadPolicyOptions = {}): Promise<string | undefined> {
  if (opts.signaturePolicy !== undefined && opts.signaturePolicy !== '') return opts.signaturePolicy;
  const user = path.join(opts.home ?? os.homedir(), '.config/containers/policy.json');
  for (const candidate of [user, SYSTEM_POLICY_PATH]) {
    try {
      await stat(candidate);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return undefined;
}

/** Finds and reads the policy in force; an explicit file that cannot be read is an error, not "accept". */
export async function loadPolicy(opts: LoadPolicyOptions = {}): Promise<PolicySource> {
  const file = await findPolicyFile(opts);
  if (file === undefined) return { path: undefined, policy: undefined };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CarrierError('CARRIER_INVALID_POLICY', `cannot read signature policy ${file}: ${e.message}`, { path: file, cause: err });
  }
  return { path: file, policy: parsePolicy(text, file) };
}

/** Parses policy.json text; `source` names it in errors. Throws CARRIER_INVALID_POLICY. */
export function parsePolicy(text: string, source = 'policy'): Policy {
  try {
    let doc: JsonValue;
    try {
      doc = parseStrictJson(text);
    } catch (err) {
      throw new PolicyFormatError(`malformed JSON: ${(err as Error).message}`);
    }
    const top = object(doc, 'the policy');
    known(top, ['default', 'transports'], 'the policy');
    if (top.default === undefined) throw new PolicyFormatError('the default policy is missing');
    const policy: Policy = { default: requirements(top.default, '"default"'), transports: Object.create(null) as Policy['transports'] };
    if (top.transports !== undefined && top.transports !== null) {
      const transports = object(top.transports, '"transports"');
      for (const [transport, scopesValue] of Object.entries(transports)) {
        const scopes = object(scopesValue, `transport "${transport}"`);
        const out = Object.create(null) as Record<string, PolicyRequirement[]>;
        for (const [scope, reqs] of Object.entries(scopes)) {
          const invalid = scope === '' ? undefined : validateScope(transport, scope);
          if (invalid !== undefined) throw new PolicyFormatError(`scope "${scope}" of transport "${transport}": ${invalid}`);
          out[scope] = requirements(reqs, `transports.${transport}["${scope}"]`);
        }
        policy.transports[transport] = out;
      }
    }
    return policy;
  } catch (err) {
    if (!(err instanceof PolicyFormatError)) throw err;
    throw new CarrierError(
      'CARRIER_INVALID_POLICY',
      `invalid signature policy in ${source}: ${err.message}; nothing is pulled until the file is fixed`,
      { path: source },
    );
  }
}

/** Go's []byte in JSON: standard base64, strictly. */
function bytes(v: JsonValue | undefined, where: string): Buffer {
  const s = str(v, where);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new PolicyFormatError(`${where} must be base64 data`);
  }
  return Buffer.from(s, 'base64');
}

function strings(v: JsonValue | undefined, where: string): string[] {
  if (!Array.isArray(v)) throw new PolicyFormatError(`${where} must be a list of strings`);
  return v.map((x, i) => str(x, `${where}[${i}]`));
}

function requirements(v: JsonValue | undefined, where: string): PolicyRequirement[] {
  if (!Array.isArray(v)) throw new PolicyFormatError(`${where} must be a list of requirements`);
  if (v.length === 0) throw new PolicyFormatError(`${where}: the list of requirements must not be empty`);
  return v.map((r, i) => requirement(r, `${where}[${i}]`));
}

function requirement(v: JsonValue, where: string): PolicyRequirement {
  const o = object(v, where);
  const type = str(o.type, `${where}.type`);
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      known(o, ['type'], `${where} (${type})`);
      return { type };
    case 'signedBy':
      return signedBy(o, `${where} (signedBy)`);
    case 'signedBaseLayer': {
      known(o, ['type', 'baseLayerIdentity'], `${where} (signedBaseLayer)`);
      if (o.baseLayerIdentity === undefined) throw new PolicyFormatError(`${where}: baseLayerIdentity not specified`);
      return { type, baseLayerIdentity: parseIdentityMatch(o.baseLayerIdentity, `${where}.baseLayerIdentity`) };
    }
    case 'sigstoreSigned':
      return sigstoreSigned(o, `${where} (sigstoreSigned)`);
    default:
      throw new PolicyFormatError(`unknown policy requirement type "${type}" in ${where}`);
  }
}

function identity(o: JsonObject, where: string): IdentityMatch {
  return o.signedIdentity === undefined
    ? { type: 'matchRepoDigestOrExact' }
    : parseIdentityMatch(o.signedIdentity, `${where}.signedIdentity`);
}

function signedBy(o: JsonObject, where: string): PolicyRequirement {
  known(o, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'], where);
  const keyType = o.keyType === undefined ? '' : str(o.keyType, `${where}.keyType`);
  if (!KEY_TYPES.has(keyType)) throw new PolicyFormatError(`${where}: invalid keyType "${keyType}"`);
  const sources = ['keyPath', 'keyPaths', 'keyData'].filter((k) => o[k] !== undefined);
  if (sources.length !== 1) {
    throw new PolicyFormatError(`${where}: exactly one of keyPath, keyPaths and keyData must be specified (found ${sources.length})`);
  }
  const req: PolicyRequirement = { type: 'signedBy', keyType, signedIdentity: identity(o, where) };
  if (o.keyPath !== undefined) req.keyPath = str(o.keyPath, `${where}.keyPath`);
  if (o.keyPaths !== undefined) req.keyPaths = strings(o.keyPaths, `${where}.keyPaths`);
  if (o.keyData !== undefined) req.keyData = bytes(o.keyData, `${where}.keyData`);
  return req;
}

function sigstoreSigned(o: JsonObject, where: string): PolicyRequirement {
  known(
    o,
    ['type', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'rekorPublicKeyPath', 'rekorPublicKeyData', 'signedIdentity'],
    where,
  );
  const sources = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio'].filter((k) => o[k] !== undefined);
  if (sources.length !== 1) {
    throw new PolicyFormatError(
      `${where}: exactly one of keyPath, keyPaths, keyData, keyDatas and fulcio must be specified (found ${sources.length})`,
    );
  }
  const req: PolicyRequirement = { type: 'sigstoreSigned', signedIdentity: identity(o, where) };
  if (o.keyPath !== undefined) req.keyPath = str(o.keyPath, `${where}.keyPath`);
  if (o.keyPaths !== undefined) req.keyPaths = strings(o.keyPaths, `${where}.keyPaths`);
  if (o.keyData !== undefined) req.keyData = bytes(o.keyData, `${where}.keyData`);
  if (o.keyDatas !== undefined) {
    if (!Array.isArray(o.keyDatas)) throw new PolicyFormatError(`${where}.keyDatas must be a list`);
    req.keyDatas = o.keyDatas.map((d, i) => bytes(d, `${where}.keyDatas[${i}]`));
  }
  if (o.fulcio !== undefined) req.fulcio = object(o.fulcio, `${where}.fulcio`);
  if (o.rekorPublicKeyPath !== undefined) req.rekorPublicKeyPath = str(o.rekorPublicKeyPath, `${where}.rekorPublicKeyPath`);
  if (o.rekorPublicKeyData !== undefined) req.rekorPublicKeyData = bytes(o.rekorPublicKeyData, `${where}.rekorPublicKeyData`);
  return req;
}

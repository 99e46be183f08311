/**
 * signedIdentity: which `docker-reference` inside a signature is accepted for the image being pulled. The six forms
 * and their rules are containers/image's (policy_reference_match.go); names are normalized as podman normalizes them
 * (`busybox` is `docker.io/library/busybox`).
 */
import { formatReference as full, parseReference, repositoryName as name, type ImageReference } from '../reference.js';
import { PolicyFormatError, known, object, str } from './json-fields.js';
import type { JsonValue } from './strict-json.js';

export type IdentityMatch =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

// remapIdentity prefixes: a registry host[:port], or a host followed by repository path components.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PREFIX_RE = new RegExp(`^${DOMAIN}(?:/${PATH_COMPONENT})*$`);

export function parseIdentityMatch(v: JsonValue, where: string): IdentityMatch {
  const o = object(v, where);
  const type = str(o.type, `${where}.type`);
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      known(o, ['type'], `${where} (${type})`);
      return { type };
    case 'exactReference': {
      known(o, ['type', 'dockerReference'], `${where} (exactReference)`);
      const dockerReference = str(o.dockerReference, `${where}.dockerReference`);
      const ref = parseOrUndefined(dockerReference);
      if (ref === undefined) throw new PolicyFormatError(`${where}: invalid dockerReference "${dockerReference}"`);
      if (isNameOnly(ref)) throw new PolicyFormatError(`${where}: dockerReference ${dockerReference} contains neither a tag nor digest`);
      return { type, dockerReference };
    }
    case 'exactRepository': {
      known(o, ['type', 'dockerRepository'], `${where} (exactRepository)`);
      const dockerRepository = str(o.dockerRepository, `${where}.dockerRepository`);
      if (parseOrUndefined(dockerRepository) === undefined) {
        throw new PolicyFormatError(`${where}: invalid dockerRepository "${dockerRepository}"`);
      }
      return { type, dockerRepository };
    }
    case 'remapIdentity': {
      known(o, ['type', 'prefix', 'signedPrefix'], `${where} (remapIdentity)`);
      const prefix = str(o.prefix, `${where}.prefix`);
      const signedPrefix = str(o.signedPrefix, `${where}.signedPrefix`);
      for (const p of [prefix, signedPrefix]) {
        if (!PREFIX_RE.test(p)) throw new PolicyFormatError(`${where}: prefix "${p}" is not valid`);
      }
      return { type, prefix, signedPrefix };
    }
    default:
      throw new PolicyFormatError(`unknown signedIdentity type "${type}" in ${where}`);
  }
}

/** Whether a signature's `docker-reference` is accepted for the image `intended` (the reference pulled). */
export function identityMatches(m: IdentityMatch, intended: ImageReference | undefined, signed: string): boolean {
  const sig = parseOrUndefined(signed);
  if (sig === undefined) return false;
  switch (m.type) {
    case 'matchExact':
      return intended !== undefined && !isNameOnly(intended) && !isNameOnly(sig) && full(sig) === full(intended);
    case 'matchRepoDigestOrExact':
      return intended !== undefined && repoDigestOrExact(intended, sig);
    case 'matchRepository':
      return intended !== undefined && name(sig) === name(intended);
    case 'exactReference': {
      const want = parseOrUndefined(m.dockerReference);
      return want !== undefined && !isNameOnly(want) && !isNameOnly(sig) && full(sig) === full(want);
    }
    case 'exactRepository': {
      const want = parseOrUndefined(m.dockerRepository);
      return want !== undefined && name(sig) === name(want);
    }
    case 'remapIdentity': {
      if (intended === undefined) return false;
      const remapped = remap(intended, m.prefix, m.signedPrefix);
      return remapped !== undefined && repoDigestOrExact(remapped, sig);
    }
  }
}

/** What the policy would accept, in words, for error messages. */
export function describeIdentity(m: IdentityMatch, intended: ImageReference | undefined): string {
  const image = intended === undefined ? 'the image' : full(intended);
  switch (m.type) {
    case 'matchExact':
      return image;
    case 'matchRepoDigestOrExact':
      return intended?.tag === undefined && intended !== undefined ? `${name(intended)} (any tag or digest)` : image;
    case 'matchRepository':
      return intended === undefined ? 'the image' : `${name(intended)} (any tag or digest)`;
    case 'exactReference':
      return m.dockerReference;
    case 'exactRepository':
      return `${m.dockerRepository} (any tag or digest)`;
    case 'remapIdentity': {
      const r = intended === undefined ? undefined : remap(intended, m.prefix, m.signedPrefix);
      return r === undefined ? image : full(r);
    }
  }
}

function repoDigestOrExact(intended: ImageReference, sig: ImageReference): boolean {
  if (isNameOnly(sig)) return false;
  if (intended.tag !== undefined) return full(sig) === full(intended);
  if (intended.digest !== undefined) return name(sig) === name(intended);
  return false;
}

/** Replaces `prefix` by `signedPrefix` in the intended reference when it names the prefix or a repository below it. */
function remap(ref: ImageReference, prefix: string, signedPrefix: string): ImageReference | undefined {
  const n = name(ref);
  const matches = n === prefix || (n.startsWith(prefix) && n[prefix.length] === '/');
  if (!matches) return ref;
  const rewritten = signedPrefix + full(ref).slice(prefix.length);
  const parsed = parseOrUndefined(rewritten);
  // The rewritten reference must already be fully qualified (containers/image parses it without normalizing).
  return parsed !== undefined && full(parsed) === rewritten ? parsed : undefined;
}

function isNameOnly(r: ImageReference): boolean {
  return r.tag === undefined && r.digest === undefined;
}

function parseOrUndefined(s: string): ImageReference | undefined {
  try {
    return parseReference(s);
  } catch {
    return undefined;
  }
}

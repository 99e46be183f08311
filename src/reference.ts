/**
 * Image references: `[domain/]path[:tag][@digest]`, following the grammar of the Docker distribution reference
 * package that containers/image and podman use, plus the two normalisations podman applies (pulling and local
 * naming) and the id-prefix matching podman offers for local lookups.
 *
 * This module is pure string work: it knows nothing about stores, registries or configuration.
 */
import { CarrierError } from './errors.js';

export interface ImageReference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. Never empty after parsing. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/alpine`. */
  path: string;
  tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  digest?: string;
}

export interface ParseReferenceOptions {
  /**
   * Domain for names that have none. Default `docker.io` (which also gets the `library/` prefix for one-component
   * paths). A hook for registries.conf short-name handling.
   */
  defaultDomain?: string;
}

/** docker/distribution caps the repository name (domain + `/` + path) at 255 characters. */
export const NAME_TOTAL_LENGTH_MAX = 255;

const DOCKER_DOMAIN = 'docker.io';
const LEGACY_DOCKER_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

// --- grammar -------------------------------------------------------------------------------------------------------
// path-component := alnum (separator alnum)*   alnum := [a-z0-9]+   separator := [._] | __ | -+
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
// domain := host [':' port]; host := domain-name | '[' IPv6 ']'; domain components may be uppercase.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
// tag := [\w][\w.-]{0,127}  (\w is ASCII-only in JS, as in Go's RE2)
const TAG_RE = /^\w[\w.-]{0,127}$/;
// digest := algorithm ':' hex; only the algorithms go-digest registers are accepted, lowercase hex of exact length.
const DIGEST_SYNTAX_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const FULL_ID_RE = /^[a-f0-9]{64}$/;
const ID_PREFIX_RE = /^[a-f0-9]{1,64}$/;

/**
 * Strings that designate an image by id are never names, although the grammar would accept them: a bare 64-hex
 * string (ParseNormalizedNamed refuses it) and `sha256:<hex>` (which would parse as image `sha256` with a hex tag;
 * `podman tag` refuses it with "tag by digest not supported").
 */
function rejectIdLike(s: string): void {
  if (typeof s !== 'string') throw invalid(String(s), 'not a string');
  if (FULL_ID_RE.test(s)) throw invalid(s, 'cannot specify 64-byte hexadecimal strings as a repository name');
  if (/^sha(?:256|384|512):[0-9a-fA-F]*$/.test(s)) throw invalid(s, 'a digest or image id is not a repository name');
}

function invalid(input: string, why: string): CarrierError {
  return new CarrierError('CARRIER_INVALID_REFERENCE', `invalid reference "${input}": ${why}`);
}

/** Throws CARRIER_INVALID_REFERENCE unless `digest` is `sha256|sha384|sha512:` + lowercase hex of the right length. */
export function validateDigest(digest: string, input: string = digest): void {
  if (!DIGEST_SYNTAX_RE.test(digest)) throw invalid(input, `malformed digest "${digest}"`);
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (want === undefined) throw invalid(input, `unsupported digest algorithm "${algorithm}"`);
  if (hex.length !== want) throw invalid(input, `${algorithm} digest must have ${want} hex digits, got ${hex.length}`);
  if (!/^[a-f0-9]+$/.test(hex)) throw invalid(input, 'digest hex must be lowercase');
}

export function isValidDigest(digest: string): boolean {
  try {
    validateDigest(digest);
    return true;
  } catch {
    return false;
  }
}

interface RawParts {
  name: string;
  tag?: string;
  digest?: string;
}

/** Splits off `@digest` and `:tag` and checks their syntax; the name is returned unchecked. */
function splitParts(s: string): RawParts {
  if (s === '') throw invalid(s, 'repository name must have at least one component');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(digest, s);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(s, `invalid tag "${tag}"`);
  }
  if (rest === '') throw invalid(s, 'repository name must have at least one component');
  const parts: RawParts = { name: rest };
  if (tag !== undefined) parts.tag = tag;
  if (digest !== undefined) parts.digest = digest;
  return parts;
}

/**
 * The first `/`-separated component is a domain iff it contains `.` or `:`, is `localhost`, or contains an
 * uppercase letter (repository paths are lowercase-only, so such a component cannot be a path). The uppercase
 * rule is the current distribution/reference one; podman 4.3.1 (older vendored copy) lacks it and rejects
 * `Host/bar` as "repository name must be lowercase".
 */
function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first;
}

/**
 * Parses a reference, filling in the domain (`opts.defaultDomain`, default `docker.io`) and the `library/` prefix
 * for Docker Hub. Neither `latest` nor anything else is added: tag and digest are exactly what the input had.
 */
export function parseReference(s: string, opts: ParseReferenceOptions = {}): ImageReference {
  rejectIdLike(s);
  const parts = splitParts(s);

  let domain: string;
  let path: string;
  const slash = parts.name.indexOf('/');
  if (slash !== -1 && looksLikeDomain(parts.name.slice(0, slash))) {
    domain = parts.name.slice(0, slash);
    path = parts.name.slice(slash + 1);
    if (!DOMAIN_RE.test(domain)) throw invalid(s, `invalid domain "${domain}"`);
  } else {
    domain = opts.defaultDomain ?? DOCKER_DOMAIN;
    path = parts.name;
    if (!DOMAIN_RE.test(domain)) throw invalid(s, `invalid default domain "${domain}"`);
  }
  if (domain === LEGACY_DOCKER_DOMAIN) domain = DOCKER_DOMAIN;

  if (!PATH_RE.test(path)) {
    if (path.toLowerCase() !== path && PATH_RE.test(path.toLowerCase())) {
      throw invalid(s, 'repository name must be lowercase');
    }
    throw invalid(s, `invalid repository path "${path}"`);
  }
  if (domain === DOCKER_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;

  const full = `${domain}/${path}`;
  if (full.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(s, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const ref: ImageReference = { domain, path };
  if (parts.tag !== undefined) ref.tag = parts.tag;
  if (parts.digest !== undefined) ref.digest = parts.digest;
  return ref;
}

/** `domain/path[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  let out = `${ref.domain}/${ref.path}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** Repository name without tag or digest: `domain/path`. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * True when `s` names no registry: its first component has no `.`/`:` and is not `localhost` (the test
 * containers/image's short-name handling and podman's local naming use; uppercase plays no part there).
 */
export function isShortName(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash === -1) return true;
  const first = s.slice(0, slash);
  return !(first.includes('.') || first.includes(':') || first === 'localhost');
}

/**
 * Both normalisations podman applies once it has a name: a reference carrying both a tag and a digest loses the
 * tag (podman logs "Stripped off tag from tagged and digested reference" and pulls by digest), and a reference
 * with neither gets `:latest`.
 */
function finish(ref: ImageReference): string {
  if (ref.digest !== undefined) {
    delete ref.tag;
  } else if (ref.tag === undefined) {
    ref.tag = 'latest';
  }
  return formatReference(ref);
}

/**
 * The name podman pulls: no domain → `docker.io` (`opts.defaultDomain` when given; registries.conf short-name
 * resolution will sit on top of this), `library/` for one-component Docker Hub paths, `:latest` when there is
 * neither tag nor digest, tag dropped when a digest is present.
 *
 *   alpine                    → docker.io/library/alpine:latest
 *   docker.io/alpine          → docker.io/library/alpine:latest
 *   index.docker.io/x/y:1     → docker.io/x/y:1
 *   quay.io/a/b:t@sha256:…    → quay.io/a/b@sha256:…   (observed: podman 4.3.1 pull, debug log)
 */
export function normalizePullName(s: string, opts: ParseReferenceOptions = {}): string {
  return finish(parseReference(s, opts));
}

/**
 * The name `podman tag` / `podman load` / `podman import` store for an image (c/common NormalizeName).
 * Observed with podman 4.3.1 (`podman tag`, names read back from overlay-images/images.json):
 *
 *   foo                 → localhost/foo:latest           (no domain → `localhost/`, never docker.io)
 *   foo:TAG_x           → localhost/foo:TAG_x
 *   a/b/c, registry/foo → localhost/a/b/c:latest, localhost/registry/foo:latest (first component is no domain)
 *   localhost           → localhost/localhost:latest     (a lone component is always a path)
 *   localhost:5000      → localhost/localhost:5000       (…so this is name `localhost`, tag `5000`)
 *   foo.com             → localhost/foo.com:latest
 *   docker.io/foo       → docker.io/library/foo:latest   (explicit Docker Hub still gets library/)
 *   index.docker.io/baz → docker.io/library/baz:latest
 *   localhost:5000/lp   → localhost:5000/lp:latest
 *   FOO.com/bar         → FOO.com/bar:latest            (uppercase allowed in the domain)
 *   Foo, Host/bar       → error "repository name must be lowercase" (Host/bar becomes localhost/Host/bar)
 *   foo@sha256:…, foo:t@sha256:… → `podman tag` refuses ("tag by digest not supported"); for lookups
 *                         NormalizeName keeps name@digest and strips the tag: localhost/foo@sha256:…
 *   <64 hex>            → podman 4.3.1 accepts it as localhost/<hex>:latest; Carrier refuses it, because the same
 *                         string is also an image id and lookups would be ambiguous.
 */
export function normalizeLocalName(s: string): string {
  rejectIdLike(s);
  if (isShortName(s)) {
    try {
      return finish(parseReference(`localhost/${s}`));
    } catch (err) {
      // Report the input as the caller wrote it, not with the prefix we added.
      if (err instanceof CarrierError) throw invalid(s, err.message.replace(/^invalid reference "[^"]*": /, ''));
      throw err;
    }
  }
  return finish(parseReference(s));
}

// --- ids -----------------------------------------------------------------------------------------------------------
// podman 4.3.1 (`podman image inspect`) accepts: the full 64-hex id, `sha256:` + the full id, and any unique
// lowercase-hex prefix of the bare id — even a single character. `sha256:` + a prefix is refused ("invalid format:
// no 64-byte hexadecimal value"), and uppercase hex is refused. A name lookup comes before the prefix lookup, so
// `abc` finds an image named localhost/abc:latest before an id starting with abc.

/** 64 lowercase hex characters. */
export function isFullId(s: string): boolean {
  return FULL_ID_RE.test(s);
}

/** 1–63 lowercase hex characters: something that may be a truncated image id (it may also be a name). */
export function isShortId(s: string): boolean {
  return ID_PREFIX_RE.test(s) && s.length < 64;
}

/**
 * The bare hex a lookup by id would use for `query`, or undefined when podman would not treat it as an id:
 * `sha256:<64 hex>` → the hex; `<1..64 hex>` → itself; anything else (including `sha256:<prefix>`) → undefined.
 */
export function idQuery(query: string): string | undefined {
  if (query.startsWith('sha256:')) {
    const hex = query.slice(7);
    return FULL_ID_RE.test(hex) ? hex : undefined;
  }
  return ID_PREFIX_RE.test(query) ? query : undefined;
}

/** True when `query` (full id, `sha256:` full id, or hex prefix) designates `id` (bare or `sha256:`-prefixed). */
export function matchesIdPrefix(id: string, query: string): boolean {
  const bare = id.startsWith('sha256:') ? id.slice(7) : id;
  if (!FULL_ID_RE.test(bare)) return false;
  const q = idQuery(query);
  return q !== undefined && bare.startsWith(q);
}

export type IdResolution = { kind: 'none' } | { kind: 'unique'; id: string } | { kind: 'ambiguous'; ids: string[] };

/**
 * Resolves `query` against a set of ids the way c/storage's prefix index does: an exact id always wins, otherwise
 * the prefix must match exactly one id.
 */
export function resolveIdPrefix(ids: Iterable<string>, query: string): IdResolution {
  const q = idQuery(query);
  if (q === undefined) return { kind: 'none' };
  const hits: string[] = [];
  for (const id of ids) {
    if (!matchesIdPrefix(id, q)) continue;
    const bare = id.startsWith('sha256:') ? id.slice(7) : id;
    if (bare === q) return { kind: 'unique', id };
    if (!hits.includes(id)) hits.push(id);
  }
  if (hits.length === 0) return { kind: 'none' };
  if (hits.length === 1) return { kind: 'unique', id: hits[0]! };
  return { kind: 'ambiguous', ids: hits };
}

// --- names written into store records -----------------------------------------------------------------------------
// podman 4.3.1 reads every name of every image record with its vendored reference parser, and one name it cannot
// parse makes `podman images` fail for the whole store ("invalid reference format"). Its grammar is older than the
// one parseReference follows: no IPv6 hosts (`[::1]:5000/x:1` is refused by `podman tag`), and a first component is a
// domain only when it has `.` or `:` or is `localhost` (no uppercase rule). Observed with podman 4.3.1: `podman tag`
// refuses `[::1]:5000/x:1`, `[::1]/x:1`, `a/B:1`, `x.y/a___b:1`, a 256-character name; `podman images` fails on a
// store whose images.json holds `[::1]:5000/x:1`.

/** The most names one image record may carry (podman sets no bound; thousands make every listing crawl). */
export const MAX_NAMES_PER_IMAGE = 100;

// domain := component ('.' component)* (':' port)?, without the IPv6 form.
const STORED_DOMAIN_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);

/** The start of `s`, quoted and escaped, for an error message about a name that may be long or hold controls. */
function quoted(s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s);
}

/**
 * Throws CARRIER_INVALID_REFERENCE unless `name` is one podman itself would write into an image record: it parses
 * with podman 4.3's reference grammar (so podman can read the store afterwards), and it is already in the
 * normalized form podman stores — a domain (with `.` or `:`, or `localhost`), a lowercase path (`library/` for a
 * one-component Docker Hub path), and exactly one of `:tag` or `@digest` (podman strips the tag of a digested name).
 * Call it on every name before it goes into a record: `Store.tag`, the names an archive or layout brings in
 * (load), and the name a pull records.
 */
export function validateStoredName(name: string): void {
  if (typeof name !== 'string') throw new CarrierError('CARRIER_INVALID_REFERENCE', `invalid image name: not a string`);
  const bad = (why: string): CarrierError => new CarrierError('CARRIER_INVALID_REFERENCE', `invalid image name ${quoted(name)}: ${why}`);
  // Longest possible: a 255-character repository, then `@sha512:` and 128 hex digits.
  if (name.length > NAME_TOTAL_LENGTH_MAX + 8 + 128) throw bad(`${name.length} characters is too long`);
  if (/[^\x21-\x7e]/.test(name)) throw bad('only printable ASCII without spaces is allowed');
  let parts: RawParts;
  try {
    parts = splitParts(name);
  } catch (err) {
    throw bad((err as Error).message.replace(/^invalid reference "[^"]*": /, ''));
  }
  const slash = parts.name.indexOf('/');
  const domain = slash === -1 ? '' : parts.name.slice(0, slash);
  const path = parts.name.slice(slash + 1);
  if (slash === -1 || isShortName(parts.name)) throw bad('it names no registry (podman stores localhost/NAME or a registry host)');
  if (domain.startsWith('[')) throw bad('podman cannot read an IPv6 registry address in a name');
  if (!STORED_DOMAIN_RE.test(domain)) throw bad(`invalid registry "${domain}"`);
  if (!PATH_RE.test(path)) throw bad(path.toLowerCase() !== path ? 'repository name must be lowercase' : `invalid repository path "${path}"`);
  if (parts.name.length > NAME_TOTAL_LENGTH_MAX) throw bad(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  if (domain === LEGACY_DOCKER_DOMAIN || (domain === DOCKER_DOMAIN && !path.includes('/'))) {
    throw bad(`not in the form podman stores (${normalizePullName(name)})`);
  }
  if ((parts.tag === undefined) === (parts.digest === undefined)) throw bad('a stored name has exactly one of :tag or @digest');
}

/** validateStoredName for each name, and at most MAX_NAMES_PER_IMAGE of them. */
export function validateStoredNames(names: readonly string[]): void {
  if (names.length > MAX_NAMES_PER_IMAGE) {
    throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `an image may have at most ${MAX_NAMES_PER_IMAGE} names, not ${names.length}`);
  }
  for (const n of names) validateStoredName(n);
}

/**
 * registries.conf (containers-registries.conf(5), version 2 TOML): search registries, short-name mode, aliases and
 * the `[[registry]]` tables that block a registry, mark it insecure, move a namespace to another location, or put
 * mirrors in front of it.
 *
 * Carrier reads a registries.conf only when asked to: an explicit file, or `$CONTAINERS_REGISTRIES_CONF`. It never
 * reads /etc by default; without a file the only search registry is docker.io.
 */
import fs from 'node:fs';
import { CarrierError } from './errors.js';
import { parseToml, type TomlTable } from './config-toml.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';
export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

export interface MirrorConf {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

export interface RegistryConf {
  /** What image names the table applies to; defaults to `location`. May start with `*.` (any subdomains). */
  prefix: string;
  /** Where the prefix's images really live (`host[:port][/namespace...]`); empty only for wildcard prefixes. */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: MirrorConf[];
}

export interface RegistriesConf {
  /** The file it came from, when there was one. */
  file?: string;
  unqualifiedSearchRegistries: string[];
  shortNameMode?: ShortNameMode;
  registries: RegistryConf[];
  /** Short name → fully qualified name. */
  aliases: Record<string, string>;
  /** Unknown keys and ignored settings, one sentence each. */
  warnings: string[];
}

export const DEFAULT_SEARCH_REGISTRIES: readonly string[] = ['docker.io'];

/** The configuration Carrier uses when no file is given: docker.io as the only search registry. */
export function defaultRegistriesConf(): RegistriesConf {
  return { unqualifiedSearchRegistries: [...DEFAULT_SEARCH_REGISTRIES], registries: [], aliases: {}, warnings: [] };
}

export interface LoadRegistriesConfOptions {
  /** Read this file (an error if it is missing). */
  file?: string;
  /** Environment to take `CONTAINERS_REGISTRIES_CONF` from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Loads the file given, else `$CONTAINERS_REGISTRIES_CONF`, else returns {@link defaultRegistriesConf}. */
export async function loadRegistriesConf(opts: LoadRegistriesConfOptions = {}): Promise<RegistriesConf> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env.CONTAINERS_REGISTRIES_CONF || undefined);
  if (file === undefined) return defaultRegistriesConf();
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CarrierError(e.code ?? 'CARRIER_INVALID_CONFIG', `cannot read registries.conf ${file}: ${e.message}`, { path: file, cause: err });
  }
  return parseRegistriesConf(text, file);
}

function fail(file: string | undefined, message: string): never {
  const details = file === undefined ? {} : { path: file };
  throw new CarrierError('CARRIER_INVALID_CONFIG', `${file ?? 'registries.conf'}: ${message}`, details);
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const TOP_KEYS = new Set(['unqualified-search-registries', 'short-name-mode', 'registry', 'aliases', 'credential-helpers']);
const REGISTRY_KEYS = new Set(['prefix', 'location', 'insecure', 'blocked', 'mirror', 'mirror-by-digest-only']);
const MIRROR_KEYS = new Set(['location', 'insecure', 'pull-from-mirror']);
const IGNORED_TOP_KEYS = new Set(['additional-layer-store-auth-helper']);

/** Parses registries.conf text (version 2). Throws CARRIER_INVALID_CONFIG on bad values. */
export function parseRegistriesConf(text: string, file?: string): RegistriesConf {
  const doc = parseToml(text, file ?? 'registries.conf');
  const conf = defaultRegistriesConf();
  if (file !== undefined) conf.file = file;
  const warn = (m: string): void => {
    conf.warnings.push(`${file ?? 'registries.conf'}: ${m}`);
  };

  for (const key of Object.keys(doc)) {
    if (key === 'registries') warn('the version 1 [registries.*] tables are not supported and were ignored');
    else if (IGNORED_TOP_KEYS.has(key)) warn(`"${key}" is not supported and was ignored`);
    else if (!TOP_KEYS.has(key)) warn(`unknown key "${key}" ignored`);
  }

  const search = doc['unqualified-search-registries'];
  if (search !== undefined) {
    if (!Array.isArray(search) || !search.every((s) => typeof s === 'string')) fail(file, 'unqualified-search-registries must be an array of strings');
    for (const s of search as string[]) {
      if (s.includes('/') || s === '') fail(file, `unqualified-search-registries entry "${s}" must be a host[:port]`);
    }
    conf.unqualifiedSearchRegistries = [...(search as string[])];
  }

  const mode = doc['short-name-mode'];
  if (mode !== undefined) {
    if (mode !== 'enforcing' && mode !== 'permissive' && mode !== 'disabled') {
      fail(file, `short-name-mode must be "enforcing", "permissive" or "disabled", got ${typeof mode === 'string' ? JSON.stringify(mode) : `a ${typeof mode}`}`);
    }
    conf.shortNameMode = mode;
  }

  const helpers = doc['credential-helpers'];
  if (helpers !== undefined) {
    if (!Array.isArray(helpers)) fail(file, 'credential-helpers must be an array of strings');
    if (helpers.some((h) => h !== 'containers-auth.json')) warn('credential helpers are not supported; only auth files are read');
  }

  const aliases = doc.aliases;
  if (aliases !== undefined) {
    if (!isTable(aliases)) fail(file, '[aliases] must be a table');
    for (const [name, value] of Object.entries(aliases)) {
      if (typeof value !== 'string') fail(file, `alias "${name}" must be a string`);
      let ref: ImageReference;
      try {
        ref = parseReference(value);
      } catch (err) {
        fail(file, `alias "${name}" = "${value}": ${(err as Error).message}`);
      }
      if (ref.digest !== undefined) fail(file, `alias "${name}" must not name a digest`);
      conf.aliases[name] = value;
    }
  }

  const regs = doc.registry;
  if (regs !== undefined) {
    if (!Array.isArray(regs)) fail(file, '"registry" must be an array of tables ([[registry]])');
    const seen = new Set<string>();
    regs.forEach((r: unknown, i: number) => {
      const where = `[[registry]] #${i + 1}`;
      if (!isTable(r)) fail(file, `${where} must be a table`);
      for (const k of Object.keys(r)) if (!REGISTRY_KEYS.has(k)) warn(`${where}: unknown key "${k}" ignored`);
      const location = optString(r, 'location', where, file) ?? '';
      const prefix = stripScheme(optString(r, 'prefix', where, file) ?? '') || location;
      if (prefix === '') fail(file, `${where} needs a prefix or a location`);
      const wildcard = prefix.startsWith('*.');
      if (wildcard && !/^\*\.[^/*:@]+$/.test(prefix)) fail(file, `${where}: wildcard prefix "${prefix}" must be "*.domain" only`);
      if (!wildcard && prefix.includes('*')) fail(file, `${where}: a wildcard is allowed only as the leading "*." of a prefix`);
      if (!wildcard && location === '') fail(file, `${where}: location is required`);
      if (wildcard && location !== '') warn(`${where}: location is ignored for the wildcard prefix "${prefix}"`);
      if (location.includes('://')) fail(file, `${where}: location "${location}" must not have a scheme`);
      if (seen.has(prefix)) fail(file, `${where}: prefix "${prefix}" is defined twice`);
      seen.add(prefix);
      const digestOnly = optBool(r, 'mirror-by-digest-only', where, file) ?? false;
      const mirrors: MirrorConf[] = [];
      const ms = r.mirror;
      if (ms !== undefined) {
        if (!Array.isArray(ms)) fail(file, `${where}: mirror must be an array of tables ([[registry.mirror]])`);
        ms.forEach((m: unknown, j: number) => {
          const mw = `${where} mirror #${j + 1}`;
          if (!isTable(m)) fail(file, `${mw} must be a table`);
          for (const k of Object.keys(m)) if (!MIRROR_KEYS.has(k)) warn(`${mw}: unknown key "${k}" ignored`);
          const mloc = optString(m, 'location', mw, file);
          if (!mloc) fail(file, `${mw}: location is required`);
          if (mloc.includes('://')) fail(file, `${mw}: location "${mloc}" must not have a scheme`);
          const pfm = optString(m, 'pull-from-mirror', mw, file);
          if (pfm !== undefined && pfm !== 'all' && pfm !== 'digest-only' && pfm !== 'tag-only') {
            fail(file, `${mw}: pull-from-mirror must be "all", "digest-only" or "tag-only", got "${pfm}"`);
          }
          if (pfm !== undefined && digestOnly) fail(file, `${mw}: pull-from-mirror cannot be combined with mirror-by-digest-only`);
          mirrors.push({ location: mloc, insecure: optBool(m, 'insecure', mw, file) ?? false, pullFromMirror: (pfm as PullFromMirror | undefined) ?? (digestOnly ? 'digest-only' : 'all') });
        });
      }
      conf.registries.push({
        prefix,
        location: wildcard ? '' : location,
        insecure: optBool(r, 'insecure', where, file) ?? false,
        blocked: optBool(r, 'blocked', where, file) ?? false,
        mirrors,
      });
    });
  }
  return conf;
}

function stripScheme(s: string): string {
  return s.replace(/^https?:\/\//, '');
}

function optString(t: TomlTable, key: string, where: string, file: string | undefined): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(file, `${where}: ${key} must be a string`);
  return v;
}

function optBool(t: TomlTable, key: string, where: string, file: string | undefined): boolean | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(file, `${where}: ${key} must be true or false`);
  return v;
}

// --- resolution -------------------------------------------------------------------------------------------------

export interface RegistryEndpoint {
  /** `host[:port]/repository` this endpoint serves the image from (after prefix rewriting). */
  location: string;
  /** `host[:port]` to contact (docker.io stays docker.io; the client maps it to its API host). */
  registry: string;
  /** Repository path on that registry. */
  repository: string;
  /** Plain http and unverified TLS allowed. */
  insecure: boolean;
  mirror: boolean;
}

export interface ResolvedRegistry {
  /** Mirrors first (those whose pull-from-mirror fits the reference), then the primary location. */
  endpoints: RegistryEndpoint[];
  blocked: boolean;
  /** The `[[registry]]` table that matched, if any. */
  match?: RegistryConf;
}

/**
 * Whether `name` (domain/path[:tag][@digest]) starts with `prefix` at a component boundary (the next character is
 * `/`, `:` or `@`, or there is none), or, for `*.domain`, whether name's host is a subdomain of `domain`.
 * Returns the length of the matched text, or -1.
 */
function matchPrefix(name: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const end = name.search(/[/]/);
    const host = end === -1 ? name : name.slice(0, end);
    const hostname = host.replace(/:\d+$/, '');
    return hostname.endsWith(prefix.slice(1)) && hostname.length > prefix.length - 1 ? host.length : -1;
  }
  if (!name.startsWith(prefix)) return -1;
  if (name.length === prefix.length) return prefix.length;
  const next = name[prefix.length];
  // A ':' after a bare host would be a port (another registry), not a tag.
  return next === '/' || next === '@' || (next === ':' && prefix.includes('/')) ? prefix.length : -1;
}

function rewrite(location: string, rest: string, insecure: boolean, mirror: boolean): RegistryEndpoint {
  const full = (location + rest).replace(/\/+$/, '');
  const slash = full.indexOf('/');
  if (slash <= 0 || slash === full.length - 1) {
    throw new CarrierError('CARRIER_INVALID_CONFIG', `registries.conf location "${location}" leaves no repository path for "${full}"`);
  }
  const registry = full.slice(0, slash);
  const repository = full.slice(slash + 1);
  try {
    parseReference(`${registry}/${repository}`);
  } catch (err) {
    throw new CarrierError('CARRIER_INVALID_CONFIG', `registries.conf location "${location}" gives an invalid name "${full}": ${(err as Error).message}`, { cause: err });
  }
  return { location: full, registry, repository, insecure, mirror };
}

/**
 * The endpoints to pull `ref` from: the `[[registry]]` with the longest matching prefix rewrites the repository
 * location and adds its mirrors (filtered by `pull-from-mirror`: `digest-only` mirrors are used only for
 * references by digest, `tag-only` only for references by tag). Without a match, the reference's own registry.
 */
export function resolveRegistry(conf: RegistriesConf | undefined, ref: ImageReference | string): ResolvedRegistry {
  const r = typeof ref === 'string' ? parseReference(ref) : ref;
  const name = formatReference(r);
  const nameOnly = `${r.domain}/${r.path}`;
  let best: RegistryConf | undefined;
  let bestLen = -1;
  for (const reg of conf?.registries ?? []) {
    const len = matchPrefix(name, reg.prefix);
    // Longest match wins; an exact (non-wildcard) prefix beats a wildcard of the same length.
    if (len > bestLen || (len === bestLen && len >= 0 && best?.prefix.startsWith('*.') && !reg.prefix.startsWith('*.'))) {
      best = reg;
      bestLen = len;
    }
  }
  const own: RegistryEndpoint = { location: nameOnly, registry: r.domain, repository: r.path, insecure: false, mirror: false };
  if (!best) return { endpoints: [own], blocked: false };

  const wildcard = best.prefix.startsWith('*.');
  // The part of the name after the matched prefix, without tag or digest (those stay the reference's own).
  const matchedInName = Math.min(bestLen, nameOnly.length);
  const rest = nameOnly.slice(matchedInName);
  const byDigest = r.digest !== undefined;
  const endpoints: RegistryEndpoint[] = [];
  for (const m of best.mirrors) {
    if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
    if (m.pullFromMirror === 'tag-only' && byDigest) continue;
    endpoints.push(rewrite(m.location, rest, m.insecure, true));
  }
  endpoints.push(wildcard ? { ...own, insecure: best.insecure } : rewrite(best.location, rest, best.insecure, false));
  return { endpoints, blocked: best.blocked, match: best };
}

/**
 * registries.d: where a registry's signatures live. Every `*.yaml` file of one directory (the caller's, else
 * `~/.config/containers/registries.d` when it exists, else `/etc/containers/registries.d`) is merged; a namespace or
 * `default-docker` defined twice is an error. A namespace is looked up like a policy scope, most specific first.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CarrierError } from '../errors.js';
import type { ImageReference } from '../reference.js';
import { dockerIdentity, dockerNamespaces } from './scopes.js';

export interface RegistryNamespace {
  /** Base URL of simple-signing signatures for reading (and writing when no staging URL is set). */
  lookaside?: string;
  lookasideStaging?: string;
  /** Whether sigstore signatures are read from and written to the registry (`sha256-<hex>.sig` tags). */
  useSigstoreAttachments?: boolean;
}

export interface RegistriesD {
  /** The directory read, or undefined when none existed. */
  dir: string | undefined;
  defaultDocker?: RegistryNamespace;
  docker: Record<string, RegistryNamespace>;
}

export interface LoadRegistriesDOptions {
  /** An explicit registries.d directory. */
  registriesDir?: string;
  home?: string;
}

export const SYSTEM_REGISTRIES_D = '/etc/containers/registries.d';

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function findRegistriesDir(opts: LoadRegistriesDOptions = {}): Promise<string> {
  if (opts.registriesDir !== undefined && opts.registriesDir !== '') return opts.registriesDir;
  const user = path.join(opts.home ?? os.homedir(), '.config/containers/registries.d');
  return (await exists(user)) ? user : SYSTEM_REGISTRIES_D;
}

function invalid(file: string, what: string, cause?: unknown): CarrierError {
  return new CarrierError('CARRIER_INVALID_CONFIG', `signature storage configuration ${file}: ${what}`, { path: file, cause });
}

function namespace(v: unknown, file: string, where: string): RegistryNamespace {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(file, `${where} must be a mapping`);
  const o = v as Record<string, unknown>;
  const text = (k: string): string | undefined => {
    const x = o[k];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'string') throw invalid(file, `${where}.${k} must be a string`);
    return x;
  };
  const ns: RegistryNamespace = {};
  const lookaside = text('lookaside') ?? text('sigstore');
  const staging = text('lookaside-staging') ?? text('sigstore-staging');
  if (lookaside !== undefined) ns.lookaside = lookaside;
  if (staging !== undefined) ns.lookasideStaging = staging;
  const attach = o['use-sigstore-attachments'];
  if (attach !== undefined && attach !== null) {
    if (typeof attach !== 'boolean') throw invalid(file, `${where}.use-sigstore-attachments must be true or false`);
    ns.useSigstoreAttachments = attach;
  }
  return ns;
}

export async function loadRegistriesD(opts: LoadRegistriesDOptions = {}): Promise<RegistriesD> {
  const dir = await findRegistriesDir(opts);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { dir: undefined, docker: {} };
    throw err;
  }
  const out: RegistriesD = { dir, docker: Object.create(null) as RegistriesD['docker'] };
  const from = new Map<string, string>();
  // Imported here, not with the module: YAML is most of what loading the trust code would cost a short command.
  const { parse: parseYaml } = await import('yaml');
  for (const n of names) {
    const file = path.join(dir, n);
    let doc: unknown;
    try {
      doc = parseYaml(await readFile(file, 'utf8'));
    } catch (err) {
      throw invalid(file, (err as Error).message, err);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw invalid(file, 'the document must be a mapping');
    const d = doc as Record<string, unknown>;
    if (d['default-docker'] !== undefined && d['default-docker'] !== null) {
      if (out.defaultDocker !== undefined) throw invalid(file, `"default-docker" is also defined in ${from.get('')}`);
      out.defaultDocker = namespace(d['default-docker'], file, 'default-docker');
      from.set('', file);
    }
    const docker = d.docker;
    if (docker === undefined || docker === null) continue;
    if (typeof docker !== 'object' || Array.isArray(docker)) throw invalid(file, '"docker" must be a mapping');
    for (const [ns, v] of Object.entries(docker as Record<string, unknown>)) {
      if (from.has(`docker:${ns}`)) throw invalid(file, `namespace "${ns}" is also defined in ${from.get(`docker:${ns}`)}`);
      out.docker[ns] = namespace(v, file, `docker["${ns}"]`);
      from.set(`docker:${ns}`, file);
    }
  }
  return out;
}

function pick<T>(conf: RegistriesD, ref: ImageReference, get: (ns: RegistryNamespace) => T | undefined): T | undefined {
  for (const scope of [dockerIdentity(ref), ...dockerNamespaces(ref)]) {
    const ns = Object.hasOwn(conf.docker, scope) ? conf.docker[scope] : undefined;
    const v = ns === undefined ? undefined : get(ns);
    if (v !== undefined) return v;
  }
  return conf.defaultDocker === undefined ? undefined : get(conf.defaultDocker);
}

/**
 * The lookaside directory of the image's repository: the configured base URL (staging first when writing) plus
 * `/<repository path>`; without configuration, the local default podman uses (root: /var/lib/containers/sigstore,
 * otherwise ~/.local/share/containers/sigstore).
 */
export function lookasideBase(conf: RegistriesD, ref: ImageReference, opts: { write?: boolean; home?: string } = {}): URL {
  const top = pick(conf, ref, (ns) => (opts.write === true ? (ns.lookasideStaging ?? ns.lookaside) : ns.lookaside));
  let base: URL;
  if (top !== undefined) {
    try {
      base = new URL(top);
    } catch (err) {
      throw new CarrierError('CARRIER_INVALID_CONFIG', `invalid signature storage URL ${top} in registries.d`, { cause: err });
    }
  } else {
    const root = process.geteuid?.() === 0;
    const dir = root ? '/var/lib/containers/sigstore' : path.join(opts.home ?? os.homedir(), '.local/share/containers/sigstore');
    base = new URL(`file://${dir}`);
  }
  base.pathname = `${base.pathname.replace(/\/$/, '')}/${ref.path}`;
  return base;
}

/** `<base>@sha256=<hex>/signature-<n>` (n from 1). */
export function lookasideUrl(base: URL, manifestDigest: string, n: number): URL {
  const u = new URL(base.href);
  u.pathname = `${u.pathname}@${manifestDigest.replace(':', '=')}/signature-${n}`;
  return u;
}

export function usesSigstoreAttachments(conf: RegistriesD, ref: ImageReference): boolean {
  return pick(conf, ref, (ns) => ns.useSigstoreAttachments) ?? false;
}

/**
 * Registry credentials, found where podman/skopeo find them: `--creds user:pass`, `--authfile` /
 * `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json` then `~/.config/containers/auth.json`; the
 * Docker client's `~/.docker/config.json` is consulted last in every case. Within a file the most specific key wins:
 * `host/ns/repo`, then `host/ns`, then `host`; legacy keys with a scheme or a `/v1/` path (Docker Hub's
 * `https://index.docker.io/v1/`) are matched by their host. Credential helpers are not run (a warning says so).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CarrierError } from '../errors.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface CredentialStore {
  /** Credentials for `registry` (host[:port], `docker.io` for Docker Hub), most specific to `repository` first. */
  lookup(registry: string, repository?: string): Credentials | undefined;
}

export interface CredentialOptions {
  /** `user:pass` (podman `--creds`): used for every registry, files are not read. */
  creds?: string;
  /** podman `--authfile`: replaces `$REGISTRY_AUTH_FILE` and the containers auth.json locations. */
  authfile?: string;
  env?: NodeJS.ProcessEnv;
  /** Home directory (default os.homedir()). */
  home?: string;
  /** Called once per file for settings Carrier ignores (credential helpers, identity tokens). */
  onWarning?: (message: string) => void;
}

/** Parses `user:pass`; the password may contain ':'. */
export function parseCreds(s: string): Credentials {
  const colon = s.indexOf(':');
  if (colon <= 0) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'credentials must be given as USERNAME:PASSWORD');
  return { username: s.slice(0, colon), password: s.slice(colon + 1) };
}

/** The auth files consulted, in order. */
export function authFilePaths(opts: CredentialOptions = {}): string[] {
  return authFiles(opts).map((f) => f.path);
}

interface AuthFile {
  path: string;
  /** Named by the caller (`--authfile`, `$REGISTRY_AUTH_FILE`): a file that cannot be read is an error. */
  explicit: boolean;
}

/**
 * The auth files with where each came from. A default location that cannot be read is skipped, as podman skips it:
 * without a login session (`su`, `setpriv`, `sudo -u`) `$XDG_RUNTIME_DIR` is unset and the fallback
 * `/run/containers/<uid>` sits under a directory root made 0700.
 */
function authFiles(opts: CredentialOptions): AuthFile[] {
  const env = opts.env ?? process.env;
  const home = opts.home ?? env.HOME ?? os.homedir();
  const files: AuthFile[] = [];
  const explicit = opts.authfile ?? (env.REGISTRY_AUTH_FILE || undefined);
  if (explicit !== undefined) {
    files.push({ path: explicit, explicit: true });
  } else {
    const runtime = env.XDG_RUNTIME_DIR || `/run/containers/${process.getuid?.() ?? 0}`;
    files.push({ path: path.join(runtime, 'containers', 'auth.json'), explicit: false });
    files.push({ path: path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json'), explicit: false });
  }
  files.push({ path: path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json'), explicit: false });
  return files;
}

interface AuthEntry {
  auth?: unknown;
  identitytoken?: unknown;
}

/** `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2` → `host:5000`; other keys unchanged. */
function normalizeKey(key: string): string {
  let k = key;
  if (/^https?:\/\//.test(k)) {
    k = k.replace(/^https?:\/\//, '');
    k = k.split('/')[0]!;
  }
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = 'docker.io';
  return k;
}

class FileCredentialStore implements CredentialStore {
  private readonly cache = new Map<string, Record<string, AuthEntry> | null>();
  /** File contents, read once up front off the event loop (undefined: no such file). */
  private readonly texts = new Map<string, string | undefined>();

  /** Reads every auth file (fs/promises); lookups then only parse what was read. */
  async preload(): Promise<void> {
    for (const { path: file, explicit } of this.sources) {
      try {
        this.texts.set(file, await fs.promises.readFile(file, 'utf8'));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const unreadableDefault = !explicit && (code === 'EACCES' || code === 'EPERM');
        if (code !== 'ENOENT' && code !== 'ENOTDIR' && !unreadableDefault) {
          throw new CarrierError(code ?? 'CARRIER_INVALID_CONFIG', `cannot read auth file ${file}: ${(err as Error).message}`, { path: file, cause: err });
        }
        this.texts.set(file, undefined);
      }
    }
  }
  private readonly warned = new Set<string>();

  private readonly files: string[];

  constructor(private readonly sources: AuthFile[], private readonly onWarning?: (m: string) => void) {
    this.files = sources.map((f) => f.path);
  }

  private warn(file: string, message: string): void {
    const key = `${file}\0${message}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.onWarning?.(`${file}: ${message}`);
  }

  private auths(file: string): Record<string, AuthEntry> | null {
    if (this.cache.has(file)) return this.cache.get(file)!;
    let result: Record<string, AuthEntry> | null = null;
    const text = this.texts.get(file);
    if (text !== undefined && text.trim() !== '') {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw new CarrierError('CARRIER_INVALID_CONFIG', `auth file ${file} is not valid JSON: ${(err as Error).message}`, { path: file, cause: err });
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        throw new CarrierError('CARRIER_INVALID_CONFIG', `auth file ${file} must hold a JSON object`, { path: file });
      }
      const d = doc as Record<string, unknown>;
      if (d.credHelpers !== undefined || d.credsStore !== undefined) this.warn(file, 'credential helpers (credHelpers/credsStore) are not supported and were ignored');
      const auths = d.auths;
      if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
        throw new CarrierError('CARRIER_INVALID_CONFIG', `auth file ${file}: "auths" must be an object`, { path: file });
      }
      result = (auths as Record<string, AuthEntry> | undefined) ?? {};
    }
    this.cache.set(file, result);
    return result;
  }

  private decode(file: string, key: string, e: AuthEntry): Credentials | undefined {
    if (typeof e !== 'object' || e === null) return undefined;
    if (typeof e.identitytoken === 'string' && e.identitytoken !== '') {
      this.warn(file, `identity tokens (${key}) are not supported and were ignored`);
    }
    if (typeof e.auth !== 'string' || e.auth === '') return undefined;
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new CarrierError('CARRIER_INVALID_CONFIG', `auth file ${file}: the "auth" of ${key} is not base64 of user:password`, { path: file });
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }

  lookup(registry: string, repository?: string): Credentials | undefined {
    const keys: string[] = [];
    if (repository) {
      const parts = repository.split('/');
      for (let n = parts.length; n >= 1; n--) keys.push(`${registry}/${parts.slice(0, n).join('/')}`);
    }
    keys.push(registry);
    for (const file of this.files) {
      const auths = this.auths(file);
      if (!auths) continue;
      for (const k of keys) {
        if (Object.hasOwn(auths, k)) {
          const c = this.decode(file, k, auths[k]!);
          if (c) return c;
        }
      }
      // Legacy keys: with a scheme and maybe a path (the Docker CLI writes Docker Hub as https://index.docker.io/v1/).
      for (const [k, e] of Object.entries(auths)) {
        if (k === registry || !/^https?:\/\//.test(k) && !k.startsWith('index.docker.io')) continue;
        if (normalizeKey(k) === registry) {
          const c = this.decode(file, k, e);
          if (c) return c;
        }
      }
    }
    return undefined;
  }
}

/** The credential store for these options (the auth files are read now, once, without blocking the event loop). */
export async function loadCredentials(opts: CredentialOptions = {}): Promise<CredentialStore> {
  if (opts.creds !== undefined) {
    const c = parseCreds(opts.creds);
    return { lookup: () => c };
  }
  const store = new FileCredentialStore(authFiles(opts), opts.onWarning);
  await store.preload();
  return store;
}

/** A store over fixed credentials per registry host (tests, embedding). */
export function staticCredentials(map: Record<string, Credentials>): CredentialStore {
  return { lookup: (registry) => map[registry] };
}

// Registry TLS trust as podman reads it (containers-certs.d(5)): for a registry `host[:port]`, the directory
// `certs.d/host[:port]/` holds extra certificate authorities (`*.crt`) and a client certificate (`*.cert` with its
// `*.key`). Looked for in $XDG_CONFIG_HOME/containers/certs.d (rootless), /etc/containers/certs.d and
// /etc/docker/certs.d, first directory found wins; `--cert-dir DIR` names the one directory to use for every registry
// instead. The authorities are added to Node's own (registry/agents.ts), as podman adds them to the system pool.
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CarrierError } from '../errors.js';

export interface HostTls {
  /** The directory's authorities (PEM), trusted besides Node's own. */
  ca: string[];
  cert?: string;
  key?: string;
  /** The directory they came from. */
  dir: string;
}

/** The certs.d directories podman looks in, most specific first. */
export function certsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return [join(config, 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

async function names(dir: string): Promise<string[] | undefined> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new CarrierError(code ?? 'CARRIER_INVALID_CONFIG', `cannot read the certificate directory ${dir}: ${(err as Error).message}`, { path: dir, cause: err });
  }
}

/** Reads one certificate directory; undefined when it does not exist or holds nothing of use. */
export async function readCertDir(dir: string): Promise<HostTls | undefined> {
  const list = await names(dir);
  if (!list) return undefined;
  const read = (n: string): Promise<string> => readFile(join(dir, n), 'utf8');
  const extra = await Promise.all(list.filter((n) => n.endsWith('.crt')).map(read));
  const certs = list.filter((n) => n.endsWith('.cert'));
  let cert: string | undefined;
  let key: string | undefined;
  if (certs.length > 0) {
    const name = certs[0]!;
    const keyName = name.replace(/\.cert$/, '.key');
    if (!list.includes(keyName)) {
      throw new CarrierError('CARRIER_INVALID_CONFIG', `client certificate ${join(dir, name)} has no key ${keyName} beside it`, { path: join(dir, name) });
    }
    [cert, key] = await Promise.all([read(name), read(keyName)]);
  }
  if (extra.length === 0 && cert === undefined) return undefined;
  return { ca: extra, ...(cert !== undefined ? { cert, key: key! } : {}), dir };
}

/** The TLS settings for `host` (`name[:port]`): `certDir` when given, else the first certs.d/host directory found. */
export async function hostTls(host: string, certDir?: string, env: NodeJS.ProcessEnv = process.env): Promise<HostTls | undefined> {
  if (certDir !== undefined) return readCertDir(certDir);
  if (host.includes('/') || host.startsWith('.')) return undefined;
  for (const base of certsDirs(env)) {
    const dir = join(base, host);
    if ((await names(dir)) !== undefined) return readCertDir(dir);
  }
  return undefined;
}

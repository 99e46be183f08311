// Entering Carrier's rootless user + mount namespace from outside it, as `podman unshare` does: the store's
// locations are resolved here first (inside, the uid is 0 and the defaults would differ) and handed on in the
// environment, so a program inside opens the same store.
import { isRootless, inUserNamespace } from '../host.js';
import { resolveStoreConfig, type StoreLocationOptions } from '../store/config.js';
import { findOnPath } from '../fs/paths.js';
import { USERNS_ENV, requireUnshare, unshareCommand } from './userns.js';

/**
 * True when overlay mounts need Carrier's user namespace and this process is not in one yet: an unprivileged user
 * outside any user namespace.
 */
export function needsUserNamespace(env: NodeJS.ProcessEnv = process.env): boolean {
  return isRootless() && !inUserNamespace() && env[USERNS_ENV] !== '1';
}

/** A program to spawn: `file` with `args`, in `env`. */
export interface UnshareSpawn {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How to run `command` (a program and its arguments) in Carrier's rootless user + mount namespace, where root is
 * this user: through util-linux unshare(1), or as it is when this process needs no namespace (root, or already in
 * one). Either way its environment names the store `store` resolves to, in CARRIER_GRAPHROOT / CARRIER_RUNROOT
 * (which the carrier CLI reads) and CONTAINERS_GRAPHROOT / CONTAINERS_RUNROOT. Throws CARRIER_NOT_FOUND when
 * unshare(1) is needed and missing.
 */
export async function unshareSpawn(command: string[], store: StoreLocationOptions = {}): Promise<UnshareSpawn> {
  const [program, ...rest] = command;
  if (program === undefined) throw new TypeError('unshareSpawn needs a command');
  const env = store.env ?? process.env;
  const config = await resolveStoreConfig(store);
  const withStore: NodeJS.ProcessEnv = {
    ...env,
    CARRIER_GRAPHROOT: config.graphroot,
    CARRIER_RUNROOT: config.runroot,
    CONTAINERS_GRAPHROOT: config.graphroot,
    CONTAINERS_RUNROOT: config.runroot,
  };
  if (!needsUserNamespace(env)) return { file: program, args: rest, env: withStore };
  requireUnshare((await findOnPath('unshare')) !== undefined);
  const un = unshareCommand();
  return {
    file: un.argv[0]!,
    args: [...un.argv.slice(1), ...command],
    env: { ...withStore, [USERNS_ENV]: '1', CARRIER_ROOTLESS_UID: String(process.getuid?.() ?? '') },
  };
}

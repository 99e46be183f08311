// Rootless: overlay mounts need a user + mount namespace, so `run`, `start`, `mount`, `umount`, `rm` and the volume
// and prune commands re-run Carrier inside one (as podman does) unless they already run in it (`carrier unshare`).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { unshareSpawn, type UnshareSpawn } from '../index.js';
import type { Context } from './command.js';
import type { GlobalOptions } from './errors.js';

function storeOptions(g: GlobalOptions): { root?: string; runroot?: string; driver?: string; blobCache?: string; env?: NodeJS.ProcessEnv } {
  return {
    ...(g.root !== undefined ? { root: g.root } : {}),
    ...(g.runroot !== undefined ? { runroot: g.runroot } : {}),
    ...(g.driver !== undefined ? { driver: g.driver } : {}),
    // --blob-cache reaches the commands run inside as the environment variable that means the same.
    ...(g.blobCache !== undefined ? { blobCache: g.blobCache, env: { ...process.env, CARRIER_BLOB_CACHE: resolve(g.blobCache) } } : {}),
  };
}

/** Runs this same Carrier command inside Carrier's user namespace (root there = this user); returns its exit code. */
export async function reexecInNamespace(ctx: Context): Promise<number> {
  const g = ctx.globals;
  // `--` ends Node's own options: Node 20 otherwise takes a later --env-file (run's flag) as its own.
  const self = [process.execPath, '--', process.argv[1]!, ...(g.driver ? ['--storage-driver', g.driver] : []), ...ctx.argv];
  return runForwarding(await unshareSpawn(self, storeOptions(g)));
}

/** `command` in Carrier's namespace (or as it is, when none is needed), with the store's locations in its environment. */
export async function runUnshared(g: GlobalOptions, command: string[]): Promise<number> {
  return runForwarding(await unshareSpawn(command, storeOptions(g)));
}

/** Spawns a child with our stdio and passes on the signals a terminal would not already deliver to it. */
function runForwarding({ file, args, env }: UnshareSpawn): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit', env });
    const sigs: NodeJS.Signals[] = process.stdin.isTTY ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    // With a terminal, Ctrl-C reaches the child (same process group) directly: only keep Carrier alive meanwhile.
    const ignore = (): void => {};
    if (process.stdin.isTTY) process.on('SIGINT', ignore);
    const handlers = sigs.map((s) => {
      const h = (): void => {
        child.kill(s);
      };
      process.on(s, h);
      return [s, h] as const;
    });
    const done = (): void => {
      for (const [s, h] of handlers) process.off(s, h);
      process.off('SIGINT', ignore);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('close', (code, signal) => {
      done();
      resolve(code ?? (signal ? 128 + (signalNumbers[signal] ?? 15) : 125));
    });
  });
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

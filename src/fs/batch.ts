// Small file-system steps run in order by one native pool job (native.fsBatch): a layer's directories, link and lower
// file, each made by its own fs/promises call, were five thread-pool round trips on the way of every `carrier create`.
import { resolve } from 'node:path';
import { native } from '../native.js';
import { fromNative, type CarrierError, type NativeFailure } from '../errors.js';

export type FsStep =
  | { op: 'mkdir' | 'mkdirp' | 'chmod'; path: string; mode: number }
  | { op: 'spreadDir'; path: string; name: string; mode: number }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'write'; path: string; data: string | Uint8Array; mode: number };

/** A step's failure: its errno name as `code`, `errno`, `syscall` and `path` as Node's fs gives them, and which step failed. */
export type FsStepError = CarrierError & { step: number };

/**
 * Runs `steps` in order, stopping at the first that fails: mkdir (EEXIST when there), mkdirp (mkdir -p), spreadDir
 * (src/fs/spread-dir.ts, `name` in the directory `path`), chmod, symlink (`path` says `target`), write (created
 * or truncated, `mode` less the umask for a new file). Fails with the failed call's error worded as fs/promises words
 * it, `step` its index.
 */
export async function fsBatch(steps: FsStep[]): Promise<void> {
  try {
    await native.fsBatch(steps);
  } catch (f) {
    const failure = f as NativeFailure & { step?: number };
    throw Object.assign(fromNative(failure), { step: failure.step ?? -1 }) as FsStepError;
  }
}

/**
 * `mkdir -p` of one directory or several (each made `mode` less the umask; one that is there is fine) by one native
 * job. Node's recursive mkdir never returns where mkdir answers ENOENT under a directory that exists (anywhere under
 * /proc): this fails with that ENOENT.
 */
export async function makeDirs(dirs: string | readonly string[], mode: number): Promise<void> {
  const list = typeof dirs === 'string' ? [dirs] : dirs;
  if (list.length > 0) await fsBatch(list.map((dir) => ({ op: 'mkdirp', path: resolve(dir), mode })));
}

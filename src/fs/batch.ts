// Small file-system steps run in order by one native pool job (native.fsBatch): a layer's directories, link and lower
// file, each made by its own fs/promises call, were five thread-pool round trips on the way of every `carrier create`.
import { resolve } from 'node:path';
import { native } from '../native.js';
import type { NativeFailure } from '../errors.js';

export type FsStep =
  | { op: 'mkdir' | 'mkdirp' | 'chmod'; path: string; mode: number }
  | { op: 'spreadDir'; path: string; name: string; mode: number }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'write'; path: string; data: string | Uint8Array; mode: number };

/** A step's failure: Node's fs error for it, and which step failed. */
export type FsStepError = NodeJS.ErrnoException & { step: number };

/**
 * Runs `steps` in order, stopping at the first that fails: mkdir (EEXIST when there), mkdirp (mkdir -p), spreadDir
 * (src/fs/spread-dir.ts, `name` in the directory `path`), chmod, symlink (`path` says `target`), write (created
 * or truncated, `mode` less the umask for a new file). Fails with the Error fs/promises gives for the failed call,
 * `step` its index.
 */
export async function fsBatch(steps: FsStep[]): Promise<void> {
  try {
    await native.fsBatch(steps);
  } catch (f) {
    const failure = f as NativeFailure & { step?: number };
    throw Object.assign(systemError(failure, failure.path ?? ''), { step: failure.step ?? -1 }) as FsStepError;
  }
}

/** A native failure as the Error Node's fs gives for it: `ENOENT: no such file or directory, open '/x'`. */
export function systemError(f: NativeFailure, path: string): NodeJS.ErrnoException {
  if (!f.errno || !f.syscall) return Object.assign(new Error(f.message), { code: f.code, path });
  // the native message is `<syscall> failed: <strerror>`; Node words it `<CODE>: <strerror, lowercased>, <syscall> '<path>'`
  const reason = f.message.replace(/^.*? failed: /, '');
  const err: NodeJS.ErrnoException = new Error(`${f.code}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}, ${f.syscall} '${path}'`);
  err.errno = f.errno;
  err.code = f.code;
  err.syscall = f.syscall;
  err.path = path;
  return err;
}

/**
 * `mkdir -p dir` (each directory made `mode` less the umask; one that is there is fine) by one native job. Node's
 * recursive mkdir never returns where mkdir answers ENOENT under a directory that exists (anywhere under /proc):
 * this fails with that ENOENT.
 */
export async function makeDirs(dir: string, mode: number): Promise<void> {
  await fsBatch([{ op: 'mkdirp', path: resolve(dir), mode }]);
}

// Crash-safe file replacement: a temp file in the same directory, fdatasync, rename over the target, fsync the
// directory (podman skips that last step; a crash right after a rename could otherwise lose the new name).
// `durable: false` keeps the rename (readers never see half a file) and skips both flushes: for the run root's files,
// which a reboot clears anyway (podman does not sync them either). `durable: 'contents'` flushes the file before the
// rename but not the directory after it: for a state that a crash may as well lose (what the file said before is
// valid too) but must never find half written.
//
// Every step runs in one native pool job (native/store_ops.cc): the event loop hands the bytes over once and hears
// back once, where the same steps through fs/promises cost a save five thread-pool round trips in turn, each a wake-up
// of the main thread (issue 21).
import { open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fromNative, type NativeFailure } from '../errors.js';
import { native, type NativeAtomicWrite } from '../native.js';

let written = 0;

/**
 * A store lock's next last-writer token (StoreLock.nextTouch), written at offset 0 of the lock file once the new name
 * is in place, before the directory is flushed: a reader that sees it finds the new file.
 */
export interface LockTouch {
  token: Uint8Array;
  /** The lock file, for messages. */
  path: string;
  /** Runs `write` with the lock file's fd, kept open until it settles; throws CARRIER_CLOSED once the lock is closed. */
  use(write: (fd: number) => Promise<void>): Promise<void>;
  /** Called once the token is on the lock file. */
  written(): void;
}

export interface AtomicWriteOptions {
  /** The lock whose new token marks this write (see {@link LockTouch}). */
  touch?: LockTouch;
  /**
   * The rename waits for this (the contents are written and flushed meanwhile): a file that must not be seen before
   * another save is durable. If it rejects, nothing is renamed, the temp file is removed, and its failure is thrown.
   */
  after?: Promise<unknown>;
}

/** `.<name>.<pid>.<hex>.tmp`, beside the file: the name the orphan sweep (orphans.ts) reads as a temp file of `pid`. */
function tempName(file: string): string {
  // unique by pid and count; the random part separates a leftover of an earlier process with the same pid, and O_EXCL
  // refuses a name that exists, so Math.random suffices (loading node:crypto for it cost a short command ~4 ms of CPU)
  return `.${basename(file)}.${process.pid}.${(++written).toString(16)}${Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0')}.tmp`;
}

export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode = 0o600,
  durable: boolean | 'contents' = true,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { touch, after } = options;
  after?.catch(() => {}); // awaited once the contents are written
  const dir = dirname(file);
  const temp = tempName(file);
  const spec: NativeAtomicWrite = { dir, temp, name: basename(file), data, mode, durable: durable === true ? 2 : durable === 'contents' ? 1 : 0 };
  // the steps from the rename on, which write the token
  const renaming = (s: NativeAtomicWrite): Promise<void> =>
    touch ? touch.use((lockFd) => nativeWrite({ ...s, lockFd, token: touch.token, lockPath: touch.path })) : nativeWrite(s);
  if (after === undefined) {
    await renaming(spec);
  } else {
    await nativeWrite({ ...spec, step: 'contents' });
    try {
      await after;
    } catch (err) {
      await unlink(join(dir, temp)).catch(() => {});
      throw err;
    }
    // a rename step that never ran (the lock closed meanwhile) leaves the temp file; one that ran left none
    await renaming({ ...spec, data: '', step: 'rename' }).catch(async (err: unknown) => {
      await unlink(join(dir, temp)).catch(() => {});
      throw err;
    });
  }
  touch?.written();
}

function nativeWrite(spec: NativeAtomicWrite): Promise<void> {
  return native.writeFileAtomic(spec).catch((f: unknown) => {
    throw fromNative(f as NativeFailure);
  });
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

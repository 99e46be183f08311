// Crash-safe file replacement: a temp file in the same directory, fdatasync, rename over the target, fsync the
// directory (podman skips that last step; a crash right after a rename could otherwise lose the new name).
// `durable: false` keeps the rename (readers never see half a file) and skips both flushes: for the run root's files,
// which a reboot clears anyway (podman does not sync them either). `durable: 'contents'` flushes the file before the
// rename but not the directory after it: for a state that a crash may as well lose (what the file said before is
// valid too) but must never find half written.
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let written = 0;

/**
 * `renamed`, when given, runs once the new name is in place, while the directory is flushed (a record's new
 * last-writer token: a reader that sees it finds the new file).
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode = 0o600,
  durable: boolean | 'contents' = true,
  renamed?: () => Promise<void>,
): Promise<void> {
  const dir = dirname(file);
  // `.<name>.<pid>.<hex>.tmp`, as the orphan sweep reads it: unique by pid and count; the random part separates a
  // leftover of an earlier process with the same pid, and 'wx' (O_EXCL) refuses a name that exists, so Math.random
  // suffices (loading node:crypto for it cost a short command ~4 ms of CPU)
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${(++written).toString(16)}${Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0')}.tmp`);
  // the directory is opened for its flush while the file is written, and closed after without being waited for: two
  // round trips fewer on the way of every durable save
  const dirOpened = durable === true ? open(dir, 'r') : undefined;
  dirOpened?.catch(() => {}); // awaited below, or closed by the finally
  try {
    await writeAndRename(tmp, file, data, mode, durable, async () => {
      const dh = await dirOpened;
      await Promise.all([dh?.sync(), renamed?.()]);
    });
  } finally {
    void dirOpened?.then((dh) => dh.close()).catch(() => {});
  }
}

async function writeAndRename(
  tmp: string,
  file: string,
  data: string | Uint8Array,
  mode: number,
  durable: boolean | 'contents',
  after: () => Promise<void>,
): Promise<void> {
  const fh = await open(tmp, 'wx', mode);
  try {
    // the mode again, as the umask applied it at creation: through the open file, while the bytes are written (one
    // thread-pool round trip less for each record a command saves)
    await Promise.all([fh.writeFile(data), fh.chmod(mode)]);
    if (durable !== false) await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // the rename while the file is closed (an open file can be renamed), and what follows it while the directory is
  // flushed: one round trip each, where a save waited for every step in turn
  const [closed, moved] = await Promise.allSettled([fh.close(), rename(tmp, file)]);
  if (moved.status === 'rejected') {
    await unlink(tmp).catch(() => {});
    throw moved.reason;
  }
  if (closed.status === 'rejected') throw closed.reason;
  await after();
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

// Where `save -o F`, `export -o F` and the archive transports write a file: never a path Carrier did not create is
// removed. A regular file (or a path that does not exist yet) is written as a temporary file beside it (O_EXCL) and
// renamed onto it once complete, so a failure leaves F as it was and removes only the temporary file. Anything else
// that exists (a FIFO, a character device such as /dev/null or /dev/stdout, a socket) is opened for writing as it is
// and never unlinked, as podman does.
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarrierError } from '../errors.js';

export interface OutputFileOptions {
  /**
   * Refuse an existing non-empty regular file with this message (CARRIER_EXISTS), as podman's docker-archive does.
   * Without it such a file is replaced (podman's oci-archive and export).
   */
  refuseNonEmpty?: string;
}

/**
 * Throws CARRIER_EXISTS when `path` is an existing non-empty regular file. podman 4.3.1: `podman save -o F` to a
 * docker-archive says "docker-archive doesn't support modifying existing images" and exits 125.
 */
export async function refuseNonEmptyFile(path: string, message: string): Promise<void> {
  refuseIfNonEmpty(path, await stat(path).catch(() => undefined), message);
}

function refuseIfNonEmpty(path: string, st: Stats | undefined, message: string): void {
  if (st?.isFile() && st.size > 0) throw new CarrierError('CARRIER_EXISTS', message, { path });
}

/**
 * True when what is written to `output` appears only once it is complete (a path to a regular file, or to nothing
 * yet: written beside and renamed into place), so a write that failed can run again from the start; false for a
 * stream, a FIFO, a device or a socket, which take each byte as it is written.
 */
export async function writtenWhole(output: string | Writable): Promise<boolean> {
  if (typeof output !== 'string') return false;
  const st = await stat(output).catch(() => undefined);
  return st === undefined || st.isFile();
}

/**
 * Writes `source` to the file at `path` (see the file comment for how), returning when it is complete and in place.
 * On failure the path is left as it was (a regular file) or simply closed (a FIFO or device).
 */
export async function writeOutputFile(path: string, source: Readable, options: OutputFileOptions = {}, signal?: AbortSignal): Promise<void> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (options.refuseNonEmpty !== undefined) refuseIfNonEmpty(path, st, options.refuseNonEmpty);
  const sinkOpts = signal ? { signal } : {};
  if (st && !st.isFile()) {
    // Opened as it is: no O_CREAT (a path that vanished meanwhile is an error, not a new file), no O_TRUNC.
    const fh = await open(path, constants.O_WRONLY | constants.O_NOCTTY);
    try {
      await pipeline(source, fh.createWriteStream(), sinkOpts);
    } catch (err) {
      source.destroy();
      throw err;
    } finally {
      await fh.close().catch(() => {});
    }
    return;
  }
  // A symlink to a regular file keeps pointing where it did: the file it names is the one replaced.
  const target = st ? await realpath(path) : path;
  const tmp = join(dirname(target), `.${basename(target)}.carrier-tmp-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle | undefined = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    if (st) await fh.chmod(st.mode & 0o7777).catch(() => {});
    // The write stream closes the file when it finishes (or is destroyed).
    await pipeline(source, fh.createWriteStream(), sinkOpts);
    fh = undefined;
    await rename(tmp, target);
  } catch (err) {
    source.destroy();
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Writes `source` to a file path (as writeOutputFile) or a stream. */
export async function writeOutput(output: string | Writable, source: Readable, options: OutputFileOptions = {}, signal?: AbortSignal): Promise<void> {
  if (typeof output === 'string') return writeOutputFile(output, source, options, signal);
  try {
    await pipeline(source, output, signal ? { signal } : {});
  } catch (err) {
    source.destroy();
    throw err;
  }
}

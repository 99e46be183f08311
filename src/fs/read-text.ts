// A whole small file read in one thread-pool round trip: the store's records, a layer's link and lower files, a
// container's carrier.json and an image's big data are each read by a short command, most of them one after another.
import { native } from '../native.js';
import { fromNative, type CarrierError, type NativeFailure } from '../errors.js';

/** A whole file as UTF-8. */
export async function readText(file: string): Promise<string> {
  return (await readBytes(file)).toString('utf8');
}

/**
 * {@link readText}'s bytes, as they are: opened, read until a read returns nothing and closed by one native job
 * (through fs/promises that was three round trips: open, read, close). Fails with a CarrierError whose `code`
 * (ENOENT, EISDIR...), `errno`, `syscall`, `path` and message are what fs/promises gives.
 */
export async function readBytes(file: string): Promise<Buffer> {
  try {
    return await native.readFile(file);
  } catch (f) {
    throw fromNative(f as NativeFailure);
  }
}

/**
 * Several whole files by one native job, read one after another: each its bytes, or the CarrierError
 * {@link readBytes} would fail with for it. For many small files a command reads together (every container's
 * carrier.json for `carrier ps`), where a job each cost a thread-pool round trip each.
 */
export async function readManyBytes(files: readonly string[]): Promise<(Buffer | CarrierError)[]> {
  if (files.length === 0) return [];
  const answers = await native.readFiles([...files]);
  return answers.map((a) => (Buffer.isBuffer(a) ? a : fromNative(a)));
}

// A whole small file read in as few thread-pool round trips as can be: the store's records, a layer's link and lower
// files, a container's carrier.json and an image's big data are each read by a short command, one after another.
import { open } from 'node:fs/promises';

/**
 * A whole file as UTF-8: an open, reads until one comes back short (a record file is replaced by a rename, never
 * written in place, so a short read is its end), a close. readFile first asks the file's size and then reads until
 * a read returns nothing: two thread-pool round trips more for every record file a short command loads (issue 21).
 */
export async function readText(file: string): Promise<string> {
  return (await readBytes(file)).toString('utf8');
}

/** {@link readText}'s bytes, as they are. */
export async function readBytes(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (let size = 64 * 1024; ; size = Math.min(size * 2, 16 * 1024 * 1024)) {
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, size, null);
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (bytesRead < size) break;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}


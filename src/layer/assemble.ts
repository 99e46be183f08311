import { Readable } from 'node:stream';
import { native, type AssembleEvent, type NativeAssembleJob } from '../native.js';
import { fromNative } from '../errors.js';

/** Where an unread stream of {@link assembleLayer} rebuilds its tar from (compressLayer can rebuild it itself). */
export interface TarSource {
  tarSplit: string;
  diffDir: string;
}

const SOURCE = Symbol('carrier.tarSource');

/**
 * The tar-split and directory a stream of {@link assembleLayer} rebuilds from, when nothing has been read from it (its
 * native job starts at the first read); undefined for any other stream.
 */
export function unreadTarSource(stream: Readable): TarSource | undefined {
  const source = (stream as Readable & { [SOURCE]?: TarSource })[SOURCE];
  return source && !stream.readableDidRead && !stream.destroyed ? source : undefined;
}

/**
 * Rebuilds a layer's original uncompressed tar, byte for byte, from its tar-split file and the extracted `diffDir`.
 * File contents are checked against the CRC-64 recorded in the tar-split; a mismatch fails the stream.
 * The result hashes to the layer's `diffDigest`. The work starts at the first read.
 */
export function assembleLayer(tarSplitPath: string, diffDir: string): Readable {
  let job: NativeAssembleJob | undefined;
  let owed = 0; // chunks delivered while the reader was not asking for more
  const onEvent = (event: AssembleEvent): void => {
    if (readable.destroyed) return;
    if (event.type === 'data') {
      if (readable.push(event.chunk)) job?.ack(1);
      else owed++;
    } else if (event.type === 'end') {
      readable.push(null);
    } else {
      readable.destroy(fromNative(event.error));
    }
  };
  const readable = new Readable({
    read() {
      if (!job) {
        job = new native.AssembleJob(tarSplitPath, diffDir, onEvent);
        return;
      }
      if (owed > 0) {
        job.ack(owed);
        owed = 0;
      }
    },
    destroy(err, callback) {
      job?.abort();
      callback(err);
    },
  });
  Object.defineProperty(readable, SOURCE, { value: { tarSplit: tarSplitPath, diffDir } satisfies TarSource });
  return readable;
}

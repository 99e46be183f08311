import { Readable } from 'node:stream';
import { native, type AssembleEvent, type NativeAssembleJob } from '../native.js';
import { fromNative } from '../errors.js';

/**
 * Rebuilds a layer's original uncompressed tar, byte for byte, from its tar-split file and the extracted `diffDir`.
 * File contents are checked against the CRC-64 recorded in the tar-split; a mismatch fails the stream.
 * The result hashes to the layer's `diffDigest`.
 */
export function assembleLayer(tarSplitPath: string, diffDir: string): Readable {
  let job: NativeAssembleJob | undefined;
  let owed = 0; // chunks delivered while the reader was not asking for more
  const readable = new Readable({
    read() {
      if (owed > 0 && job) {
        job.ack(owed);
        owed = 0;
      }
    },
    destroy(err, callback) {
      job?.abort();
      callback(err);
    },
  });
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
  job = new native.AssembleJob(tarSplitPath, diffDir, onEvent);
  return readable;
}

import type { createHash } from 'node:crypto';
import { Transform, type Duplex, type Readable } from 'node:stream';

/** A pass-through that counts (and hashes, when given a hash) what goes by. */
export function tap(hash: ReturnType<typeof createHash> | undefined, onChunk: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash?.update(chunk);
      onChunk(chunk.length);
      cb(null, chunk);
    },
  });
}

/** Pipes the streams one into the next; an error anywhere ends the last one with it, and its end stops the first. */
export function chain(first: Readable, ...rest: Duplex[]): Readable {
  const last = rest[rest.length - 1]!;
  let prev: Readable = first;
  for (const s of rest) {
    prev.on('error', (err) => last.destroy(err));
    prev = prev.pipe(s);
  }
  last.on('close', () => first.destroy());
  return last;
}

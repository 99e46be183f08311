// Standard output for what a command prints. process.stdout on a pipe (how a harness or a script reads a command's
// answer) is a net.Socket: making it loads Node's net and stream modules and opens a libuv pipe, several ms of a short
// command's CPU (issue 21). Writing to descriptor 1 directly, as podman does, costs one write(2). On Linux Node
// writes stdout synchronously to files, pipes and terminals alike, so output written here and through process.stdout
// (the progress of pull, a stream of save) keeps its order. A descriptor another process left non-blocking that is
// full (EAGAIN) hands the rest to process.stdout, which waits for it.
import { writeSync } from 'node:fs';

let direct = true;

export function writeOut(text: string): void {
  if (direct) {
    const bytes = Buffer.from(text);
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(1, bytes, done);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      direct = false;
      process.stdout.write(bytes.subarray(done));
      return;
    }
  }
  process.stdout.write(text);
}

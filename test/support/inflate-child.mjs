// Child process for the gzip inflater test: decodes each named file with the addon's DecompressJob (gzip), pushing it
// in chunks of the given size, and prints one JSON line per file: the inflater used, the output's SHA-256 and length,
// and the error code and message when decoding failed. CARRIER_INFLATE in its environment picks the inflater.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const native = createRequire(import.meta.url)('node-gyp-build')(fileURLToPath(new URL('../..', import.meta.url)));
const cases = JSON.parse(process.argv[2]);

function decode(file, chunk) {
  const blob = fs.readFileSync(file);
  const sha = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve) => {
    let at = 0;
    const job = new native.DecompressJob('gzip', (e) => {
      if (e.type === 'drain') push();
      else if (e.type === 'data') {
        sha.update(e.chunk);
        bytes += e.chunk.length;
        job.ack(1);
      } else if (e.type === 'end') resolve({ sha256: sha.digest('hex'), bytes });
      else if (e.type === 'error') resolve({ bytes, code: e.error.code, message: e.error.message });
    });
    function push() {
      while (at < blob.length) {
        const more = job.push(blob.subarray(at, at + chunk));
        at += chunk;
        if (!more) return;
      }
      job.end();
    }
    push();
  });
}

let inflater;
try {
  inflater = native.inflater();
} catch (e) {
  process.stdout.write(JSON.stringify({ inflaterError: { code: e.code, message: e.message } }) + '\n');
}
for (const c of cases) process.stdout.write(JSON.stringify({ name: c.name, chunk: c.chunk, inflater, ...(await decode(c.file, c.chunk)) }) + '\n');

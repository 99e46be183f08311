// Child process for the crash test: commits an image whose layer stream stalls half-way, after touching the
// `ready` file, so the parent can SIGKILL it mid-apply. Loads the built library from dist/.
import { Readable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
const [root, runroot, ready] = process.argv.slice(2);
const { Store } = await import(new URL('../../dist/store/store.js', import.meta.url).href);
const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const header = Buffer.alloc(512);
header.write('big.bin', 0);
header.write('0000644\0', 100);
header.write('0000000\0', 108);
header.write('0000000\0', 116);
header.write((64 << 20).toString(8).padStart(11, '0') + '\0', 124);
header.write('00000000000\0', 136);
header.write('0', 156);
header.write('ustar\x0000', 257);
header.fill(' ', 148, 156);
let sum = 0;
for (const b of header) sum += b;
header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
const diffID = 'sha256:' + '1'.repeat(64); // never reached: the process dies first
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] } }));
const manifest = Buffer.from('{}');
const store = await Store.open({ root, runroot });
async function* slow() {
  yield gzipSync(Buffer.concat([header, Buffer.alloc(1 << 20, 7)]));
  writeFileSync(ready, 'x');
  await new Promise(() => {}); // stall forever, mid-layer
}
await store.commitImage({ config, configDigest: sha(config), manifest, manifestDigest: sha(manifest), layers: [{ diffID, open: async () => Readable.from(slow()) }], names: ['localhost/half:1'] });

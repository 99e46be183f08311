// The pure-Node pull contender, run as a command (timed from spawn to exit like the other pull commands):
//
//   node bench/lib/purenode-pull.js http://HOST/ REPO TAG OUTDIR
//
// What a Node developer would write with the usual packages: undici for HTTP (manifest, config, then the layers,
// three at a time as carrier and podman do), each layer body streamed through sha256 → zlib or fzstd → sha256 →
// tar-stream extraction with fs (bench/lib/purenode.js) into OUTDIR/<n>/, one directory per layer as an overlay store
// keeps them. The compressed and uncompressed digests are checked against the manifest and the config's diff_ids,
// and the config digest is checked, as any pull must. Prints one JSON line: { id, layers: [{digest, diffDigest}] }.
// No blob cache, no layer records, no whiteout handling (the benchmark images have none).
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { pureNodeApply } from './purenode.js';
import { sha256 } from './util.js';

const [base, repo, tag, out] = process.argv.slice(2);
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function get(url, headers = {}) {
  const res = await request(url, { headers });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`GET ${url}: ${res.statusCode}`);
  }
  return res;
}

async function main() {
  const root = new URL(`/v2/${repo}/`, base).href;
  const m = await get(`${root}manifests/${tag}`, { accept: ACCEPT });
  const manifest = JSON.parse(await m.body.text());
  const cres = await get(`${root}blobs/${manifest.config.digest}`);
  const configBytes = Buffer.from(await cres.body.arrayBuffer());
  if (sha256(configBytes) !== manifest.config.digest) throw new Error('config digest mismatch');
  const config = JSON.parse(configBytes.toString());
  const diffIds = config.rootfs.diff_ids;
  const results = new Array(manifest.layers.length);
  let next = 0;
  const worker = async () => {
    while (next < manifest.layers.length) {
      const i = next++;
      const layer = manifest.layers[i];
      const compression = /zstd/.test(layer.mediaType) ? 'zstd' : /gzip/.test(layer.mediaType) ? 'gzip' : 'none';
      const dir = path.join(out, String(i));
      await fs.promises.mkdir(dir, { recursive: true });
      const res = await get(`${root}blobs/${layer.digest}`);
      const r = await pureNodeApply(res.body, dir, compression);
      if (r.compressedDigest !== layer.digest) throw new Error(`layer ${i}: blob digest ${r.compressedDigest} != ${layer.digest}`);
      if (r.diffDigest !== diffIds[i]) throw new Error(`layer ${i}: diff digest ${r.diffDigest} != ${diffIds[i]}`);
      results[i] = { digest: r.compressedDigest, diffDigest: r.diffDigest };
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  process.stdout.write(JSON.stringify({ id: manifest.config.digest.slice(7), layers: results }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

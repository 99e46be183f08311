// Would several range requests per large layer (containerd 2.1's parallel layer fetch) beat one GET on the pull
// suite's shaped links? Downloads the distro gzip layer blob with curl through each link, as one GET and as 4 and 8
// concurrent `Range` GETs, round-robin, and prints the medians beside the link floor (bytes ÷ rate).
//
//   node bench/ranges.js [--rounds N] [--links 1gbit-20ms,100mbit-50ms]     (root: ip netns, tc)
//
// Uses the pull suite's registry storage (run the pull suite once first). The links are bench/lib/shaped-link.js's:
// tc's token bucket on a veth pair and a userspace relay that delays each direction, so the client's TCP connection
// ends at the relay and does not itself see the round-trip time: the test shows what the link's rate and the
// requests' round trips cost, not a long-RTT TCP window's growth (this kernel has no netem to model that).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startShapedLink, SHAPED_LINKS } from './lib/shaped-link.js';
import { median } from './lib/util.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const data = path.join(benchDir, 'work/registry/data');
const argv = process.argv.slice(2);
const opt = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
const rounds = Number(opt('--rounds', 3));
const links = opt('--links', SHAPED_LINKS.map((l) => l.id).join(',')).split(',');

function curl(args) {
  return new Promise((resolve, reject) => {
    const c = spawn('curl', ['-s', '-f', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = [];
    c.stdout.on('data', (d) => out.push(d));
    c.on('close', (code) => (code ? reject(new Error(`curl ${args.join(' ')} exited ${code}`)) : resolve(Buffer.concat(out))));
  });
}

const repos = path.join(data, 'docker/registry/v2/repositories/bench');
const repo = fs.existsSync(repos) ? fs.readdirSync(repos).find((r) => r.startsWith('distro-')) : undefined;
if (!repo) throw new Error(`no distro image in ${repos}: run the pull suite once (npm run bench -- --suite pull --quick)`);

for (const id of links) {
  const spec = SHAPED_LINKS.find((l) => l.id === id);
  if (!spec) throw new Error(`no link ${id}; links: ${SHAPED_LINKS.map((l) => l.id).join(', ')}`);
  const link = await startShapedLink(data, fs.mkdtempSync('/tmp/cbr-'), spec);
  try {
    const base = `http://${link.host}/v2/bench/${repo}`;
    const manifest = JSON.parse(await curl(['-H', 'Accept: application/vnd.oci.image.manifest.v1+json', `${base}/manifests/gzip`]));
    const { digest, size } = manifest.layers[0];
    const url = `${base}/blobs/${digest}`;
    const status = (await curl(['-r', '0-9', '-D', '-', '-o', '/dev/null', url])).toString().split('\n')[0].trim();
    console.log(`${spec.title}: blob of ${size} bytes; a range request is answered ${status}`);
    const times = {};
    for (let r = 0; r <= rounds; r++) {
      for (const n of [1, 4, 8]) {
        const t0 = process.hrtime.bigint();
        if (n === 1) await curl(['-o', '/dev/null', url]);
        else {
          const part = Math.ceil(size / n);
          await Promise.all(Array.from({ length: n }, (_, i) => curl(['-r', `${i * part}-${Math.min(size, (i + 1) * part) - 1}`, '-o', '/dev/null', url])));
        }
        if (r > 0) (times[n] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
    }
    const floor = (size * 8) / (spec.rateMbit * 1e6);
    for (const [n, xs] of Object.entries(times)) {
      console.log(`  ${n === '1' ? 'one GET' : `${n} range GETs`}: median ${median(xs).toFixed(2)} s (${(median(xs) / floor).toFixed(2)}× the floor of ${floor.toFixed(2)} s); runs ${xs.map((x) => x.toFixed(2)).join(' ')}`);
    }
  } finally {
    await link.stop();
  }
}

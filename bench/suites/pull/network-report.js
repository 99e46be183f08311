// The pull suite's network scenarios (network.js) in RESULTS.md: per link, carrier against podman with CPU-seconds and
// against the link's floor (bytes ÷ rate, with and without the apply tail; curl of the blob alone on shaped links),
// and the concurrent-pulls rows with their blob GET counts.
import { MiB } from '../../lib/util.js';
import { mdTable } from '../../lib/render.js';

const good = (r) => r && Number.isFinite(r.median);
const s = (x) => (Number.isFinite(x) ? x.toFixed(2) : '');

/** The section, or no lines when the suite ran without it. */
export function renderNetworkMarkdown(network) {
  if (!network) return [];
  const L = [];
  L.push('');
  L.push(`### Pull over real links: TLS, shaped links, CPU-seconds (${network.image}, ${(network.compressedSize / MiB).toFixed(1)} MiB compressed)`);
  L.push('');
  L.push(
    'The same registry storage served over plain http and over TLS (a second `docker-registry` with `http.tls`, its certificate signed by a CA made for the run and given to both clients with `--cert-dir`), and, where the machine allows, over shaped links: the registry in a network namespace of its own behind a veth pair rate-limited with `tc tbf` on both ends, with a relay on the path that holds each direction’s bytes for half the round-trip time (this kernel has no netem). Every run pulls into a fresh store with an empty blob cache; carrier and podman round-robin. CPU-seconds are user + sys of the pulling process tree (GNU time). The link floor is compressed bytes ÷ rate; the floor with the apply tail adds the time carrier’s `applyLayer` takes to apply the last layer from a local blob (measured in the same rounds, a child process, import excluded: an upper bound of the tail, since a pull applies while the bytes arrive). `curl` fetches the layer blob alone over the same link (TLS, relay and token bucket included): what the link gives a client that only downloads.',
  );
  if (network.applyTailSeconds !== undefined) {
    L.push('');
    L.push(`Apply tail (last layer from a local blob): ${s(network.applyTailSeconds)} s (median).`);
  }
  L.push('');
  const withTail = network.links.some((l) => l.floorWithTailSeconds !== undefined);
  const head = ['link', 'contender', 'median s', 'min–max s', 'CPU-s (median)', 'podman ÷ carrier (time)', 'podman ÷ carrier (CPU)', 'median ÷ link floor',
    ...(withTail ? ['median ÷ (floor + apply tail)'] : [])];
  const rows = [];
  for (const link of network.links) {
    const c = network.linkRows.find((r) => r.link === link.id && r.contender === 'carrier');
    const p = network.linkRows.find((r) => r.link === link.id && r.contender === 'podman');
    const curl = network.linkRows.find((r) => r.link === link.id && r.contender === 'curl');
    for (const r of [c, p, curl].filter(Boolean)) {
      rows.push([
        link.title,
        (r === curl ? 'curl (the blob alone)' : r.contender) + (r.problems.length ? ' ⚠' : ''),
        good(r) ? s(r.median) : 'failed',
        good(r) ? `${s(r.min)}–${s(r.max)}` : '',
        s(r.cpuMedian),
        r === c && good(c) && good(p) ? (p.median / c.median).toFixed(2) + '×' : '',
        r === c && c?.cpuMedian && p?.cpuMedian ? (p.cpuMedian / c.cpuMedian).toFixed(2) + '×' : '',
        link.floorSeconds && good(r) ? `${(r.median / link.floorSeconds).toFixed(2)}× (floor ${s(link.floorSeconds)} s)` : '',
        ...(withTail ? [link.floorWithTailSeconds && good(r) && r !== curl ? `${(r.median / link.floorWithTailSeconds).toFixed(2)}× (${s(link.floorWithTailSeconds)} s)` : ''] : []),
      ]);
    }
  }
  L.push(mdTable(head, rows));
  if (network.cacheRows?.length) {
    L.push('');
    L.push('A pull-through cache on this side of the slowest link (Debian’s docker-registry in proxy mode, warmed by the first pull, named as a `registries.conf` mirror of the shaped registry), against the link direct; carrier, fresh store and empty blob cache per run.');
    L.push('');
    const direct = network.cacheRows[0];
    L.push(mdTable(
      ['scenario', 'median s', 'min–max s', 'CPU-s (median)', 'time ÷ direct'],
      network.cacheRows.map((r) => [r.scenario + (r.problems.length ? ' ⚠' : ''), good(r) ? s(r.median) : 'failed', good(r) ? `${s(r.min)}–${s(r.max)}` : '', s(r.cpuMedian), good(r) && good(direct) ? (r.median / direct.median).toFixed(2) + '×' : '']),
    ));
  }
  if (network.concurrentRows.length) {
    L.push('');
    L.push('Several pulls of one image at once (carrier, 4 stores, plain http on loopback through a relay that counts blob GETs): with one shared blob cache each blob is downloaded once, the other pulls wait for it (a per-digest lock in the cache) and apply the cached copy.');
    L.push('');
    L.push(mdTable(
      ['scenario', 'median s (all done)', 'min–max s', 'CPU-s (all pulls)', 'layer blob GETs per run', 'time ÷ one pull'],
      network.concurrentRows.map((r) => {
        const one = network.concurrentRows.find((x) => x.pulls === 1);
        return [
          r.scenario + (r.problems.length ? ' ⚠' : ''),
          good(r) ? s(r.median) : 'failed',
          good(r) ? `${s(r.min)}–${s(r.max)}` : '',
          s(r.cpuMedian),
          `${[...new Set(r.layerGets)].join(', ')} (${r.layers} layer${r.layers > 1 ? 's' : ''})`,
          good(r) && good(one) ? (r.median / one.median).toFixed(2) + '×' : '',
        ];
      }),
    ));
  }
  const problems = [...network.linkRows, ...(network.cacheRows ?? []), ...network.concurrentRows].filter((r) => r.problems.length);
  for (const r of problems) for (const p of r.problems) L.push(`- ⚠ \`${r.link ?? r.scenario} ${r.contender}\`: ${p}`);
  for (const n of network.notes) L.push(`- ${n}`);
  return L;
}

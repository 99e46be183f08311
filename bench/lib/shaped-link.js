// A shaped link to a registry: docker-registry in a network namespace of its own, reached over a veth pair whose
// two ends are rate-limited with tc's token bucket filter (this kernel has tbf and htb but no netem), and a small TCP
// relay on this side that holds every chunk for half the round-trip time in each direction, which adds the RTT.
// Clients connect to the relay on 127.0.0.1 (TLS passes through it untouched). Needs root (ip netns, tc).
import fs from 'node:fs';
import net from 'node:net';
import { run } from './util.js';
import { freePort, startRegistryOn } from './netlab.js';

/** The links the pull suite measures, as issue 21 names them. */
export const SHAPED_LINKS = [
  { id: '1gbit-20ms', title: '1 Gbit/s, 20 ms RTT', rateMbit: 1000, rttMs: 20, registryIp: '10.21.1.2', hostIp: '10.21.1.1' },
  { id: '100mbit-50ms', title: '100 Mbit/s, 50 ms RTT', rateMbit: 100, rttMs: 50, registryIp: '10.21.2.2', hostIp: '10.21.2.1' },
];

/**
 * `SHAPED_LINKS[index]` on a subnet and under names of this process's own (10.21.32–231.x, pid-tagged namespace and
 * veth names), so two benchmarks running at once do not delete each other's links.
 */
export function ownShapedLink(index, pid = process.pid) {
  const spec = SHAPED_LINKS[index];
  const octet = 32 + (pid % 100) * 2 + index;
  return { ...spec, registryIp: `10.21.${octet}.2`, hostIp: `10.21.${octet}.1`, tag: `${pid}${index}` };
}

const sh = (args) => run(args[0], args.slice(1));

/** A token bucket on `dev` (in namespace `ns` when given): `rateMbit`, a burst of 1 ms of it (at least 32 KiB). */
function tbf(dev, rateMbit, ns) {
  const burst = Math.max(32 * 1024, Math.round(rateMbit * 125));
  const tc = ['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '50ms'];
  return sh(ns ? ['ip', 'netns', 'exec', ns, ...tc] : tc);
}

/** A TCP relay on 127.0.0.1 to `target` that delays each direction's bytes by `oneWayMs`. */
async function startDelayRelay(target, oneWayMs) {
  const sockets = new Set();
  const delayed = (from, to) => {
    const queue = [];
    let held = 0;
    let timer;
    const pump = () => {
      timer = undefined;
      const now = Date.now();
      while (queue.length && queue[0].due <= now) {
        const { chunk } = queue.shift();
        held -= chunk.length;
        to.write(chunk);
      }
      if (held < 8 * 1024 * 1024) from.resume();
      if (queue.length) timer = setTimeout(pump, queue[0].due - now);
      else if (from.readableEnded) to.end();
    };
    from.on('data', (chunk) => {
      queue.push({ chunk, due: Date.now() + oneWayMs });
      held += chunk.length;
      if (held >= 8 * 1024 * 1024) from.pause();
      timer ??= setTimeout(pump, oneWayMs);
    });
    from.on('end', () => {
      if (!queue.length && !timer) to.end();
    });
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    delayed(client, upstream);
    delayed(upstream, client);
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${port}`,
    stop: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(r);
    }),
  };
}

/**
 * Starts the registry (on `dataDir`, TLS with `tls` when given) behind `spec`'s link (names tagged with `spec.tag`
 * when it has one: ownShapedLink). Resolves { host (the relay's `127.0.0.1:PORT`), stop() }.
 */
export async function startShapedLink(dataDir, dir, spec, { tls } = {}) {
  const ns = spec.tag ? `cbn-${spec.id}-${spec.tag}` : `cbn-${spec.id}`;
  const hostDev = `cbh${spec.tag ?? spec.id.slice(0, 8)}`.replace(/[^a-z0-9]/g, '').slice(0, 15);
  const nsDev = `cbr${spec.tag ?? spec.id.slice(0, 8)}`.replace(/[^a-z0-9]/g, '').slice(0, 15);
  await run('ip', ['netns', 'del', ns], { allowFail: true });
  await run('ip', ['link', 'del', hostDev], { allowFail: true });
  fs.mkdirSync(dir, { recursive: true });
  const stops = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    await sh(['ip', 'netns', 'add', ns]);
    stops.push(() => run('ip', ['netns', 'del', ns], { allowFail: true }));
    await sh(['ip', 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', nsDev]);
    stops.push(() => run('ip', ['link', 'del', hostDev], { allowFail: true }));
    await sh(['ip', 'link', 'set', nsDev, 'netns', ns]);
    await sh(['ip', 'addr', 'add', `${spec.hostIp}/24`, 'dev', hostDev]);
    await sh(['ip', 'link', 'set', hostDev, 'up']);
    await sh(['ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${spec.registryIp}/24`, 'dev', nsDev]);
    await sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', nsDev, 'up']);
    await sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    await tbf(hostDev, spec.rateMbit);
    await tbf(nsDev, spec.rateMbit, ns);
    const reg = await startRegistryOn(dataDir, dir, { addr: `${spec.registryIp}:5000`, tls, netns: ns, name: `registry-${spec.id}` });
    stops.push(() => reg.stop());
    const relay = await startDelayRelay({ host: spec.registryIp, port: 5000 }, spec.rttMs / 2);
    stops.push(() => relay.stop());
    return { host: relay.host, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}


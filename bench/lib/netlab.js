// The pull suite's network scenarios' pieces: a certificate authority made for the run and a registry certificate
// it signs, a docker-registry over TLS (or plain http) on the suite's registry storage, a relay that counts blob GETs,
// and commands timed with their CPU-seconds (GNU time: wall, user, sys, peak RSS).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { registryYaml } from './registry.js';
import { run } from './util.js';

export const TIME_BIN = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

export async function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A CA (ca.crt) and a registry certificate it signed (registry.crt/.key) for `ips`, in `dir`; `certDir` holds only
 * ca.crt, as `--cert-dir` wants it.
 */
export async function makeCa(dir, ips = ['127.0.0.1']) {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n) => path.join(dir, n);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=carrier bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('registry.key'), '-out', f('registry.csr'), '-subj', '/CN=registry']);
  fs.writeFileSync(f('ext'), `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')},DNS:localhost\n`);
  await run('openssl', ['x509', '-req', '-in', f('registry.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('registry.crt'), '-days', '2', '-extfile', f('ext')]);
  const certDir = f('cert-dir');
  fs.mkdirSync(certDir, { recursive: true });
  fs.copyFileSync(f('ca.crt'), path.join(certDir, 'ca.crt'));
  return { cert: f('registry.crt'), key: f('registry.key'), ca: f('ca.crt'), certDir };
}

/**
 * docker-registry serving `dataDir` (the suite's registry storage, read here only) on `addr` (`ip:port`), over TLS
 * when `tls` ({ cert, key }) is given; in network namespace `netns` when given; a pull-through cache of the registry
 * at URL `proxy` when given (`dataDir` is then its own, written). Resolves { host, url, stop() }.
 */
export async function startRegistryOn(dataDir, confDir, { addr, tls, netns, name = 'registry', proxy, env }) {
  fs.mkdirSync(confDir, { recursive: true });
  const config = path.join(confDir, `${name}.yml`);
  fs.writeFileSync(config, registryYaml({ dataDir, addr, readonly: !proxy, tls, proxy }));
  const logFile = path.join(confDir, `${name}.log`);
  const fd = fs.openSync(logFile, 'w');
  const argv = netns ? ['ip', 'netns', 'exec', netns, 'docker-registry', 'serve', config] : ['docker-registry', 'serve', config];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  fs.closeSync(fd);
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const url = `${tls ? 'https' : 'http'}://${addr}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${fs.readFileSync(logFile, 'utf8').slice(-1500)}`);
    const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...(tls ? ['--cacert', tls.ca] : []), `${url}/v2/`], { allowFail: true });
    if (r.stdout.trim() === '200') break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    host: addr,
    url,
    async stop() {
      process.off('exit', kill);
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/** A plain-http relay in front of `upstream` that counts blob GETs per digest. Resolves { host, blobGets, stop() }. */
export async function startCountingRelay(upstream) {
  const up = new URL(upstream);
  const blobGets = new Map();
  const server = http.createServer((req, res) => {
    const m = req.method === 'GET' ? /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '') : null;
    if (m) blobGets.set(m[1], (blobGets.get(m[1]) ?? 0) + 1);
    const fwd = http.request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${server.address().port}`,
    blobGets,
    stop: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(r);
    }),
  };
}

/**
 * Runs one command under GNU time; resolves { seconds, cpu (user + sys CPU-seconds of it and its children), peakKiB,
 * code, stdout, stderr }. Never rejects on a non-zero exit.
 */
export function timedCpu(cmd, args, { env } = {}) {
  return new Promise((resolve, reject) => {
    let out;
    let argv = [cmd, ...args];
    if (TIME_BIN) {
      out = path.join(fs.mkdtempSync('/tmp/cbn-'), 'time');
      argv = [TIME_BIN, '-f', '%e %U %S %M', '-o', out, ...argv];
    }
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const so = [];
    const se = [];
    child.stdout.on('data', (c) => so.push(c));
    child.stderr.on('data', (c) => se.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      let cpu;
      let peakKiB;
      if (out) {
        try {
          const last = fs.readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
          cpu = last[1] + last[2];
          peakKiB = last[3];
        } catch {}
        fs.rmSync(path.dirname(out), { recursive: true, force: true });
      }
      resolve({ seconds, cpu, peakKiB, code: signal ?? code, stdout: Buffer.concat(so).toString(), stderr: Buffer.concat(se).toString() });
    });
  });
}

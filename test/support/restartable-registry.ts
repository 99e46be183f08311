/**
 * A plain-http Debian `docker-registry` whose process can be killed and started again on the same port with the same
 * storage directory: a registry that dies in the middle of a pull and comes back. (registry.ts's `stop()` removes the
 * storage, so it cannot do this.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, registryConfigLines } from './registry.js';

export interface RestartableRegistry {
  host: string;
  url: string;
  dir: string;
  /** SIGKILL the registry process (its storage stays). */
  kill(): Promise<void>;
  /** Start it again on the same port and storage; resolves once /v2/ answers. */
  start(): Promise<void>;
  /** Kill it and remove its storage. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function ping(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/v2/`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

export async function startRestartableRegistry(): Promise<RestartableRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-rreg-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, [...registryConfigLines(path.join(dir, 'data'), host), ''].join('\n'));
  let child: ChildProcess | undefined;
  const logFile = path.join(dir, 'registry.log');

  const reg: RestartableRegistry = {
    host,
    url,
    dir,
    async kill() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    async start() {
      if (child) throw new Error('registry already running');
      const log = fs.openSync(logFile, 'a');
      const c = spawn('docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
      fs.closeSync(log);
      child = c;
      live.add(c);
      c.once('exit', () => live.delete(c));
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`docker-registry exited (${c.exitCode}): ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
        if ((await ping(url)) === 200) return;
        // the port may still be in TIME_WAIT after a kill; docker-registry then exits and we say so above
        if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await reg.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await reg.start();
  return reg;
}

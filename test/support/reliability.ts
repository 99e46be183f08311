/**
 * Helpers shared by the reliability suites (crash, concurrency, registry faults, full disk): running the built CLI
 * as a child, reading a store's record files raw, checking that every layer of an image rebuilds to its diff digest,
 * running podman with its stderr kept, and a paced blob body whose progress the test can watch.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Store } from '../../src/store/store.js';
import type { LayerRecord, ImageRecord } from '../../src/store/records.js';
import type { Podman } from './images.js';

export const CLI = path.resolve(__dirname, '../../dist/cli/main.js');

/** Fails (naming how to build it) when the CLI has not been built. */
export function requireCli(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `node dist/cli/main.js ARGS`; stdout and stderr are collected as they come. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  done: Promise<CliResult>;
} {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout: out.stdout, stderr: out.stderr }));
  });
  return { child, out, done };
}

/** Runs the CLI to the end. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

export function readLayers(root: string): LayerRecord[] {
  const f = path.join(root, 'overlay-layers', 'layers.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as LayerRecord[]) : [];
}

export function readImages(root: string): ImageRecord[] {
  const f = path.join(root, 'overlay-images', 'images.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as ImageRecord[]) : [];
}

export function incompleteLayers(root: string): string[] {
  return readLayers(root)
    .filter((l) => l.flags?.incomplete === true)
    .map((l) => l.id);
}

/**
 * Every layer of the image, top to bottom, rebuilt from its tar-split and diff/ and hashed: returns the chain as
 * [layer id, recorded diff digest, digest of the rebuilt tar], bottom first.
 */
export async function exportChain(store: Store, imageQuery: string): Promise<{ id: string; recorded?: string; exported: string }[]> {
  const img = await store.requireImage(imageQuery);
  const byId = new Map((await store.layers()).map((l) => [l.id, l]));
  const chain: { id: string; recorded?: string; exported: string }[] = [];
  for (let id = img.topLayer; id !== undefined; id = byId.get(id)?.parent) {
    const layer = byId.get(id);
    if (!layer) throw new Error(`image ${imageQuery}: layer ${id} is not in layers.json`);
    const h = crypto.createHash('sha256');
    for await (const c of await store.exportLayer(id)) h.update(c as Buffer);
    chain.unshift({ id, ...(layer.diffDigest !== undefined ? { recorded: layer.diffDigest } : {}), exported: `sha256:${h.digest('hex')}` });
  }
  return chain;
}

/** podman on the Podman helper's store, keeping exit status and stderr (the helper throws them away). */
export function podmanRaw(p: Podman, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('podman', [...p.globalArgs, ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: p.conf, LC_ALL: 'C.UTF-8' },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, asynchronously (podman running next to other writers). */
export function podmanAsync(p: Podman, args: string[]): Promise<CliResult> {
  const child = spawn('podman', [...p.globalArgs, ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: p.conf, LC_ALL: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** `podman images --format json`, one entry per image id (podman 4.3 repeats an image once per name). */
export function podmanImageList(p: Podman): { Id: string; Names?: string[] }[] {
  const r = podmanRaw(p, ['images', '--format', 'json']);
  if (r.status !== 0) throw new Error(`podman images failed (${r.status}): ${r.stderr}`);
  const all = JSON.parse(r.stdout) as { Id: string; Names?: string[] }[];
  return all.filter((x, i) => all.findIndex((o) => o.Id === x.Id) === i);
}

/**
 * A blob body served in `chunk`-byte pieces, `intervalMs` apart (the first piece also waits `firstDelayMs`), calling
 * `onBytes(total)` after each piece was handed to the socket. For the fault proxy's `respond` fault.
 */
export function pacedBody(
  blob: Buffer,
  opts: { chunk: number; intervalMs: number; firstDelayMs?: number; onBytes?: (sent: number) => void },
): () => Readable {
  return () => {
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const r = new Readable({
      read() {
        if (timer) return;
        const delay = sent === 0 ? (opts.firstDelayMs ?? 0) : opts.intervalMs;
        timer = setTimeout(() => {
          timer = undefined;
          if (sent >= blob.length) {
            r.push(null);
            return;
          }
          const piece = blob.subarray(sent, sent + opts.chunk);
          sent += piece.length;
          r.push(piece);
          opts.onBytes?.(sent);
        }, delay);
      },
      destroy(err, cb) {
        if (timer) clearTimeout(timer);
        cb(err);
      },
    });
    return r;
  };
}

/** A small seeded PRNG (mulberry32) so a run's kill schedule can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A front for `upstream` that forwards every request except GETs of the blob `digest`: those get their status line
 * and headers at once (flushed) and then `firstBytes` of `blob` (only on the first request; a `Range` resume gets a
 * 206 and nothing), and then nothing more, ever: a body stalled mid-way. The connections are destroyed by stop().
 */
export async function startStallFront(
  upstream: string,
  digest: string,
  blob: Buffer,
  firstBytes: number,
): Promise<{ host: string; requests: { path: string; range?: string }[]; stop: () => Promise<void> }> {
  const http = await import('node:http');
  const up = new URL(upstream);
  const requests: { path: string; range?: string }[] = [];
  const server = http.createServer((req, res) => {
    const entry: { path: string; range?: string } = { path: req.url ?? '' };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    requests.push(entry);
    if (req.method === 'GET' && (req.url ?? '').endsWith(`/blobs/${digest}`)) {
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(blob.length - start), 'docker-content-digest': digest };
      if (m) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
      else res.writeHead(200, headers);
      res.flushHeaders();
      if (!m) res.write(blob.subarray(0, firstBytes));
      return; // and stall
    }
    const fwd = http.request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

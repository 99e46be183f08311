// A fleet's registry tier: the CNCF distribution registry in proxy mode (a pull-through cache of an upstream
// registry) configured as a registries.conf mirror. `carrier pull` goes through it; once the mirror holds the image,
// a fresh store still pulls it with the upstream stopped; a mirror that lacks the image, or is down, is passed over
// for the upstream (podman#19409 is podman failing there). Through the built CLI, with real registries and podman.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildTestImage, requireTools, removeWorkDir } from './support/images.js';
import { startRegistry, pushImage, storedImage, freePort, type TestRegistry, type StoredImage } from './support/registry.js';
import { startCountingRelay, type CountingRelay } from './support/counting-relay.js';
import { tempDir } from './support/fixtures.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
let work: string;
let upstream: TestRegistry;
/** In front of the upstream: counts what reaches it. */
let upstreamRelay: CountingRelay;
let truth: StoredImage;
let configId: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

let n = 0;
/** A fresh store (with its own blob cache) in its own directory. */
function newStore(): string {
  const dir = path.join(work, `s${n++}`);
  fs.mkdirSync(dir);
  return dir;
}

function writeConf(name: string, text: string): string {
  const file = path.join(work, `${name}.conf`);
  fs.writeFileSync(file, text);
  return file;
}

/** registries.conf: the upstream (through its relay), with these mirrors in front of it. */
function mirrorConf(name: string, mirrors: string[]): string {
  return writeConf(
    name,
    [`[[registry]]`, `location = "${upstreamRelay.host}"`, 'insecure = true', ...mirrors.flatMap((m) => ['[[registry.mirror]]', `location = "${m}"`, 'insecure = true']), ''].join('\n'),
  );
}

function carrierPull(store: string, conf: string, ref: string): Promise<Result> {
  return run(process.execPath, [CLI, '--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), 'pull', ref], {
    CONTAINERS_REGISTRIES_CONF: conf,
    XDG_DATA_HOME: path.join(store, 'data'),
    CARRIER_BLOB_CACHE: '',
  });
}

function podmanPull(store: string, conf: string, ref: string): Promise<Result> {
  return run('podman', ['--root', path.join(store, 'proot'), '--runroot', path.join(store, 'prun'), '--tmpdir', path.join(store, 'ptmp'), '--storage-driver', 'overlay', 'pull', '-q', ref], {
    CONTAINERS_REGISTRIES_CONF: conf,
  });
}

async function carrierImageId(store: string, ref: string): Promise<string> {
  const r = await run(process.execPath, [CLI, '--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), 'inspect', '--format', 'json', ref], {
    XDG_DATA_HOME: path.join(store, 'data'),
  });
  expect(r.code, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as { Id?: string; id?: string } | { Id?: string; id?: string }[];
  const first = Array.isArray(doc) ? doc[0]! : doc;
  return (first.Id ?? first.id)!;
}

function expectOk(r: Result, what: string): void {
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
}

/** Polls the mirror until it holds every blob of the image (the proxy stores a blob while it streams it). */
async function mirrorHolds(mirror: TestRegistry, repo: string): Promise<boolean> {
  const digests = [truth.config.digest, ...truth.layers.map((l) => l.digest)];
  for (let i = 0; i < 100; i++) {
    const statuses = await Promise.all(digests.map(async (d) => (await fetch(`${mirror.url}/v2/${repo}/blobs/${d}`, { method: 'HEAD' })).status));
    if (statuses.every((s) => s === 200)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

beforeAll(async () => {
  requireTools();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  work = tempDir('mirror');
  upstream = await startRegistry();
  const img = buildTestImage(path.join(work, 'img'), { label: 'mirror' });
  await pushImage(upstream.host, img.ociDir, 'fleet/app:1');
  truth = await storedImage(upstream, 'fleet/app', '1');
  configId = truth.config.digest.slice('sha256:'.length);
  upstreamRelay = await startCountingRelay(upstream.url);
}, 180_000);

afterAll(async () => {
  await upstreamRelay?.stop();
  await upstream?.stop();
  removeWorkDir(work);
});

describe('a pull-through cache as a registries.conf mirror', () => {
  it('passes over a mirror that lacks the image or is down, for the upstream, as podman does', async () => {
    const empty = await startRegistry(); // a mirror that has never heard of the image
    try {
      const dead = `127.0.0.1:${await freePort()}`;
      for (const [name, mirrors] of [
        ['lacks', [empty.host]],
        ['down', [dead]],
        ['both', [dead, empty.host]],
      ] as const) {
        const conf = mirrorConf(name, [...mirrors]);
        const ref = `${upstreamRelay.host}/fleet/app:1`;
        const store = newStore();
        upstreamRelay.blobGets.clear();
        const [c, p] = await Promise.all([carrierPull(store, conf, ref), podmanPull(store, conf, ref)]);
        expectOk(c, `carrier pull (${name})`);
        expectOk(p, `podman pull (${name})`);
        expect(await carrierImageId(store, ref)).toBe(configId);
        expect(p.stdout.trim()).toBe(configId);
        // The upstream served the layers (to both).
        for (const l of truth.layers) expect(upstreamRelay.blobGets.get(l.digest), name).toBe(2);
      }
    } finally {
      await empty.stop();
    }
  }, 180_000);

  it('pulls through the mirror, and from the mirror alone once the upstream is stopped', async () => {
    // The proxy's remote is the upstream itself (not its relay): what reaches the relay came from Carrier.
    const mirror = await startRegistry({ proxyRemote: upstream.url });
    try {
      const conf = mirrorConf('proxy', [mirror.host]);
      const ref = `${upstreamRelay.host}/fleet/app:1`;
      upstreamRelay.blobGets.clear();
      const first = newStore();
      expectOk(await carrierPull(first, conf, ref), 'carrier pull through the mirror');
      expect(await carrierImageId(first, ref)).toBe(configId);
      expect(upstreamRelay.blobGets.size).toBe(0); // every blob came through the mirror
      expect(await mirrorHolds(mirror, 'fleet/app')).toBe(true);

      await upstreamRelay.stop();
      const second = newStore();
      expectOk(await carrierPull(second, conf, ref), 'carrier pull with the upstream stopped');
      expect(await carrierImageId(second, ref)).toBe(configId);
      // podman, given the same file, agrees.
      const p = await podmanPull(second, conf, ref);
      expectOk(p, 'podman pull with the upstream stopped');
      expect(p.stdout.trim()).toBe(configId);
      // By digest too (a mirror with pull-from-mirror = "digest-only" serves only these).
      const third = newStore();
      expectOk(await carrierPull(third, conf, `${upstreamRelay.host}/fleet/app@${truth.digest}`), 'carrier pull by digest');
    } finally {
      await mirror.stop();
    }
  }, 180_000);
});

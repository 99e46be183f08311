// Crash consistency: `carrier pull` and `carrier rmi` killed with SIGKILL at varied points (after N ms, or after N
// bytes of a layer blob went out through the fault proxy), many times over one store. After every kill the next
// Carrier command succeeds, no incomplete layer survives an open that got the lock, a re-pull succeeds and every
// layer of the image rebuilds to its diff digest; at the end podman reads and mounts the same store.
//
// CARRIER_CRASH_KILLS (default 54) sets the number of kills, CARRIER_CRASH_SEED replays a run's schedule.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { Store } from '../src/store/store.js';
import { pull } from '../src/pull.js';
import { isBlobGet } from './support/fault-proxy.js';
import { Podman, type TestImage } from './support/images.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import {
  exportChain,
  incompleteLayers,
  pacedBody,
  podmanImageList,
  podmanRaw,
  readImages,
  readLayers,
  requireCli,
  runCli,
  seeded,
  startCli,
} from './support/reliability.js';
import { registryRig } from './support/registry-rig.js';

const KILLS = Number(process.env.CARRIER_CRASH_KILLS ?? 54);
const SEED = Number(process.env.CARRIER_CRASH_SEED ?? Date.now() % 1_000_000);

let podman: Podman;
let cacheDir: string;
const images: { repo: string; img: TestImage }[] = [];

const o = { mtime: 1_700_000_000 };
const rig = registryRig('ccr', { proxy: true }, async () => {
  requireCli();
  // Three images over shared lower layers: a, b = [base, mid, own]; c = [base, own, own2]. The random payloads keep
  // the blobs incompressible, so a drip takes a predictable time.
  const base = { compression: 'gzip' as const, entries: [H.dir('base/', o), H.file('base/blob', prng(96 * 1024, 'crash-base'), o)] };
  const mid = { compression: 'gzip' as const, entries: [H.dir('etc/', o), H.file('etc/os-release', 'ID=crash\n', o), H.symlink('etc/link', 'os-release', o)] };
  // (all gzip: skopeo would compress an uncompressed layer on push, and the byte kills match the blob's digest)
  const own = (s: string) => ({
    compression: 'gzip' as const,
    entries: [H.dir(`${s}/`, o), H.file(`${s}/payload`, prng(64 * 1024, `crash-${s}`), o), H.file(`${s}/note`, `${s}\n`, o)],
  });
  const specs = [
    { repo: 'crash/a:1', layers: [base, mid, own('a')] },
    { repo: 'crash/b:1', layers: [base, mid, own('b')] },
    { repo: 'crash/c:1', layers: [base, own('c'), own('c2')] },
  ];
  for (const s of specs) {
    const img = await rig.buildAndPush(`img-${s.repo.replace(/\W/g, '')}`, s.repo, { layers: s.layers, label: s.repo });
    images.push({ repo: s.repo, img });
  }
  podman = new Podman(path.join(rig.work, 's'));
  cacheDir = path.join(rig.work, 'cache');
});

type Phase = 'startup' | 'resolved' | 'downloading' | 'committed';

/** Where a killed pull was, from the progress lines it had written to stderr. */
function phaseOf(stderr: string): Phase {
  if (stderr.includes('Writing manifest to image destination')) return 'committed';
  if (/Copying blob/.test(stderr)) return 'downloading';
  if (stderr.includes('Getting image source signatures')) return 'resolved';
  return 'startup';
}

const globals = (): string[] => ['--root', podman.root, '--runroot', podman.runroot];

async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
  const s = await Store.open({ root: podman.root, runroot: podman.runroot });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Every image in the store rebuilds layer by layer to its diff digests, and these match the test image's diff_ids. */
async function checkExports(s: Store, repo: string, img: TestImage): Promise<void> {
  const chain = await exportChain(s, `${rig.proxy.host}/${repo}`);
  expect(chain.map((c) => c.exported), repo).toEqual(img.diffIDs);
  expect(chain.map((c) => c.recorded), repo).toEqual(img.diffIDs);
}

describe('SIGKILL of the CLI during pulls and deletes', () => {
  it(`survives ${KILLS} kills: the next command succeeds, no incomplete layer, re-pulls export exactly, podman reads the store`, async () => {
    const rand = seeded(SEED);
    const pullPhases: Record<Phase, number> = { startup: 0, resolved: 0, downloading: 0, committed: 0 };
    const rmiPhases = { 'image still listed': 0, 'image gone, its layers not yet': 0, 'image and its own layers gone': 0 };
    let pullKills = 0;
    let rmiKills = 0;
    let byteKills = 0;
    let leftIncomplete = 0;
    let exitedFirst = 0;
    const log: string[] = [];
    let checks = 0;
    const started = Date.now();

    /** After a kill: `carrier images` succeeds, its open repaired the store, the image re-pulls and exports. */
    const afterKill = async (label: string, repo: string, img: TestImage, repull: boolean): Promise<void> => {
      if (incompleteLayers(podman.root).length > 0) leftIncomplete++;
      const listed = await runCli([...globals(), 'images', '--format', 'json']);
      expect(listed.code, `${label}: carrier images: ${listed.stderr}`).toBe(0);
      JSON.parse(listed.stdout);
      // `carrier images` opened the store with the layers lock free: nothing half made may be left
      expect(incompleteLayers(podman.root), label).toEqual([]);
      const ids = readLayers(podman.root).map((l) => l.id);
      expect(new Set(ids).size, `${label}: duplicate layer records`).toBe(ids.length);
      const imgIds = readImages(podman.root).map((i) => i.id);
      expect(new Set(imgIds).size, `${label}: duplicate image records`).toBe(imgIds.length);
      if (!repull) return;
      await withStore(async (s) => {
        const r = await pull(s, `${rig.proxy.host}/${repo}`, { tlsVerify: false, blobCacheDir: cacheDir });
        expect(r.id, label).toBe(img.configDigest.slice(7));
        await checkExports(s, repo, img);
        // an image pulled earlier in the run must still be whole too
        if (checks++ % 4 === 0) {
          for (const other of images) if (other.repo !== repo && (await s.image(`${rig.proxy.host}/${other.repo}`))) await checkExports(s, other.repo, other.img);
        }
      });
    };

    for (let i = 0; pullKills + rmiKills < KILLS; i++) {
      if (i > KILLS * 3) throw new Error(`only ${pullKills + rmiKills} kills landed in ${i} attempts: ${log.join('; ')}`);
      const { repo, img } = images[i % images.length]!;
      // the image goes first, so the pull has layers to write (its own top layers at least)
      await withStore(async (s) => {
        if (await s.image(`${rig.proxy.host}/${repo}`)) await s.removeImage(`${rig.proxy.host}/${repo}`);
      });
      rig.proxy.clearRules();
      const byBytes = i % 4 === 3; // with i % 3 choosing the image, every image gets byte kills
      const top = img.layers[img.layers.length - 1]!;
      let killAt: (() => void) | undefined;
      let threshold = 0;
      if (byBytes) {
        // the image's own top layer, paced through the proxy: the kill comes after `threshold` bytes went out
        threshold = Math.floor(rand() * top.size);
        rig.proxy.addRule({
          match: (r) => isBlobGet(r) && r.path.endsWith(top.digest),
          fault: {
            kind: 'respond',
            status: 200,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(top.size), 'docker-content-digest': top.digest },
            body: pacedBody(top.blob, { chunk: 4096, intervalMs: 4, onBytes: (n) => n >= threshold && killAt?.() }),
          },
          times: Infinity,
        });
      } else {
        rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 2048, intervalMs: 8 }, times: Infinity });
      }
      // a fresh blob cache per attempt: blobs cached by an earlier attempt would skip the download. The cache belongs
      // to the store (or CARRIER_BLOB_CACHE), not to XDG_DATA_HOME, so the variable names one per attempt.
      const env = { CARRIER_BLOB_CACHE: path.join(rig.work, 'blob-cache', String(i)) };
      const run = startCli([...globals(), 'pull', '--tls-verify=false', `${rig.proxy.host}/${repo}`], env);
      let killed = false;
      const kill = (): void => {
        if (killed) return;
        killed = true;
        run.child.kill('SIGKILL');
      };
      let phase: Phase;
      if (byBytes) {
        const deadline = setTimeout(kill, 15_000);
        killAt = () => {
          phase = phaseOf(run.out.stderr);
          kill();
        };
        if (threshold === 0) killAt = () => kill(); // the first byte
        const res = await run.done;
        clearTimeout(deadline);
        phase ??= phaseOf(res.stderr);
        if (res.signal !== 'SIGKILL') {
          exitedFirst++;
          log.push(`#${i} ${repo} exited ${res.code} before ${threshold} bytes`);
          continue;
        }
        byteKills++;
      } else {
        const delay = 200 + Math.floor(rand() * 550); // an undisturbed pull here takes about 0.7 s
        const timer = setTimeout(() => {
          phase = phaseOf(run.out.stderr);
          kill();
        }, delay);
        const res = await run.done;
        clearTimeout(timer);
        if (res.signal !== 'SIGKILL') {
          expect(res.code, res.stderr).toBe(0);
          exitedFirst++;
          log.push(`#${i} ${repo} finished before ${delay} ms`);
          await afterKill(`#${i} (no kill)`, repo, img, true);
          continue;
        }
        phase ??= phaseOf(res.stderr);
      }
      pullKills++;
      pullPhases[phase!]++;
      await afterKill(`pull kill #${i} ${repo} (${phase!}${byBytes ? `, after ${threshold} bytes` : ''})`, repo, img, true);

      // every other round, kill an rmi of the image just pulled back: after N ms, or the moment it rewrites
      // images.json (the image record goes first) or layers.json (its layers are flagged, then removed)
      if (i % 2 === 0 && pullKills + rmiKills < KILLS) {
        rig.proxy.clearRules();
        const topLayer = readImages(podman.root).find((r) => r.names?.includes(`${rig.proxy.host}/${repo}`))?.layer;
        const mode = (['timer', 'images.json', 'layers.json'] as const)[(i / 2) % 3]!;
        const rmi = startCli([...globals(), 'rmi', `${rig.proxy.host}/${repo}`]);
        const killRmi = (): void => void rmi.child.kill('SIGKILL');
        let timer: NodeJS.Timeout | undefined;
        let watcher: fs.FSWatcher | undefined;
        if (mode === 'timer') timer = setTimeout(killRmi, 200 + Math.floor(rand() * 250));
        else {
          const dir = path.join(podman.root, mode === 'images.json' ? 'overlay-images' : 'overlay-layers');
          watcher = fs.watch(dir, (_ev, name) => name === mode && killRmi());
        }
        const res = await rmi.done;
        if (timer) clearTimeout(timer);
        watcher?.close();
        if (res.signal === 'SIGKILL') {
          rmiKills++;
          // where it was: nothing done yet, the image record gone but not all its layers, or all of it done
          const imageGone = !readImages(podman.root).some((r) => r.names?.includes(`${rig.proxy.host}/${repo}`));
          const layerLeft = readLayers(podman.root).some((l) => l.id === topLayer);
          const where = !imageGone ? 'image still listed' : layerLeft ? 'image gone, its layers not yet' : 'image and its own layers gone';
          rmiPhases[where]++;
          await afterKill(`rmi kill #${i} ${repo} (${mode}, ${where})`, repo, img, true);
        } else {
          expect(res.code, res.stderr).toBe(0);
          exitedFirst++;
          log.push(`#${i} rmi ${repo} (${mode}) finished first`);
        }
      }
    }

    // the end: all three images in the store, podman lists them without complaint and mounts each
    await withStore(async (s) => {
      for (const { repo, img } of images) {
        await pull(s, `${rig.proxy.host}/${repo}`, { tlsVerify: false, blobCacheDir: cacheDir });
        await checkExports(s, repo, img);
      }
    });
    const listed = podmanRaw(podman, ['images']);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stderr).toBe('');
    expect(podmanImageList(podman).map((p) => p.Id).sort()).toEqual(images.map((x) => x.img.configDigest.slice(7)).sort());
    for (const { repo } of images) {
      const m = podmanRaw(podman, ['image', 'mount', `${rig.proxy.host}/${repo}`]);
      expect(m.status, m.stderr).toBe(0);
      const mnt = m.stdout.trim();
      try {
        expect(fs.readFileSync(path.join(mnt, 'base/blob')).equals(prng(96 * 1024, 'crash-base'))).toBe(true);
      } finally {
        const u = podmanRaw(podman, ['image', 'unmount', `${rig.proxy.host}/${repo}`]);
        expect(u.status, u.stderr).toBe(0);
      }
    }
    const summary = {
      seed: SEED,
      kills: pullKills + rmiKills,
      pullKills,
      byteKills,
      pullPhases,
      rmiKills,
      rmiPhases,
      killsThatLeftIncompleteLayers: leftIncomplete,
      attemptsThatFinishedBeforeTheKill: exitedFirst,
      ...(process.env.CARRIER_TEST_VERBOSE ? { log } : {}),
      seconds: Math.round((Date.now() - started) / 1000),
    };
    console.log(`crash summary ${JSON.stringify(summary)}`);
    expect(pullKills + rmiKills).toBeGreaterThanOrEqual(KILLS);
    // the schedule must reach the interesting phases, not only start-up
    expect(pullPhases.downloading).toBeGreaterThan(0);
  }, 240_000);
});

// Power loss: the store on a file system on a direct-I/O loop device (test/support/power-loss.ts). While a pull of a
// 130-layer image (gzip and zstd layers) from a real registry, a second pull sharing most of its layers, a container
// create, a commit, a container rm, an rmi, an image prune and a blob-cache prune run, reflink copies of the device are
// taken at random moments: each is what a power cut at that moment would leave. Every copy is mounted (its journal
// replays) and checked (checkCrashCopy): records parse, every complete layer rebuilds to its diff_id with every
// file's CRC right, images name only complete layers and have their config and manifests, Carrier opens the store
// and podman lists it. A copy taken just after an operation returned must also hold that operation's outcome.
//
// CARRIER_POWERLOSS_POINTS (default 200) sets the crash points; CARRIER_POWERLOSS_SEED replays a run's schedule;
// CARRIER_POWERLOSS_FS=ext4 puts the store on ext4 instead of XFS. CARRIER_POWERLOSS_NO_SYNC=1 runs every pull and
// commit with `sync: false` (the CLI's --no-sync) and only counts the corrupt copies: it shows the check can fail
// and what --no-sync risks (test/RELIABILITY.md).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Store, pull, createContainer, removeContainer, commit, pruneBlobCache } from '../src/index.js';
import { startRegistry, pushImage, type TestRegistry } from './support/registry.js';
import { buildTestImage, removeWorkDir, requireTools, type LayerSpec, type TestImage } from './support/images.js';
import { prng } from './support/fixtures.js';
import { seeded, sleep } from './support/reliability.js';
import { PowerLossRig, checkCrashCopy, extentMap, type CrashCopyReport, type StoreFsKind } from './support/power-loss.js';
import * as H from './support/hostile.js';

const POINTS = Number(process.env.CARRIER_POWERLOSS_POINTS ?? 200);
const SEED = Number(process.env.CARRIER_POWERLOSS_SEED ?? Date.now() % 1_000_000);
const FS = (process.env.CARRIER_POWERLOSS_FS ?? 'xfs') as StoreFsKind;
const NO_SYNC = process.env.CARRIER_POWERLOSS_NO_SYNC === '1';
const LAYERS = 130;
const SHARED = 60;

let reg: TestRegistry;
let work: string;
let rig: PowerLossRig;
let bigImage: TestImage;
let smallImage: TestImage;

const o = { mtime: 1_700_000_000 };

/** Layer i of the big image: its own directory with a random payload (4–52 KiB) and a note; now and then a symlink, a
 * whiteout of the previous layer's note or an opaque directory. gzip and zstd alternate. */
function bigLayer(i: number): LayerSpec {
  const d = `l${i}`;
  const entries = [H.dir(`${d}/`, o), H.file(`${d}/payload`, prng(4096 + ((i * 7919) % 48) * 1024, `pl-${i}`), o), H.file(`${d}/note`, `layer ${i}\n`, o)];
  if (i % 10 === 3) entries.push(H.symlink(`${d}/link`, 'note', o));
  if (i > 0 && i % 20 === 7) entries.push(H.dir(`l${i - 1}/`, o), H.file(`l${i - 1}/.wh.note`, '', o));
  if (i % 25 === 11) entries.push(H.dir(`${d}/opaque/`, o), H.file(`${d}/opaque/.wh..wh..opq`, '', o));
  return { compression: i % 2 === 0 ? 'gzip' : 'zstd', entries };
}

beforeAll(async () => {
  requireTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-powerloss-'));
  reg = await startRegistry();
  const layers = Array.from({ length: LAYERS }, (_, i) => bigLayer(i));
  bigImage = buildTestImage(path.join(work, 'big'), { layers, label: 'powerloss-big' });
  const own = Array.from({ length: 6 }, (_, i): LayerSpec => ({
    compression: 'gzip',
    entries: [H.dir('small/', o), H.file(`small/f${i}`, prng(16 * 1024, `pl-small-${i}`), o)],
  }));
  smallImage = buildTestImage(path.join(work, 'small'), { layers: [...layers.slice(0, SHARED), ...own], label: 'powerloss-small' });
  await pushImage(reg.host, bigImage.ociDir, 'powerloss/big:1');
  await pushImage(reg.host, smallImage.ociDir, 'powerloss/small:1');
  rig = await PowerLossRig.start(work, { fs: FS });
}, 300_000);

afterAll(async () => {
  await rig?.stop();
  await reg?.stop();
  removeWorkDir(work);
});

type Op = 'pull' | 'pull-shared' | 'create' | 'commit' | 'rm' | 'rmi' | 'prune' | 'cache-prune';

interface Tally {
  points: number;
  corrupt: number;
  /** Copies in which an operation was visibly under way (a layer recorded incomplete). */
  midway: number;
  /** Copies that held the same bytes as the copy before them (equal extent maps): that copy's verdict. */
  sameAsBefore: number;
  /** Copies taken, of which the sample was checked. */
  taken: number;
}

/** A problem's message with its ids, digests and numbers taken out: what kind of damage it is. */
const problemKind = (p: string): string =>
  p
    .replace(/sha256:[0-9a-f]{64}/g, 'DIGEST')
    .replace(/\b[0-9a-f]{12,64}\b/g, 'ID')
    .replace(/\d+/g, 'N')
    .slice(0, 160);

/** Copies checked per operation at most (short operations give fewer), and one more after each: a round gives 200 or so. */
const SAMPLE: Record<Op, number> = { pull: 120, 'pull-shared': 20, create: 10, commit: 25, rm: 10, rmi: 10, prune: 45, 'cache-prune': 10 };
/** Mean gap between copies (ms): a copy makes every later write to the device copy on write, so not too many. */
const GAP: Record<Op, number> = { pull: 25, 'pull-shared': 10, create: 3, commit: 5, rm: 3, rmi: 2, prune: 5, 'cache-prune': 3 };

describe(`power loss during store operations (${FS} store, ${NO_SYNC ? 'sync: false' : 'synced'})`, () => {
  it(
    NO_SYNC
      ? `counts the crash copies left corrupt by ${POINTS}+ power cuts with sync off (reported, not asserted)`
      : `${POINTS}+ power cuts at random moments leave no corrupt store, and a finished operation survives one`,
    async () => {
      const rand = seeded(SEED);
      const graphroot = path.join(rig.mountDir, 'root');
      const sync = NO_SYNC ? { sync: false } : {};
      const tally = new Map<Op, Tally>();
      const failures: string[] = [];
      const durations: Record<string, number[]> = {};
      let lostOutcomes = 0;
      const started = Date.now();
      const checkMs = { whole: 0, open: 0, rebuild: 0, podman: 0 };
      let checked = 0;
      let podmanRuns = 0;
      const podmanListed = new Map<string, string[]>();
      /** Corrupt copies by kind of problem (ids and sizes taken out of the message). */
      const kinds = new Map<string, number>();

      /**
       * Runs `op` while copies are taken at random moments (gaps uniform in [0, 2 × GAP]); keeps a uniform
       * random sample of `sampleSize` of them (reservoir sampling; the rest are deleted unchecked and not counted),
       * plus one copy taken once the operation returned, and checks those. `outcome` says whether the last copy holds
       * what the operation did. A copy whose extent map equals the one before it holds the same bytes (extentMap): it
       * gets that copy's verdict without a mount of its own.
       */
      const during = async <T>(name: Op, op: () => Promise<T>, outcome: (r: CrashCopyReport & { graphroot: string }) => boolean): Promise<T> => {
        // a round after the first takes only what is still missing
        const wanted = Math.ceil(SAMPLE[name] * (POINTS / 200));
        const sampleSize = rounds > 1 ? Math.max(1, Math.min(wanted, POINTS - total() - 1)) : wanted;
        let done = false;
        const sample: { copy: string; n: number }[] = [];
        let taken = 0;
        const t0 = Date.now();
        const running = op().finally(() => {
          done = true;
        });
        const taker = (async () => {
          while (!done) {
            await sleep(rand() * 2 * GAP[name]);
            if (done) break;
            const copy = await rig.snapshot();
            const n = taken++;
            if (sample.length < sampleSize) sample.push({ copy, n });
            else {
              const j = Math.floor(rand() * taken);
              if (j < sampleSize) {
                fs.rmSync(sample[j]!.copy);
                sample[j] = { copy, n };
              } else fs.rmSync(copy);
            }
          }
        })();
        const result = await running.catch(async (err: unknown) => {
          await taker;
          throw err;
        });
        await taker;
        (durations[name] ??= []).push(Date.now() - t0);
        const after = await rig.snapshot();
        const t = tally.get(name) ?? { points: 0, corrupt: 0, midway: 0, sameAsBefore: 0, taken: 0 };
        tally.set(name, t);
        t.taken += taken + 1;
        const all = await Promise.all(
          [...sample.sort((x, y) => x.n - y.n).map((x) => x.copy), after].map(async (copy) => ({ copy, extents: await extentMap(copy) })),
        );
        // Copies with the same bytes as the one before them share its check; the rest are checked two at a time.
        const firstOfRun = all.map((c, i) => (i > 0 && i < all.length - 1 && all[i - 1]!.extents === c.extents ? -1 : i));
        for (let i = 1; i < all.length; i++) if (firstOfRun[i] === -1) firstOfRun[i] = firstOfRun[i - 1]!;
        const reports = new Map<number, Promise<{ report: CrashCopyReport; holds: boolean }>>();
        const checkOne = async (i: number): Promise<{ report: CrashCopyReport; holds: boolean }> => {
          const last = i === all.length - 1;
          let holds = true;
          const c0 = Date.now();
          const report = await rig.withCopy(all[i]!.copy, async (dir) => {
            // podman refuses a run root over 50 characters: a short directory of the copy's own
            const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'plc-'));
            try {
              const rep = await checkCrashCopy(path.join(dir, 'root'), scratch, podmanListed).catch(
                (err: unknown): CrashCopyReport => ({
                  problems: [`the check failed: ${(err as Error).stack}`],
                  ...{ layersChecked: 0, images: 0, containers: 0, incomplete: 0, ms: { open: 0, rebuild: 0, podman: 0 } },
                }),
              );
              if (last && rep.problems.length === 0) holds = outcome({ ...rep, graphroot: path.join(dir, 'root') });
              return rep;
            } finally {
              removeWorkDir(scratch);
            }
          });
          checked++;
          if (!report.podmanShared) podmanRuns++;
          for (const k of ['open', 'rebuild', 'podman'] as const) checkMs[k] += report.ms[k];
          checkMs.whole += Date.now() - c0;
          return { report, holds };
        };
        const firsts = all.map((_, i) => i).filter((i) => firstOfRun[i] === i);
        const queue = [...firsts];
        await Promise.all(
          [0, 1].map(async () => {
            for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
              const p = checkOne(i);
              reports.set(i, p);
              await p;
            }
          }),
        );
        for (const [i, c] of all.entries()) {
          if (firstOfRun[i] !== i) {
            fs.rmSync(c.copy);
            t.sameAsBefore++;
          }
          const { report: r, holds } = await reports.get(firstOfRun[i]!)!;
          t.points++;
          if (r.incomplete > 0) t.midway++;
          if (r.problems.length > 0) {
            t.corrupt++;
            for (const kind of new Set(r.problems.map(problemKind))) kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
            if (failures.length < 20) failures.push(`${name} copy ${i + 1}/${all.length}: ${r.problems.slice(0, 3).join(' | ')}`);
          }
          if (!holds) {
            lostOutcomes++;
            if (failures.length < 20) failures.push(`${name}: the copy taken after it returned does not hold its outcome`);
          }
        }
        return result;
      };

      const total = (): number => [...tally.values()].reduce((n, t) => n + t.points, 0);
      const bigRef = `${reg.host}/powerloss/big:1`;
      const smallRef = `${reg.host}/powerloss/small:1`;
      const bigId = bigImage.configDigest.slice(7);
      const smallId = smallImage.configDigest.slice(7);
      const imagesOf = (g: string): string[] => {
        const f = path.join(g, 'overlay-images', 'images.json');
        return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as { id: string }[]).map((i) => i.id) : [];
      };

      let rounds = 0;
      // Every operation runs at least once; a further round stops as soon as the crash points are reached.
      const enough = (): boolean => rounds > 1 && total() >= POINTS;
      while (total() < POINTS) {
        rounds++;
        const store = await Store.open({ root: graphroot, runroot: path.join(work, 'run'), driver: 'overlay' });
        try {
          await during('pull', () => pull(store, bigRef, { tlsVerify: false, ...sync }), (r) => imagesOf(r.graphroot).includes(bigId) && r.layersChecked >= LAYERS);
          if (enough()) break;
          await during('pull-shared', () => pull(store, smallRef, { tlsVerify: false, ...sync }), (r) => imagesOf(r.graphroot).includes(smallId));
          if (enough()) break;
          const c = await during('create', () => createContainer(store, bigRef), (r) => r.containers === 1);
          // what the container wrote: new files in its read-write layer
          const upper = store.layerDiffPath(c.layer);
          fs.mkdirSync(path.join(upper, 'work'), { recursive: true });
          for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(upper, 'work', `out-${i}`), prng(8192 + i * 4096, `pl-c-${rounds}-${i}`));
          const committed = await during('commit', () => commit(store, c.id, `localhost/powerloss/committed:${rounds}`, sync), (r) => r.images === 3);
          if (enough()) break;
          await during('rm', () => removeContainer(store, c.id), (r) => r.containers === 0);
          if (enough()) break;
          await during('rmi', () => store.removeImage(bigRef), (r) => !imagesOf(r.graphroot).includes(bigId));
          if (enough()) break;
          await during('prune', () => store.pruneImages({ all: true }), (r) => r.images === 0 && !imagesOf(r.graphroot).includes(committed.id));
          if (enough()) break;
          await during('cache-prune', () => pruneBlobCache(store, { minAge: 0 }), () => true);
        } finally {
          await store.close();
        }
      }

      const summary = {
        mode: NO_SYNC ? 'sync: false' : 'synced',
        fs: FS,
        seed: SEED,
        rounds,
        points: total(),
        corrupt: [...tally.values()].reduce((n, t) => n + t.corrupt, 0),
        lostOutcomes,
        corruptByKind: Object.fromEntries(kinds),
        byOperation: Object.fromEntries([...tally].map(([k, t]) => [k, `${t.taken} copies taken, ${t.points} checked, ${t.corrupt} corrupt, ${t.midway} mid-operation, ${t.sameAsBefore} same bytes as the copy before`])),
        msPerOperation: Object.fromEntries(Object.entries(durations).map(([k, v]) => [k, Math.round(v.reduce((a, b) => a + b, 0) / v.length)])),
        mounted: checked,
        podmanRuns,
        msPerMountedCheck: Object.fromEntries(Object.entries(checkMs).map(([k, v]) => [k, Math.round(v / Math.max(1, checked))])),
        seconds: Math.round((Date.now() - started) / 1000),
        failures,
      };
      console.log('power-loss summary', JSON.stringify(summary, null, 1));
      expect(summary.points).toBeGreaterThanOrEqual(POINTS);
      // the copies caught operations half way (else the schedule proves nothing)
      expect(tally.get('pull')!.midway, 'copies taken with a pull under way').toBeGreaterThan(0);
      if (!NO_SYNC) {
        expect(failures).toEqual([]);
        expect(summary.corrupt).toBe(0);
        expect(lostOutcomes).toBe(0);
      }
    },
    1_800_000,
  );
});

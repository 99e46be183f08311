// Crash consistency of `carrier create`: a container's read-write layer is recorded once, complete, after its
// directories; before them a marker in the run root names it (src/store/layers.ts). The CLI is killed with SIGKILL
// the moment the marker appears (its directories being made, its record not yet saved) and at other points of the
// command, many times over one store. After every kill the next command's open repairs: no marker is left, every
// layer directory and link belongs to a recorded layer, every container's layer is there; at the end podman lists
// and mounts the same store's containers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { buildRunnableImage } from './support/runnable.js';
import { commitOf, storeDirs } from './support/store.js';
import { Podman } from './support/images.js';
import { podmanRaw, readLayers, requireCli, runCli, seeded, startCli } from './support/reliability.js';

const KILLS = 24;
const SEED = Number(process.env.CARRIER_CRASH_SEED ?? Date.now() % 1_000_000);
const NAME = 'localhost/crash-create:1';

let work: string;
let podman: Podman;

beforeAll(async () => {
  requireCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-crash-create-'));
  podman = new Podman(work);
  const image = buildRunnableImage(path.join(work, 'oci'));
  const store = await Store.open(storeDirs(work));
  try {
    await store.commitImage(commitOf(image, [NAME]));
  } finally {
    await store.close();
  }
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const globals = (): string[] => ['--root', podman.root, '--runroot', podman.runroot];
const runLayers = (): string => path.join(podman.runroot, 'overlay-layers');
const markers = (): string[] => fs.readdirSync(runLayers()).filter((n) => n.startsWith('creating-'));

/** What an open that got the layers lock must have left: nothing half made, nothing unrecorded. */
function checkRepaired(label: string): void {
  expect(markers(), `${label}: markers left`).toEqual([]);
  const recorded = new Set(readLayers(podman.root).map((l) => l.id));
  const home = path.join(podman.root, 'overlay');
  const dirs = fs.readdirSync(home).filter((n) => /^[0-9a-f]{64}$/.test(n));
  expect(
    dirs.filter((d) => !recorded.has(d)),
    `${label}: layer directories no record names`,
  ).toEqual([]);
  for (const link of fs.readdirSync(path.join(home, 'l'))) {
    expect(fs.existsSync(path.join(home, 'l', link)), `${label}: l/${link} leads nowhere`).toBe(true);
  }
  const containers = JSON.parse(fs.readFileSync(path.join(podman.root, 'overlay-containers', 'containers.json'), 'utf8')) as { id: string; layer: string }[];
  for (const c of containers) {
    expect(recorded.has(c.layer), `${label}: container ${c.id} has no layer record`).toBe(true);
    expect(fs.existsSync(path.join(home, c.layer, 'diff')), `${label}: container ${c.id} has no layer directory`).toBe(true);
  }
}

describe('SIGKILL of `carrier create`', () => {
  it(`survives ${KILLS} kills (half of them while its layer is marked but not recorded): the next open repairs and podman reads the store`, async () => {
    const rand = seeded(SEED);
    // one create that completes makes the store's run root (and shows the marker goes with success)
    const first = await runCli([...globals(), 'create', NAME]);
    expect(first.code, first.stderr).toBe(0);
    expect(markers()).toEqual([]);
    let whileMarked = 0;
    for (let i = 0; i < KILLS; i++) {
      const onMarker = i % 2 === 0;
      const run = startCli([...globals(), 'create', NAME]);
      let watcher: fs.FSWatcher | undefined;
      let timer: NodeJS.Timeout | undefined;
      const kill = (): void => {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      };
      if (onMarker) {
        watcher = fs.watch(runLayers(), (_event, name) => {
          if (String(name).startsWith('creating-')) kill();
        });
      } else {
        timer = setTimeout(kill, Math.floor(rand() * 150));
      }
      const r = await run.done;
      watcher?.close();
      clearTimeout(timer);
      const label = `kill ${i} (seed ${SEED}, ${onMarker ? 'on the marker' : 'timed'})`;
      if (r.signal === 'SIGKILL' && markers().length > 0) whileMarked++;
      // the next command opens the store with the layers lock free, and repairs
      const ps = await runCli([...globals(), 'ps', '-a', '--format', 'json']);
      expect(ps.code, `${label}: carrier ps: ${ps.stderr}`).toBe(0);
      checkRepaired(label);
    }
    // the kills this test is for did happen: a layer marked, its directories under way, no record yet
    expect(whileMarked, `seed ${SEED}`).toBeGreaterThan(0);
    // podman sees every container the store records (--external: made by another tool), and mounts one
    const recorded = (JSON.parse(fs.readFileSync(path.join(podman.root, 'overlay-containers', 'containers.json'), 'utf8')) as { id: string }[]).map((c) => c.id);
    const listed = podmanRaw(podman, ['ps', '-a', '--external', '--no-trunc', '--format', '{{.ID}}']);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split('\n').filter(Boolean).sort()).toEqual([...recorded].sort());
    const mounted = podmanRaw(podman, ['mount', recorded[0]!]);
    expect(mounted.status, mounted.stderr).toBe(0);
    expect(fs.existsSync(path.join(mounted.stdout.trim(), 'bin'))).toBe(true);
    podmanRaw(podman, ['umount', recorded[0]!]);
  });
});

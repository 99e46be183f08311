// Concurrency: three `carrier pull` processes pulling images that share their lower layers into one store at the same
// moment, with `podman pull` writing into the same store meanwhile. All four succeed, every layer is recorded once,
// every image once with its name, podman and Carrier list the same images, and every layer rebuilds to its diff
// digest. Three rounds: straight from the registry, with every blob dripping through the fault proxy (so the
// writers wait on each other's locks for longer), and into a store that already holds the shared base.
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { Store } from '../src/store/store.js';
import { isBlobGet } from './support/fault-proxy.js';
import { Podman, type TestImage } from './support/images.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import { exportChain, podmanAsync, podmanImageList, readImages, readLayers, requireCli, runCli, startCli } from './support/reliability.js';
import { registryRig } from './support/registry-rig.js';

const carrierImages: { repo: string; img: TestImage }[] = [];
let podmanImage: { repo: string; img: TestImage };

const o = { mtime: 1_700_000_000 };
const rig = registryRig('ccc', { proxy: true }, async () => {
  requireCli();
  const base = { compression: 'gzip' as const, entries: [H.dir('base/', o), H.file('base/blob', prng(128 * 1024, 'conc-base'), o)] };
  const mid = { compression: 'gzip' as const, entries: [H.dir('etc/', o), H.file('etc/os-release', 'ID=conc\n', o)] };
  const own = (s: string) => ({ compression: 'gzip' as const, entries: [H.dir(`${s}/`, o), H.file(`${s}/payload`, prng(48 * 1024, `conc-${s}`), o)] });
  // a, b and p share base+mid; c shares only base
  const specs = [
    { repo: 'conc/a:1', layers: [base, mid, own('a')] },
    { repo: 'conc/b:1', layers: [base, mid, own('b')] },
    { repo: 'conc/c:1', layers: [base, own('c'), own('c2')] },
    { repo: 'conc/p:1', layers: [base, mid, own('p')] },
  ];
  for (const s of specs) {
    const img = await rig.buildAndPush(`img-${s.repo.replace(/\W/g, '')}`, s.repo, { layers: s.layers, label: s.repo });
    if (s.repo === 'conc/p:1') podmanImage = { repo: s.repo, img };
    else carrierImages.push({ repo: s.repo, img });
  }
});

const rounds: { name: string; drip: boolean; prefill: boolean }[] = [
  { name: 'straight from the registry', drip: false, prefill: false },
  { name: 'every blob dripping', drip: true, prefill: false },
  { name: 'the shared base already in the store (put there by podman)', drip: true, prefill: true },
];

const figures: { round: string; processes: number; exits: (number | null)[]; layers: number; images: number; skippedAsPresent: number; ms: number }[] = [];

describe('three Carrier pulls and a podman pull into one store at once', () => {
  rounds.forEach((round, r) => {
    it(`all succeed, records stay whole (${round.name})`, async () => {
      const p = new Podman(path.join(rig.work, `s${r}`));
      const host = rig.proxy.host;
      rig.proxy.clearRules();
      if (round.prefill) {
        // a base-only image pulled by podman before the race
        const pre = await podmanAsync(p, ['pull', '-q', '--tls-verify=false', `${host}/${carrierImages[2]!.repo}`]);
        expect(pre.code, pre.stderr).toBe(0);
        const rm = await podmanAsync(p, ['rmi', `${host}/${carrierImages[2]!.repo}`]);
        expect(rm.code, rm.stderr).toBe(0);
      }
      if (round.drip) rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 8192, intervalMs: 5 }, times: Infinity });
      const env = { CARRIER_BLOB_CACHE: path.join(rig.work, `cache${r}`) }; // one blob cache shared by the three
      const started = Date.now();
      const runs = [
        ...carrierImages.map(({ repo }) => startCli(['--root', p.root, '--runroot', p.runroot, 'pull', '--tls-verify=false', `${host}/${repo}`], env).done),
        podmanAsync(p, ['pull', '-q', '--tls-verify=false', `${host}/${podmanImage.repo}`]),
      ];
      const results = await Promise.all(runs);
      const ms = Date.now() - started;
      rig.proxy.clearRules();
      results.forEach((res, i) => expect(res.code, `${i < 3 ? carrierImages[i]!.repo : 'podman'}: ${res.stderr}`).toBe(0));
      carrierImages.forEach(({ img }, i) => expect(results[i]!.stdout.trim()).toBe(img.configDigest.slice(7)));

      // layers.json: every id once, none incomplete, each with its parent recorded before it is needed
      const layers = readLayers(p.root);
      const ids = layers.map((l) => l.id);
      expect(new Set(ids).size, `duplicate layer ids in ${JSON.stringify(ids)}`).toBe(ids.length);
      expect(layers.filter((l) => l.flags?.incomplete === true)).toEqual([]);
      for (const l of layers) if (l.parent !== undefined) expect(ids, `parent of ${l.id}`).toContain(l.parent);
      // 4 images of 3 layers sharing base (+mid for a, b, p): base, mid, a, b, p, c, c2 = 7 layers
      expect(ids).toHaveLength(7);

      // images.json: each image once, with exactly its name
      const all = [...carrierImages, podmanImage];
      const recs = readImages(p.root);
      expect(recs.map((i) => i.id).sort()).toEqual(all.map(({ img }) => img.configDigest.slice(7)).sort());
      for (const { repo, img } of all) {
        const rec = recs.filter((x) => x.id === img.configDigest.slice(7));
        expect(rec).toHaveLength(1);
        expect(rec[0]!.names).toEqual([`${host}/${repo}`]);
      }

      // podman and Carrier list the same images with the same names
      const mine = await runCli(['--root', p.root, '--runroot', p.runroot, 'images', '--format', 'json']);
      expect(mine.code, mine.stderr).toBe(0);
      const ours = (JSON.parse(mine.stdout) as { Id: string; Names?: string[] }[]).map((x) => `${x.Id} ${(x.Names ?? []).join(',')}`).sort();
      const theirs = podmanImageList(p).map((x) => `${x.Id} ${(x.Names ?? []).join(',')}`).sort();
      expect(ours).toEqual(theirs);
      expect(ours).toHaveLength(4);

      // every layer of every image rebuilds to its diff digest (podman's layers included)
      const store = await Store.open({ root: p.root, runroot: p.runroot });
      try {
        for (const { repo, img } of all) {
          const chain = await exportChain(store, `${host}/${repo}`);
          expect(chain.map((c) => c.exported), repo).toEqual(img.diffIDs);
          expect(chain.map((c) => c.recorded), repo).toEqual(img.diffIDs);
        }
      } finally {
        await store.close();
      }
      // how many layers a Carrier pull found already written by one of the others (it waited, then skipped them)
      const skippedAsPresent = results.slice(0, 3).reduce((n, x) => n + (x.stderr.match(/skipped: already exists/g)?.length ?? 0), 0);
      figures.push({ round: round.name, processes: 4, exits: results.map((x) => x.code), layers: ids.length, images: recs.length, skippedAsPresent, ms });
      if (r === rounds.length - 1) console.log(`concurrency summary ${JSON.stringify(figures)}`);
    }, 90_000);
  });
});

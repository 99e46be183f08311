// planPartial against an in-memory blob: the layer's tar rebuilt from its tar-split, with files taken from local
// copies and the rest fetched by range (merged, in batches, a large file in pieces), is the original tar byte for byte;
// fetching whole is chosen when little of the layer is local. storeFiles hashes only the store files a pull could use.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it, expect, afterAll } from 'vitest';
import { compressChunked } from '../src/chunked/compress.js';
import { planPartial, type PartialLayer, type RangedLayer } from '../src/chunked/partial.js';
import { applyLayer, type AppliedLayer, type RebuiltTar } from '../src/layer/apply.js';
import { assembleLayer } from '../src/layer/assemble.js';
import { CarrierError } from '../src/errors.js';
import type { ByteRange } from '../src/registry/ranges.js';
import { Store } from '../src/index.js';
import { claimedIndex, hashLayerFiles, storeFiles, writeFileIndex, type IndexedFile, type LocalFile } from '../src/chunked/file-index.js';
import { buildTestImage } from './support/images.js';
import { commitOf } from './support/store.js';
import * as H from './support/hostile.js';
import { tempDir, prng, run } from './support/fixtures.js';

const work = tempDir('chunked-partial');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const zstd = (b: Buffer): Buffer => run('zstd', ['-q', '-c'], { input: b });
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function chunkedLayer(tar: Buffer): Promise<{ layer: RangedLayer; requests: ByteRange[][] }> {
  const { stream, result } = compressChunked(Readable.from([tar]));
  const blob = await readAll(stream);
  const r = await result;
  const requests: ByteRange[][] = [];
  const layer: RangedLayer = {
    digest: r.digest,
    size: blob.length,
    annotations: r.annotations,
    fetchRanges: async (ranges) => {
      requests.push([...ranges]);
      const parts = ranges.map((x) => blob.subarray(x.offset, x.offset + x.length));
      return { parts, received: parts.reduce((n, p) => n + p.length, 0), requests: 1 };
    },
  };
  return { layer, requests };
}

describe('planPartial', () => {
  // These fetch from memory, which no cost model would fetch partially from: a slow link is given, so the partial
  // path is the one tested (test/chunked-fetch-cost.test.ts tests the decision).
  const slow = { link: { rttSeconds: 0.001, bytesPerSecond: 1e6 } };
  const files = Array.from({ length: 12 }, (_, i) => ({ name: `d/f${i}`, content: prng(20_000 + i, `pp${i}`) }));
  const big = { name: 'd/big', content: prng(300_000, 'pp-big') };
  const tar = H.tar(H.dir('d'), ...files.map((f) => H.file(f.name, f.content)), H.file(big.name, big.content), H.symlink('d/l', 'f0'));
  let n = 0;
  /** Applies a plan's tar (rebuilt by the native apply) into a fresh directory, requiring the tar's digest. */
  const apply = (plan: PartialLayer, options: { signal?: AbortSignal } = {}): Promise<AppliedLayer> => {
    const dir = path.join(work, `apply-${n++}`);
    fs.mkdirSync(dir);
    return applyLayer(plan.tar, dir, { expectedDiffID: sha(tar), rootless: true, tarSplit: `${dir}.tar-split.gz`, ...options });
  };
  const localCopies = (list: { name: string; content: Buffer }[], extra: Partial<{ claimed: boolean }> = {}): Map<string, LocalFile> => {
    const local = new Map<string, LocalFile>();
    for (const f of list) {
      const p = path.join(work, `${f.name.replace('/', '_')}-${n++}`);
      fs.writeFileSync(p, f.content);
      local.set(sha(f.content), { path: p, size: f.content.length, ...extra });
    }
    return local;
  };

  it('rebuilds the tar byte for byte from local files and ranged fetches, a large file in pieces', async () => {
    const { layer, requests } = await chunkedLayer(tar);
    const plan = await planPartial(layer, localCopies(files.slice(0, 10)), { ...slow, batchBytes: 64 << 10 });
    expect(plan).toBeDefined();
    expect(plan!.files.map((f) => f.name).sort()).toEqual([...files.map((f) => f.name), big.name].sort());
    const applied = await apply(plan!);
    expect(applied.diffDigest).toBe(sha(tar));
    expect(applied.diffSize).toBe(tar.length);
    expect(fs.readFileSync(path.join(work, `apply-${n - 1}`, big.name)).equals(big.content)).toBe(true);
    // The tar-split it records rebuilds the same tar from the tree.
    expect((await readAll(assembleLayer(`${path.join(work, `apply-${n - 1}`)}.tar-split.gz`, path.join(work, `apply-${n - 1}`)))).equals(tar)).toBe(true);
    // TOC and tar-split in one request; then f10 and f11 merged; then the big file in pieces of at most 64 KiB.
    expect(requests[0]!.length).toBe(2);
    const content = requests.slice(1).flat();
    expect(content.every((r) => r.length <= 64 << 10)).toBe(true);
    expect(content.reduce((n, r) => n + r.length, 0)).toBeLessThanOrEqual(plan!.toFetch);
    expect(plan!.clones.size).toBe(0); // all local files are under the reflink threshold
  });

  it('chooses a whole fetch when the store has too little of the layer', async () => {
    const { layer } = await chunkedLayer(tar);
    expect(await planPartial(layer, new Map())).toBeUndefined();
  });

  it('refuses a local file that does not hold what the index says, leaving the directory empty', async () => {
    const { layer } = await chunkedLayer(tar);
    const local = localCopies(files);
    local.set(sha(big.content), localCopies([{ name: 'liar', content: Buffer.alloc(big.content.length) }]).values().next().value!);
    const plan = await planPartial(layer, local, slow);
    await expect(apply(plan!)).rejects.toMatchObject({ code: 'CARRIER_DIGEST_MISMATCH', message: expect.stringContaining("'d/big' read from the store") });
    expect(fs.readdirSync(path.join(work, `apply-${n - 1}`))).toEqual([]);
  });

  it('says the index is stale (so the pull fetches whole) when a file known only by a claim does not hold it', async () => {
    const { layer } = await chunkedLayer(tar);
    const local = localCopies(files);
    local.set(sha(big.content), localCopies([{ name: 'claim-liar', content: Buffer.alloc(big.content.length) }], { claimed: true }).values().next().value!);
    const plan = await planPartial(layer, local, slow);
    await expect(apply(plan!)).rejects.toMatchObject({ code: 'CARRIER_STALE_INDEX' });
  });

  it('refuses a store file that grew, shrank or became a symlink, and reports one gone meanwhile as ENOENT (fetched whole)', async () => {
    const { layer } = await chunkedLayer(tar);
    for (const [change, code] of [
      [(p: string) => fs.appendFileSync(p, 'x'), 'CARRIER_DIGEST_MISMATCH'],
      [(p: string) => fs.truncateSync(p, 10), 'CARRIER_DIGEST_MISMATCH'],
      [(p: string) => (fs.rmSync(p), fs.symlinkSync(path.join(work, 'elsewhere'), p)), 'CARRIER_DIGEST_MISMATCH'],
      [(p: string) => fs.rmSync(p), 'ENOENT'],
    ] as const) {
      const local = localCopies([...files, big]);
      const plan = await planPartial(layer, local, slow);
      change(local.get(sha(files[3]!.content))!.path);
      await expect(apply(plan!)).rejects.toMatchObject({ code });
    }
  });

  it('refuses fetched frames that decode to other content, to more than the TOC says, or are not zstd', async () => {
    const { layer } = await chunkedLayer(tar);
    const plan = await planPartial(layer, localCopies([...files.slice(0, 11), big]), slow); // f11 is fetched
    const f11 = files[11]!.content;
    const hostile: [Buffer[], string][] = [
      [[zstd(Buffer.from(f11).fill(7, 0, 10))], 'CARRIER_DIGEST_MISMATCH'],
      [[zstd(Buffer.concat([f11, Buffer.from('more')]))], 'CARRIER_BAD_TOC'],
      [[zstd(f11), zstd(Buffer.from('another frame'))], 'CARRIER_BAD_TOC'],
      [[zstd(f11).subarray(0, 5000)], 'CARRIER_DIGEST_MISMATCH'],
      [[Buffer.from('not zstd at all, not zstd at all')], 'CARRIER_DIGEST_MISMATCH'],
      [[], 'CARRIER_DIGEST_MISMATCH'],
    ];
    for (const [frames, code] of hostile) {
      const remote: RebuiltTar['remote'] = async (write) => {
        for (const f of frames) await write(f);
      };
      await expect(apply({ ...plan!, tar: { plan: plan!.tar.plan, remote } })).rejects.toMatchObject({ code });
      expect(fs.readdirSync(path.join(work, `apply-${n - 1}`))).toEqual([]);
    }
  });

  it('stops on an abort while a fetch hangs, and aborts that fetch', async () => {
    const { layer } = await chunkedLayer(tar);
    let fetchSignal: AbortSignal | undefined;
    const hanging: RangedLayer = {
      ...layer,
      fetchRanges: (ranges, o) => {
        if (ranges.length === 2) return layer.fetchRanges!(ranges, o);
        fetchSignal = o?.signal;
        return new Promise((_, reject) => o?.signal?.addEventListener('abort', () => reject(new Error('fetch aborted'))));
      },
    };
    const plan = await planPartial(hanging, localCopies(files.slice(0, 11)), slow);
    const ac = new AbortController();
    const applying = apply(plan!, { signal: ac.signal });
    while (!fetchSignal) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await expect(applying).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(fetchSignal.aborted).toBe(true);
    expect(fs.readdirSync(path.join(work, `apply-${n - 1}`))).toEqual([]);
  });

  it('fails with the fetch error when a ranged fetch fails (a transport failure: the pull fetches whole)', async () => {
    const { layer } = await chunkedLayer(tar);
    const failing: RangedLayer = {
      ...layer,
      fetchRanges: async (ranges, o) => {
        if (ranges.length === 2) return layer.fetchRanges!(ranges, o);
        throw new CarrierError('CARRIER_REGISTRY_ERROR', 'the registry went away');
      },
    };
    const plan = await planPartial(failing, localCopies(files.slice(0, 11)), slow);
    await expect(apply(plan!)).rejects.toMatchObject({ code: 'CARRIER_REGISTRY_ERROR' });
  });
});

describe('storeFiles', () => {
  it('hashes only the store files of the sizes wanted, and keeps the rest of its per-layer index for later', async () => {
    const a = prng(5000, 'sf-a');
    const b = prng(7000, 'sf-b');
    const img = buildTestImage(path.join(work, 'sf-img'), { layers: [{ compression: 'gzip', entries: [H.dir('x'), H.file('x/a', a), H.file('x/b', b)] }] });
    const store = await Store.open({ root: path.join(work, 'sf', 'root'), runroot: path.join(work, 'sf', 'run'), driver: 'vfs' });
    try {
      await store.commitImage(commitOf(img));
      const [layer] = await store.layers();
      const indexFile = store.layerTarSplitPath(layer!.id).replace(/\.tar-split\.gz$/, '.files.json');
      const first = await storeFiles(store, { sizes: new Set([5000]), digests: new Set() });
      expect([...first.keys()]).toEqual([sha(a)]);
      expect(JSON.parse(fs.readFileSync(indexFile, 'utf8')).files).toEqual([
        ['x/a', 5000, sha(a)],
        ['x/b', 7000, null],
      ]);
      const second = await storeFiles(store, { sizes: new Set([7000]), digests: new Set() });
      expect([...second.keys()].sort()).toEqual([sha(a), sha(b)].sort());
    } finally {
      await store.close();
    }
  });

  it('takes a claimed digest (a TOC of a layer pulled whole) without hashing, and hashes no file whose claim is not wanted', async () => {
    const a = prng(5000, 'cl-a');
    const b = prng(5000, 'cl-b');
    const img = buildTestImage(path.join(work, 'cl-img'), { layers: [{ compression: 'gzip', entries: [H.dir('x'), H.file('x/a', a), H.file('x/b', b)] }] });
    const store = await Store.open({ root: path.join(work, 'cl', 'root'), runroot: path.join(work, 'cl', 'run'), driver: 'vfs' });
    try {
      await store.commitImage(commitOf(img));
      const [layer] = await store.layers();
      await writeFileIndex(store, layer!.id, claimedIndex([{ name: 'x/a', size: 5000, digest: sha(a) }, { name: 'x/b', size: 5000, digest: sha(b) }]));
      const indexFile = store.layerTarSplitPath(layer!.id).replace(/\.tar-split\.gz$/, '.files.json');
      const got = await storeFiles(store, { sizes: new Set([5000]), digests: new Set([sha(a)]) });
      expect([...got.entries()]).toEqual([[sha(a), { path: path.join(store.layerDiffPath(layer!.id), 'x', 'a'), size: 5000, claimed: true }]]);
      // Nothing was hashed: both files still carry their claims only.
      expect(JSON.parse(fs.readFileSync(indexFile, 'utf8')).files).toEqual([
        ['x/a', 5000, null, sha(a)],
        ['x/b', 5000, null, sha(b)],
      ]);
    } finally {
      await store.close();
    }
  });
});

describe('hashLayerFiles', () => {
  it('hashes regular files inside the layer on native threads, and never one reached through a symlink or of another size', async () => {
    const layer = path.join(work, 'hl-layer');
    const outside = path.join(work, 'hl-outside');
    fs.mkdirSync(path.join(layer, 'etc'), { recursive: true });
    fs.mkdirSync(outside, { recursive: true });
    const secret = prng(3000, 'hl-secret');
    fs.writeFileSync(path.join(outside, 'secret'), secret);
    const mine = prng(3000, 'hl-mine');
    fs.writeFileSync(path.join(layer, 'etc', 'mine'), mine);
    fs.symlinkSync(path.join(outside, 'secret'), path.join(layer, 'etc', 'link'));
    fs.symlinkSync(outside, path.join(layer, 'out'));
    const files: IndexedFile[] = [
      { name: 'etc/mine', size: 3000, digest: null },
      { name: './etc/mine', size: 2999, digest: null },
      { name: 'etc/link', size: 3000, digest: null },
      { name: 'out/secret', size: 3000, digest: null },
      { name: '../hl-outside/secret', size: 3000, digest: null },
      { name: 'etc/missing', size: 3000, digest: null },
    ];
    await hashLayerFiles(layer, files);
    expect(files.map((f) => f.digest)).toEqual([sha(mine), '', '', '', '', '']);
  });
});

describe('planPartial deciding from the TOC alone', () => {
  const files = Array.from({ length: 8 }, (_, i) => ({ name: `t/f${i}`, content: prng(30_000 + i, `toc${i}`) }));
  const tar = H.tar(H.dir('t'), ...files.map((f) => H.file(f.name, f.content)));

  /** The layer with one byte of its tar-split flipped as it is fetched (it then fails the TOC's tarSplitDigest). */
  async function damagedSplit(): Promise<{ layer: RangedLayer; requests: ByteRange[][] }> {
    const { layer, requests } = await chunkedLayer(tar);
    const [offset] = layer.annotations!['io.github.containers.zstd-chunked.tarsplit-position']!.split(':').map(Number);
    const fetchRanges: RangedLayer['fetchRanges'] = async (ranges, o) => {
      const got = await layer.fetchRanges!(ranges, o);
      const i = ranges.findIndex((r) => r.offset === offset);
      if (i < 0) return got;
      const parts = [...got.parts];
      parts[i] = Buffer.from(parts[i]!);
      parts[i]![parts[i]!.length >> 1]! ^= 0xff;
      return { ...got, parts };
    };
    return { layer: { ...layer, fetchRanges }, requests };
  }

  it('never reads the tar-split of a layer it fetches whole, and checks it before planning a partial pull', async () => {
    const { layer, requests } = await damagedSplit();
    const slow = { link: { rttSeconds: 0.001, bytesPerSecond: 1e6 } };
    expect(await planPartial(layer, new Map(), slow)).toBeUndefined();
    expect(requests.length).toBe(1); // the TOC and tar-split, fetched together
    const local = new Map<string, { path: string; size: number }>();
    for (const f of files.slice(0, 6)) {
      const p = path.join(work, `toc-${f.name.replace('/', '_')}`);
      fs.writeFileSync(p, f.content);
      local.set(sha(f.content), { path: p, size: f.content.length });
    }
    await expect(planPartial(layer, local, slow)).rejects.toMatchObject({ code: 'CARRIER_BAD_TOC' });
    expect(requests.length).toBe(2); // nothing fetched for the files
  });
});

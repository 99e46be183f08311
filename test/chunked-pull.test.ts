// zstd:chunked end to end against the real CNCF registry: Carrier pushes v1 and v2 of an image (differing in one file)
// as zstd:chunked; with v1 in the store, pulling v2 fetches (counted at a relay) a small share of v2's layer by HTTP
// range, and makes the same image, layer ids and exported tars as a full pull; podman pulls what Carrier pushed with
// the same image id; TOCs and tar-splits that lie are refused and leave the store as it was.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it, expect, afterAll } from 'vitest';
import { Store, commit, createContainer, mountContainer, pull, push, unmountContainer, type PullEvent } from '../src/index.js';
import { storedImage } from './support/registry.js';
import { Podman, sha256, type TestImage } from './support/images.js';
import { snapshot } from './support/store.js';
import { requireCli, runCli } from './support/reliability.js';
import { withLoopFs, usage } from './support/loopfs.js';
import * as H from './support/hostile.js';
import { prng } from './support/fixtures.js';
import { TAR_SPLIT_POSITION, TOC_CHECKSUM, TOC_POSITION, chunkedLocation } from '../src/chunked/annotations.js';
import { registryRig } from './support/registry-rig.js';

let relay: Relay;
let v1: TestImage;
let v2: TestImage;
/** v2 as Carrier pushed it: its manifest, and its one layer blob. */
let v2c: { digest: string; manifest: Buffer; layer: { digest: string; size: number; blob: Buffer; annotations: Record<string, string> } };

/** A relay in front of the registry that counts the response body bytes of every request, by path. */
interface Relay {
  host: string;
  bytes: Map<string, number>;
  ranges: string[];
  /** Answer 400 to every request for a single range (a proxy that refuses ranges it does not cache). */
  refuseSingleRanges: boolean;
  stop(): Promise<void>;
}

async function startRelay(upstream: URL): Promise<Relay> {
  const bytes = new Map<string, number>();
  const ranges: string[] = [];
  const relay: Relay = {
    host: '',
    bytes,
    ranges,
    refuseSingleRanges: false,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    if (req.headers.range) ranges.push(req.headers.range);
    if (relay.refuseSingleRanges && req.headers.range && !req.headers.range.includes(',')) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNSUPPORTED","message":"ranges refused"}]}');
      return;
    }
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.on('data', (c: Buffer) => bytes.set(req.url ?? '', (bytes.get(req.url ?? '') ?? 0) + c.length));
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  relay.host = `127.0.0.1:${port}`;
  return relay;
}

function fetchedOf(r: Relay, digest: string): number {
  let n = 0;
  for (const [p, b] of r.bytes) if (p.includes(`/blobs/${digest}`)) n += b;
  return n;
}

let n = 0;
async function newStore(): Promise<Store> {
  const dir = path.join(rig.work, `store-${n++}`);
  return Store.open({ root: path.join(dir, 'root'), runroot: path.join(dir, 'run'), driver: 'vfs' });
}

/** Forty 96 KiB files of noise, and `changed` as the content of app/f07. */
function appLayer(changed: string): Buffer[] {
  const entries = [H.dir('app')];
  for (let i = 0; i < 40; i++) {
    const name = `app/f${String(i).padStart(2, '0')}`;
    entries.push(H.file(name, i === 7 ? Buffer.concat([prng(96 << 10, 'f07'), Buffer.from(changed)]) : prng(96 << 10, name)));
  }
  return entries;
}

async function readStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The image's layers as exported tars, base first. */
async function exportedLayers(store: Store, id: string): Promise<Buffer[]> {
  const layers = await store.layers();
  const img = (await store.images()).find((i) => i.id === id)!;
  const out: Buffer[] = [];
  for (let l = layers.find((x) => x.id === img.topLayer); l; l = layers.find((x) => x.id === l!.parent)) out.unshift(await readStream(await store.exportLayer(l.id)));
  return out;
}

async function putBlob(repo: string, blob: Buffer): Promise<string> {
  const digest = sha256(blob);
  const start = await fetch(`${rig.reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  const loc = new URL(start.headers.get('location')!, rig.reg.url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`blob upload: ${put.status}`);
  return digest;
}

/** Pushes v2's config with one zstd:chunked layer `blob` (annotated) as repo:tag. */
async function pushChunked(repo: string, tag: string, blob: Buffer, annotations: Record<string, string>): Promise<void> {
  const layerDigest = await putBlob(repo, blob);
  const configDigest = await putBlob(repo, v2.config);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: v2.config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: layerDigest, size: blob.length, annotations }],
  };
  const res = await fetch(`${rig.reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: JSON.stringify(manifest),
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status !== 201) throw new Error(`manifest put: ${res.status} ${await res.text()}`);
}

const zstdc = (b: Buffer): Buffer => execFileSync('zstd', ['-q', '-c', '-3'], { input: b, maxBuffer: 1 << 30 });
const zstdd = (b: Buffer): Buffer => execFileSync('zstd', ['-q', '-d', '-c'], { input: b, maxBuffer: 1 << 30 });
function skippable(payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a50, 0);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

interface Toc {
  version: number;
  entries: { type: string; name: string; size?: number; digest?: string; offset?: number; endOffset?: number }[];
  tarSplitDigest: string;
}

/**
 * v2's Carrier-pushed blob rebuilt with its TOC and tar-split (uncompressed JSON lines) changed by `edit`: the data
 * frames as they were, new skippable frames, footer and annotations that describe them truthfully.
 */
function rebuiltBlob(edit: (toc: Toc, split: string[]) => { toc: Toc; split: string[]; keepSplitDigest?: boolean }): { blob: Buffer; annotations: Record<string, string> } {
  const { blob, annotations, size, digest } = v2c.layer;
  const where = chunkedLocation(annotations, size, digest)!;
  const toc = JSON.parse(zstdd(blob.subarray(where.toc.offset, where.toc.offset + where.toc.length)).toString()) as Toc;
  const split = zstdd(blob.subarray(where.tarSplit!.offset, where.tarSplit!.offset + where.tarSplit!.length)).toString().split('\n').filter((l) => l !== '');
  const changed = edit(toc, split);
  const data = blob.subarray(0, Math.min(where.toc.offset, where.tarSplit!.offset) - 8);
  const splitRaw = Buffer.from(changed.split.map((l) => l + '\n').join(''));
  const splitZ = zstdc(splitRaw);
  if (!changed.keepSplitDigest) changed.toc.tarSplitDigest = sha256(splitZ);
  const tocRaw = Buffer.from(JSON.stringify(changed.toc));
  const tocZ = zstdc(tocRaw);
  const tocOffset = data.length + 8;
  const splitOffset = tocOffset + tocZ.length + 8;
  const footer = Buffer.alloc(64);
  [tocOffset, tocZ.length, tocRaw.length, 1, splitOffset, splitZ.length, splitRaw.length].forEach((v, i) => footer.writeBigUInt64LE(BigInt(v), i * 8));
  footer.write('GNUlInUx', 56, 'latin1');
  return {
    blob: Buffer.concat([data, skippable(tocZ), skippable(splitZ), skippable(footer)]),
    annotations: {
      [TOC_CHECKSUM]: sha256(tocZ),
      [TOC_POSITION]: `${tocOffset}:${tocZ.length}:${tocRaw.length}:1`,
      [TAR_SPLIT_POSITION]: `${splitOffset}:${splitZ.length}:${splitRaw.length}`,
    },
  };
}

const rig = registryRig('chunked-pull', {}, async () => {
  relay = await startRelay(new URL(rig.reg.url));
  v1 = rig.build('v1', { label: 'app', layers: [{ compression: 'gzip', entries: appLayer('one') }] });
  v2 = rig.build('v2', { label: 'app', layers: [{ compression: 'gzip', entries: appLayer('two') }] });
  await rig.push(v1, 'src/app:v1');
  await rig.push(v2, 'src/app:v2');
  const staging = await newStore();
  try {
    for (const tag of ['v1', 'v2']) {
      await pull(staging, `${rig.reg.host}/src/app:${tag}`, { tlsVerify: false });
      await push(staging, `${rig.reg.host}/src/app:${tag}`, `${rig.reg.host}/chunked/app:${tag}`, { tlsVerify: false, compressionFormat: 'zstd:chunked' });
    }
  } finally {
    await staging.close();
  }
  const got = await storedImage(rig.reg, 'chunked/app', 'v2');
  const doc = JSON.parse(got.manifest.toString()) as { layers: { digest: string; size: number; mediaType: string; annotations: Record<string, string> }[] };
  v2c = { digest: got.digest, manifest: got.manifest, layer: { ...doc.layers[0]!, blob: got.layers[0]!.blob } };
});

afterAll(async () => {
  await relay?.stop();
});

describe('zstd:chunked push', () => {
  it('writes zstd layers annotated with their TOC and tar-split, which podman pulls to the same image id', () => {
    const doc = JSON.parse(v2c.manifest.toString()) as { layers: { mediaType: string; annotations?: Record<string, string> }[] };
    expect(doc.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(Object.keys(doc.layers[0]!.annotations ?? {}).sort()).toEqual([TOC_CHECKSUM, TOC_POSITION, TAR_SPLIT_POSITION].sort());
    expect(zstdd(v2c.layer.blob).equals(v2.layers[0]!.tar)).toBe(true);
    const podman = new Podman(path.join(rig.work, 'podman'), 'vfs');
    podman.run(['pull', '-q', '--tls-verify=false', `${rig.reg.host}/chunked/app:v2`]);
    expect(podman.inspect(`${rig.reg.host}/chunked/app:v2`).Id).toBe(v2.configDigest.slice(7));
  });
});

describe('zstd:chunked commit', () => {
  it('commits a container layer as zstd:chunked, which push keeps as it is and podman pulls to the same image id', async () => {
    const store = await newStore();
    try {
      await pull(store, `${rig.reg.host}/chunked/app:v1`, { tlsVerify: false });
      const c = await createContainer(store, `${rig.reg.host}/chunked/app:v1`);
      fs.writeFileSync(path.join(await mountContainer(store, c.id), 'added'), prng(200_000, 'added'));
      await unmountContainer(store, c.id);
      const r = await commit(store, c.id, 'localhost/committed:1', { compression: 'zstd:chunked' });
      const stored = JSON.parse((await store.imageBigData(r.id, 'manifest')).toString()) as { layers: { mediaType: string; annotations?: Record<string, string> }[] };
      expect(stored.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd']);
      for (const l of stored.layers) expect(Object.keys(l.annotations ?? {})).toContain(TAR_SPLIT_POSITION);
      const pushed = await push(store, 'localhost/committed:1', `${rig.reg.host}/chunked/committed:1`, { tlsVerify: false });
      expect(pushed.manifestReused).toBe(true);
      const podman = new Podman(path.join(rig.work, `pc${n++}`), 'vfs');
      podman.run(['pull', '-q', '--tls-verify=false', `${rig.reg.host}/chunked/committed:1`]);
      expect(podman.inspect(`${rig.reg.host}/chunked/committed:1`).Id).toBe(r.id);
    } finally {
      await store.close();
    }
  });
});

describe('zstd:chunked partial pull', () => {
  it('with v1 in the store, pulls v2 fetching at most 10% of its layer, and makes what a full pull makes', async () => {
    const partial = await newStore();
    const full = await newStore();
    try {
      await pull(partial, `${relay.host}/chunked/app:v1`, { tlsVerify: false, blobCache: false });
      relay.bytes.clear();
      relay.ranges.length = 0;
      const events: PullEvent[] = [];
      const r = await pull(partial, `${relay.host}/chunked/app:v2`, { tlsVerify: false, blobCache: false, onProgress: (e) => events.push(e) });
      const fetched = fetchedOf(relay, v2c.layer.digest);
      expect(fetched).toBeGreaterThan(0);
      expect(fetched).toBeLessThanOrEqual(0.1 * v2c.layer.size);
      expect(relay.ranges.some((x) => x.includes(','))).toBe(true); // the TOC and tar-split in one multi-range request
      const p = events.find((e): e is Extract<PullEvent, { type: 'partial' }> => e.type === 'partial');
      expect(p?.digest).toBe(v2c.layer.digest);
      expect(p!.skipped).toBeGreaterThan(p!.toFetch);

      const f = await pull(full, `${rig.reg.host}/chunked/app:v2`, { tlsVerify: false, blobCache: false, partial: 'never' });
      expect(r.id).toBe(v2.configDigest.slice(7));
      expect(f.id).toBe(r.id);
      const ids = async (s: Store): Promise<string[]> => (await s.layers()).map((l) => l.id).sort();
      expect(await ids(partial)).toEqual(expect.arrayContaining(await ids(full)));
      const a = await exportedLayers(partial, r.id);
      const b = await exportedLayers(full, f.id);
      expect(a.length).toBe(1);
      expect(a[0]!.equals(b[0]!)).toBe(true);
      expect(sha256(a[0]!)).toBe(v2.diffIDs[0]);
    } finally {
      await partial.close();
      await full.close();
    }
  });

  it('on a filesystem that clones, makes the files it takes from the store reflinks of them (no new data blocks)', async () => {
    await withLoopFs('xfs', 512, async (mnt) => {
      const store = await Store.open({ root: path.join(mnt, 'root'), runroot: path.join(rig.work, `xfs-run-${n++}`), driver: 'vfs' });
      try {
        await pull(store, `${rig.reg.host}/chunked/app:v1`, { tlsVerify: false, blobCache: false });
        const before = usage(mnt).used;
        const r = await pull(store, `${rig.reg.host}/chunked/app:v2`, { tlsVerify: false, blobCache: false });
        const grown = usage(mnt).used - before;
        expect(grown).toBeLessThan(0.25 * v2.layers[0]!.tar.length);
        const [tar] = await exportedLayers(store, r.id);
        expect(sha256(tar!)).toBe(v2.diffIDs[0]);
      } finally {
        await store.close();
      }
    });
  });

  it('carrier pull --partial: auto says what it fetches and skips; a value other than auto or never is a usage error', async () => {
    requireCli();
    const dir = path.join(rig.work, `cli-${n++}`);
    const g = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs'];
    const first = await runCli([...g, 'pull', '--tls-verify=false', `${rig.reg.host}/chunked/app:v1`]);
    expect(first.code, first.stderr).toBe(0);
    const second = await runCli([...g, 'pull', '--tls-verify=false', '--partial=auto', `${rig.reg.host}/chunked/app:v2`]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(v2.configDigest.slice(7));
    expect(second.stderr).toMatch(new RegExp(`Copying blob ${v2c.layer.digest} partially: fetching [0-9.]+[KM]?i?B, skipping [0-9.]+MiB the store has`));
    const bad = await runCli([...g, 'pull', '--tls-verify=false', '--partial=sometimes', `${rig.reg.host}/chunked/app:v2`]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('--partial must be auto or never');
  });

  it('fetches the layer whole when the registry refuses the ranges a partial pull asks for', async () => {
    const store = await newStore();
    try {
      await pull(store, `${relay.host}/chunked/app:v1`, { tlsVerify: false, blobCache: false });
      relay.bytes.clear();
      relay.refuseSingleRanges = true;
      const r = await pull(store, `${relay.host}/chunked/app:v2`, { tlsVerify: false, blobCache: false });
      expect(r.id).toBe(v2.configDigest.slice(7));
      expect(fetchedOf(relay, v2c.layer.digest)).toBeGreaterThanOrEqual(v2c.layer.size);
      const [tar] = await exportedLayers(store, r.id);
      expect(sha256(tar!)).toBe(v2.diffIDs[0]);
    } finally {
      relay.refuseSingleRanges = false;
      await store.close();
    }
  });

  it('fetches the whole blob with partial: never', async () => {
    const store = await newStore();
    try {
      await pull(store, `${relay.host}/chunked/app:v1`, { tlsVerify: false, blobCache: false });
      relay.bytes.clear();
      await pull(store, `${relay.host}/chunked/app:v2`, { tlsVerify: false, blobCache: false, partial: 'never' });
      expect(fetchedOf(relay, v2c.layer.digest)).toBe(v2c.layer.size);
    } finally {
      await store.close();
    }
  });

  it('fetches whole a layer podman 4.3 wrote as zstd:chunked (a TOC but no tar-split), with the same image id', async () => {
    // podman 4.3 compresses as zstd:chunked only what it compresses itself: an image it built. The files are v2's,
    // plus one of its own (podman's machine-wide blob-info cache would otherwise offer a blob it pushed before).
    const ctx = path.join(rig.work, 'podman43-ctx');
    fs.mkdirSync(path.join(ctx, 'app'), { recursive: true });
    for (let i = 0; i < 40; i++) {
      const name = `app/f${String(i).padStart(2, '0')}`;
      fs.writeFileSync(path.join(ctx, name), i === 7 ? Buffer.concat([prng(96 << 10, 'f07'), Buffer.from('two')]) : prng(96 << 10, name));
    }
    fs.writeFileSync(path.join(ctx, 'app', 'own'), randomBytes(64));
    fs.writeFileSync(path.join(ctx, 'Containerfile'), 'FROM scratch\nCOPY app /app\n');
    const podman = new Podman(path.join(rig.work, 'podman43'), 'vfs');
    podman.run(['build', '-q', '-t', `${rig.reg.host}/podman43/app:v2`, ctx]);
    podman.run(['push', '-q', '--tls-verify=false', '--compression-format', 'zstd:chunked', `${rig.reg.host}/podman43/app:v2`]);
    const id = podman.inspect(`${rig.reg.host}/podman43/app:v2`).Id;
    const pushed = await storedImage(rig.reg, 'podman43/app', 'v2');
    const layer = (JSON.parse(pushed.manifest.toString()) as { layers: { digest: string; size: number; annotations?: Record<string, string> }[] }).layers[0]!;
    expect(Object.keys(layer.annotations ?? {}).some((k) => k.includes('zstd-chunked.manifest-checksum'))).toBe(true);
    expect(layer.annotations?.[TAR_SPLIT_POSITION]).toBeUndefined();
    const store = await newStore();
    try {
      await pull(store, `${relay.host}/chunked/app:v1`, { tlsVerify: false, blobCache: false });
      relay.bytes.clear();
      const events: PullEvent[] = [];
      const r = await pull(store, `${relay.host}/podman43/app:v2`, { tlsVerify: false, blobCache: false, onProgress: (e) => events.push(e) });
      expect(r.id).toBe(id);
      expect(fetchedOf(relay, layer.digest)).toBe(layer.size);
      expect(events.some((e) => e.type === 'partial')).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('decides from the TOC alone: a layer the store has no file of is fetched whole, its tar-split never read, and keeps its TOC as claims', async () => {
    // v2 with a tar-split that fails its digest: a partial pull refuses it (below); a full pull never reads it, and
    // checks the layer against its diff_id instead.
    const repo = `splitless/${n++}`;
    const bad = rebuiltBlob((toc, split) => ({ toc, split: [split[0]!.replace('{', '{ '), ...split.slice(1)], keepSplitDigest: true }));
    await pushChunked(repo, 'v2', bad.blob, bad.annotations);
    const other = await rig.buildAndPush('splitless-other', `${repo}-other:1`, { label: 'other', layers: [{ compression: 'gzip', entries: [H.file('other', Buffer.from('nothing v2 has'))] }] });
    for (const first of [undefined, `${rig.reg.host}/${repo}-other:1`]) {
      const store = await newStore();
      try {
        if (first) expect((await pull(store, first, { tlsVerify: false, blobCache: false })).id).toBe(other.configDigest.slice(7));
        const r = await pull(store, `${rig.reg.host}/${repo}:v2`, { tlsVerify: false, blobCache: false });
        expect(r.id).toBe(v2.configDigest.slice(7));
        const [tar] = await exportedLayers(store, r.id);
        expect(sha256(tar!)).toBe(v2.diffIDs[0]);
        const top = (await store.images()).find((i) => i.id === r.id)!.topLayer!;
        const index = JSON.parse(fs.readFileSync(store.layerTarSplitPath(top).replace(/\.tar-split\.gz$/, '.files.json'), 'utf8')) as { files: unknown[][] };
        expect(index.files.length).toBe(40);
        expect(index.files.every((f) => f[2] === null && typeof f[3] === 'string')).toBe(true);
      } finally {
        await store.close();
      }
    }
  });

  const hostile: [string, Parameters<typeof rebuiltBlob>[0], string | string[], string?][] = [
    [
      'a TOC whose file offsets lie past the blob’s data',
      (toc, split) => {
        const e = toc.entries.find((x) => x.name.endsWith('f07'))!;
        e.endOffset = v2c.layer.size + 100;
        return { toc, split };
      },
      'CARRIER_BAD_TOC',
    ],
    [
      'a TOC whose digest for a file lies (the content fetched does not match it)',
      (toc, split) => {
        toc.entries.find((x) => x.name.endsWith('f07'))!.digest = toc.entries.find((x) => x.name.endsWith('f08'))!.digest;
        return { toc, split };
      },
      'CARRIER_DIGEST_MISMATCH',
    ],
    [
      'a TOC and tar-split that give a changed file the digest and size of a file the store has',
      (toc, split) => {
        const e = toc.entries.find((x) => x.name.endsWith('f07'))!;
        e.digest = toc.entries.find((x) => x.name.endsWith('f08'))!.digest;
        e.size = toc.entries.find((x) => x.name.endsWith('f08'))!.size;
        return { toc, split: split.map((l) => (l.includes('f07"') ? l.replace(/"size":\d+/, `"size":${e.size}`) : l)) };
      },
      ['CARRIER_DIGEST_MISMATCH', 'CARRIER_BAD_TAR'], // the tar's header still says the old size
    ],
    [
      'a TOC that names a path twice',
      (toc, split) => {
        toc.entries.push({ ...toc.entries.find((x) => x.name.endsWith('f03'))! });
        return { toc, split };
      },
      'CARRIER_BAD_TOC',
    ],
    [
      'a TOC that names a file the tar-split does not',
      (toc, split) => {
        toc.entries.push({ type: 'reg', name: './app/extra' });
        return { toc, split };
      },
      'CARRIER_BAD_TOC',
    ],
    [
      'a tar-split whose digest is not the TOC’s',
      (toc, split) => ({ toc, split: [split[0]!.replace('{', '{ '), ...split.slice(1)], keepSplitDigest: true }),
      'CARRIER_BAD_TOC',
    ],
    [
      'a tar-split that rebuilds a tar whose digest is not the config’s diff_id',
      (toc, split) => {
        // The first segment is the first header: change its mtime field (and nothing the TOC describes).
        const first = JSON.parse(split[0]!) as { payload: string };
        const raw = Buffer.from(first.payload, 'base64');
        raw[136] = raw[136] === 0x31 ? 0x32 : 0x31;
        let sum = 0;
        raw.fill(0x20, 148, 156);
        for (let i = 0; i < 512; i++) sum += raw[i]!;
        raw.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
        return { toc, split: [JSON.stringify({ ...JSON.parse(split[0]!), payload: raw.toString('base64') }), ...split.slice(1)] };
      },
      'CARRIER_DIGEST_MISMATCH',
      "the image's diff_id does not match its layer",
    ],
  ];
  for (const [what, edit, code, message] of hostile) {
    it(`refuses ${what}, leaving the store as it was`, async () => {
      const repo = `hostile/${n++}`;
      const bad = rebuiltBlob(edit);
      await pushChunked(repo, 'v2', bad.blob, bad.annotations);
      const store = await newStore();
      try {
        await pull(store, `${rig.reg.host}/chunked/app:v1`, { tlsVerify: false, blobCache: false });
        const state = (): Record<string, string> => Object.fromEntries(Object.entries(snapshot(store.graphroot)).filter(([k]) => !k.endsWith('.files.json')));
        const before = state();
        const err = await pull(store, `${rig.reg.host}/${repo}:v2`, { tlsVerify: false, blobCache: false }).then(
          () => undefined,
          (e: unknown) => e as { code?: string; message: string },
        );
        expect([code].flat(), err?.message).toContain(err?.code);
        if (message) expect(err?.message).toContain(message);
        // Only v1's index of file digests (built for the attempt) may be new.
        expect(state()).toEqual(before);
      } finally {
        await store.close();
      }
    });
  }
});

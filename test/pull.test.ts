// pull() and `carrier pull` against the real CNCF registry (Debian docker-registry on 127.0.0.1), faults through
// the in-process proxy, and podman on the same and on a twin store to compare what each records.
import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it, expect } from 'vitest';
import { Store } from '../src/store/store.js';
import { pull, type PullEvent } from '../src/pull.js';
import { RegistryClient } from '../src/registry/index.js';
import { CarrierError } from '../src/errors.js';
import { buildMultiArchLayout, type MultiArchImage } from './support/registry.js';
import { isBlobGet, isManifestGet } from './support/fault-proxy.js';
import { registryRig } from './support/registry-rig.js';
import { defaultLayers, Podman, type TestImage } from './support/images.js';
import { checkoutImage } from '../src/checkout/checkout.js';
import { findOnPath } from '../src/fs/paths.js';
import { snapshot, readJson } from './support/store.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import type { ImageRecord, LayerRecord } from '../src/store/records.js';

const execFileP = promisify(execFile);
const CLI = path.resolve(__dirname, '../dist/cli/main.js');
let imgA: TestImage;
let imgB: TestImage;
let bigImg: TestImage;
let multi: MultiArchImage;
let many: TestImage;
const BIG = 6 * 1024 * 1024 + 4321;

const rig = registryRig('pull-test', { proxy: true, resetProxy: true }, async () => {
  imgA = rig.build('a', { label: 'a' });
  const layersB = defaultLayers();
  layersB[2] = { compression: 'gzip', entries: [H.dir('b/'), H.file('b/only-in-b', 'b\n')] };
  imgB = rig.build('b', { layers: layersB, label: 'b' });
  bigImg = rig.build('big', { layers: [{ compression: 'gzip', entries: [H.file('big.bin', prng(BIG, 'pull-big'))] }] });
  multi = buildMultiArchLayout(path.join(rig.work, 'multi'), [{ architecture: 'amd64' }, { architecture: 'arm64', variant: 'v8' }]);
  many = rig.build('many', {
    layers: Array.from({ length: 130 }, (_, i) => ({ compression: 'gzip' as const, entries: [H.file(`layer-${String(i).padStart(3, '0')}`, `${i}\n`)] })),
  });
  // skopeo may reuse blobs it pushed before (its blob-info cache), so the compressed variants use their own content;
  // the comparisons below read what the registry really holds through both Carrier and podman.
  const zstdImg = rig.build('z', { label: 'zstd', layers: defaultLayers('z') });
  const plainImg = rig.build('p', { label: 'plain', layers: defaultLayers('p') });
  const v2Img = rig.build('v', { label: 'v2s2', layers: defaultLayers('v') });
  await rig.push(imgA, 'lib/a:1');
  await rig.push(imgB, 'lib/b:1');
  await rig.push(zstdImg, 'lib/a-zstd:1', { compress: 'zstd' });
  await rig.push(plainImg, 'lib/a-plain:1', { compress: 'none' });
  await rig.push(v2Img, 'lib/a-v2s2:1', { format: 'v2s2', compress: 'gzip' });
  await rig.push(bigImg, 'lib/big:1');
  await rig.push(multi, 'lib/multi:1', { multiArch: true });
  await rig.push(many, 'lib/many:1');
});

let n = 0;
/** A store on a short path (podman refuses runroots longer than 50 characters) with a podman view of it. */
function newStore(): { podman: Podman; open: () => Promise<Store>; cache: string } {
  const dir = path.join(rig.work, `s${n++}`);
  const podman = new Podman(dir);
  const cache = path.join(dir, 'cache');
  return { podman, cache, open: () => Store.open({ root: podman.root, runroot: podman.runroot }) };
}

const opts = (cache: string, extra: Partial<Parameters<typeof pull>[2]> = {}) => ({ tlsVerify: false, blobCacheDir: cache, ...extra });


/** A layer record without the fields that differ run to run. */
function stable(l: LayerRecord): Record<string, unknown> {
  const { created: _c, ...rest } = l;
  return rest;
}

describe('pull into a store podman shares', () => {
  it('records layers and the image exactly as podman pull does, for gzip, zstd, plain and Docker schema 2', async () => {
    for (const repo of ['lib/a:1', 'lib/a-zstd:1', 'lib/a-plain:1', 'lib/a-v2s2:1']) {
      const ours = newStore();
      const twin = newStore();
      const store = await ours.open();
      const result = await pull(store, `${rig.reg.host}/${repo}`, opts(ours.cache));
      await store.close();
      twin.podman.run(['pull', '-q', '--tls-verify=false', `${rig.reg.host}/${repo}`]);
      const mine = readJson<LayerRecord[]>(path.join(ours.podman.root, 'overlay-layers/layers.json')).map(stable);
      const theirs = readJson<LayerRecord[]>(path.join(twin.podman.root, 'overlay-layers/layers.json')).map(stable);
      expect(mine.sort((x, y) => String(x.id).localeCompare(String(y.id))), repo).toEqual(theirs.sort((x, y) => String(x.id).localeCompare(String(y.id))));
      const [mi] = readJson<ImageRecord[]>(path.join(ours.podman.root, 'overlay-images/images.json'));
      const [ti] = readJson<ImageRecord[]>(path.join(twin.podman.root, 'overlay-images/images.json'));
      const noSig = (names: string[] | undefined) => (names ?? []).filter((k) => !k.startsWith('signature-'));
      expect({ id: mi!.id, digest: mi!.digest, names: mi!.names, layer: mi!.layer, bd: noSig(mi!['big-data-names']) }, repo).toEqual({
        id: ti!.id,
        digest: ti!.digest,
        names: ti!.names,
        layer: ti!.layer,
        bd: noSig(ti!['big-data-names']),
      });
      // and podman reads ours: same id, names and digest as `podman images --digests` shows
      expect(ours.podman.images()).toEqual([expect.objectContaining({ Id: result.id, Names: [`${rig.reg.host}/${repo}`], Digest: mi!.digest })]);
    }
  }, 120_000);

  it('chooses this machine\'s platform from an index (or the one asked for) and records the index as podman does', async () => {
    const s = newStore();
    const store = await s.open();
    const amd = await pull(store, `${rig.reg.host}/lib/multi:1`, opts(s.cache));
    const want = multi.images.find((i) => i.platform.architecture === 'amd64')!.image;
    expect(amd.id).toBe(want.configDigest.slice(7));
    expect(amd.digest).toBe(multi.indexDigest);
    const rec = readJson<ImageRecord[]>(path.join(s.podman.root, 'overlay-images/images.json'))[0]!;
    expect(rec.digest).toBe(multi.indexDigest);
    expect(rec['big-data-names']).toEqual([want.configDigest, `manifest-${multi.indexDigest}`, `manifest-${want.manifestDigest}`, 'manifest']);
    const arm = await pull(store, `${rig.reg.host}/lib/multi:1`, opts(s.cache, { platform: 'linux/arm64' }));
    expect(arm.id).toBe(multi.images.find((i) => i.platform.architecture === 'arm64')!.image.configDigest.slice(7));
    await store.close();
  });

  it('pulls by digest with the name podman gives it, and an image with 130 layers', async () => {
    const s = newStore();
    const store = await s.open();
    const byTag = await pull(store, `${rig.reg.host}/lib/a:1`, opts(s.cache)); // what the registry holds (skopeo may rewrite)
    const byDigest = await pull(store, `${rig.reg.host}/lib/a@${byTag.manifestDigest}`, opts(s.cache));
    expect(byDigest.id).toBe(byTag.id);
    // podman pull by digest adds `repo@digest` in front of the names the image has
    expect((await store.image(byTag.id))!.names).toEqual([`${rig.reg.host}/lib/a@${byTag.manifestDigest}`, `${rig.reg.host}/lib/a:1`]);
    const deep = await pull(store, `${rig.reg.host}/lib/many:1`, opts(s.cache, { concurrency: 4 }));
    expect(deep.layers).toHaveLength(130);
    // podman 4.3 cannot mount more than ~127 layers ("max depth exceeded"); the flattened checkout shows all 130
    const out = path.join(rig.work, `many-${n}`);
    await checkoutImage(store, `${rig.reg.host}/lib/many:1`, out);
    expect(fs.readdirSync(out).filter((f) => f.startsWith('layer-'))).toHaveLength(130);
    await store.close();
  });

  it('pulls shared layers once, applies cached blobs without the network, and skips what the store has', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache));
    rig.proxy.requests.length = 0;
    const events: PullEvent[] = [];
    const b = await pull(store, `${rig.proxy.host}/lib/b:1`, opts(s.cache, { onProgress: (e) => events.push(e) }));
    expect(b.layers.map((l) => l.state)).toEqual(['exists', 'exists', 'downloaded']);
    const blobGets = rig.proxy.requests.filter(isBlobGet).map((r) => r.path.replace(/.*\/blobs\//, ''));
    expect(blobGets.sort()).toEqual([imgB.configDigest, imgB.layers[2]!.digest].sort()); // config + the one new layer
    expect(events.filter((e) => e.type === 'layer' && e.state === 'exists')).toHaveLength(2);
    // remove A: its own top layer goes, and its blob comes back from the cache
    await store.removeImage(`${rig.proxy.host}/lib/a:1`);
    rig.proxy.requests.length = 0;
    const again = await pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache));
    expect(again.layers.map((l) => l.state)).toEqual(['exists', 'exists', 'cached']);
    expect(rig.proxy.requests.filter(isBlobGet).map((r) => r.path.replace(/.*\/blobs\//, ''))).toEqual([imgA.configDigest]);
    await store.close();
  });
});

describe('faults', () => {
  it('resumes a blob after the connection is reset mid-body, with a Range request, and stores exact content', async () => {
    const s = newStore();
    const store = await s.open();
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.path.endsWith(bigImg.layers[0]!.digest), fault: { kind: 'reset', afterBytes: 1_000_000 } });
    const r = await pull(store, `${rig.proxy.host}/lib/big:1`, opts(s.cache));
    expect(rig.proxy.requests.some((q) => isBlobGet(q) && q.range?.startsWith('bytes=') && q.range !== 'bytes=0-')).toBe(true);
    const layer = (await store.layers())[0]!;
    expect(layer.diffDigest).toBe(bigImg.diffIDs[0]);
    expect(r.layers[0]!.state).toBe('downloaded');
    await store.close();
  });

  it('retries 500/503 and 429 with Retry-After, then succeeds', async () => {
    const s = newStore();
    const store = await s.open();
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'status', status: 500 }, times: 1 });
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'status', status: 503 }, times: 1 });
    rig.proxy.addRule({ match: isManifestGet, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } }, times: 1 });
    const r = await pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache));
    expect(r.id).toBe(imgA.configDigest.slice(7));
    expect(rig.proxy.pending()).toBe(0);
    await store.close();
  });

  it('refuses bytes that do not match the digest and stores nothing (no layer, no cached blob)', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache));
    const before = snapshot(s.podman.root);
    const cacheBefore = fs.readdirSync(path.join(s.cache, 'sha256')).sort();
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.path.endsWith(imgB.layers[2]!.digest), fault: { kind: 'flip', at: 40 }, times: Infinity });
    const err = await pull(store, `${rig.proxy.host}/lib/b:1`, opts(s.cache, { }))
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CarrierError);
    expect(['CARRIER_DIGEST_MISMATCH', 'CARRIER_BAD_COMPRESSION']).toContain((err as CarrierError).code);
    expect(snapshot(s.podman.root)).toEqual(before);
    expect(fs.readdirSync(path.join(s.cache, 'sha256')).sort()).toEqual(cacheBefore);
    await store.close();
  });

  it('refuses a body cut short for good, an oversized manifest and a self-contradicting one, storing nothing', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache));
    const before = snapshot(s.podman.root);
    // every attempt ends at once: the client gives up after its retries (fast ones here) and the pull stores nothing
    rig.proxy.addRule({ match: (r) => isBlobGet(r) && r.path.endsWith(bigImg.layers[0]!.digest), fault: { kind: 'truncate', afterBytes: 0 }, times: Infinity });
    const fast = new RegistryClient({ tlsVerify: false, retryBaseMs: 5, maxRetries: 3 });
    const cut = await pull(store, `${rig.proxy.host}/lib/big:1`, opts(s.cache, { registry: fast })).then(() => undefined, (e: unknown) => e as CarrierError);
    await fast.close();
    expect(cut).toBeInstanceOf(CarrierError);
    rig.proxy.clearRules();
    rig.proxy.addRule({
      match: isManifestGet,
      fault: { kind: 'respond', status: 200, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: Buffer.alloc(5 * 1024 * 1024, 0x20) },
    });
    await expect(pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache))).rejects.toMatchObject({ code: 'CARRIER_LIMIT_EXCEEDED' });
    rig.proxy.addRule({
      match: isManifestGet,
      fault: {
        kind: 'respond',
        status: 200,
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], layers: [] })),
      },
    });
    await expect(pull(store, `${rig.proxy.host}/lib/a:1`, opts(s.cache))).rejects.toMatchObject({ code: 'CARRIER_INVALID_MANIFEST' });
    expect(snapshot(s.podman.root)).toEqual(before);
    await store.close();
  }, 60_000);
});

describe('readers during a pull', () => {
  it('list images (library and CLI, another process) while a pull streams its layers, without waiting for it', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.reg.host}/lib/a:1`, opts(s.cache));
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 4096, intervalMs: 50 }, times: Infinity });
    const ac = new AbortController();
    let streaming = false;
    let settled = false;
    const pulling = pull(store, `${rig.proxy.host}/lib/big:1`, opts(s.cache, { signal: ac.signal, onProgress: (e) => {
      if (e.type === 'progress' && e.bytes > 0) streaming = true;
    } })).then(() => undefined, (e: unknown) => e).finally(() => (settled = true));
    for (let i = 0; i < 200 && !streaming; i++) await new Promise((r) => setTimeout(r, 25));
    expect(streaming).toBe(true);
    const other = await s.open();
    expect((await other.images()).map((i) => i.names)).toEqual([[`${rig.reg.host}/lib/a:1`]]);
    await other.close();
    const listed = await execFileP(process.execPath, [CLI, '--root', s.podman.root, '--runroot', s.podman.runroot, 'images', '--format', 'json']);
    expect((JSON.parse(listed.stdout) as { Id: string }[]).map((i) => i.Id)).toEqual([imgA.configDigest.slice(7)]);
    expect(settled).toBe(false); // the pull was still streaming all along
    ac.abort();
    expect(await pulling).toMatchObject({ code: 'ABORT_ERR' });
    await store.close();
  }, 60_000);
});

describe('carrier pull (CLI)', () => {
  it('prints the id on stdout and plain progress lines on stderr; -q prints only the id', async () => {
    const s = newStore();
    const base = ['--root', s.podman.root, '--runroot', s.podman.runroot, 'pull', '--tls-verify=false'];
    const env = { ...process.env, XDG_DATA_HOME: path.join(rig.work, `xdg${n}`) };
    const r = await execFileP(process.execPath, [CLI, ...base, `${rig.reg.host}/lib/a:1`], { env });
    expect(r.stdout).toBe(`${imgA.configDigest.slice(7)}\n`);
    expect(r.stderr).toContain(`Copying blob ${imgA.layers[0]!.digest}`);
    expect(r.stderr).toContain('Writing manifest to image destination');
    const q = await execFileP(process.execPath, [CLI, ...base, '-q', `${rig.reg.host}/lib/b:1`], { env });
    expect(q.stdout).toBe(`${imgB.configDigest.slice(7)}\n`);
    expect(q.stderr).toBe('');
    const missing = await execFileP(process.execPath, [CLI, ...base, `${rig.reg.host}/lib/nope:1`], { env }).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(missing?.code).toBe(125);
    expect(missing?.stderr).toMatch(/Error: .*not found|manifest unknown|not known/i);
  });

  it('--no-sync pulls the same image without a syncfs; a default pull syncs (strace counts the calls)', async () => {
    expect(await findOnPath('strace'), 'strace not found: run `apt-get install strace`').toBeDefined();
    const syncfsCalls = async (extra: string[], ref: string): Promise<{ calls: number; stdout: string; podman: Podman }> => {
      const s = newStore();
      const log = path.join(rig.work, `strace${n}.log`);
      const env = { ...process.env, XDG_DATA_HOME: path.join(rig.work, `xdg${n}`) };
      const r = await execFileP('strace', ['-f', '-qq', '-e', 'trace=syncfs', '-o', log, process.execPath, CLI,
        '--root', s.podman.root, '--runroot', s.podman.runroot, 'pull', '--tls-verify=false', '-q', ...extra, ref], { env });
      const calls = fs.readFileSync(log, 'utf8').split('\n').filter((l) => /\bsyncfs\(/.test(l)).length;
      return { calls, stdout: r.stdout, podman: s.podman };
    };
    const synced = await syncfsCalls([], `${rig.reg.host}/lib/a:1`);
    expect(synced.calls).toBeGreaterThanOrEqual(1);
    const unsynced = await syncfsCalls(['--no-sync'], `${rig.reg.host}/lib/a:1`);
    expect(unsynced.calls).toBe(0);
    expect(unsynced.stdout).toBe(`${imgA.configDigest.slice(7)}\n`);
    // the store is as complete as after a default pull: podman lists the image
    expect(unsynced.podman.images().map((i) => i.Id)).toEqual([imgA.configDigest.slice(7)]);
    // a misspelt flag is refused, not ignored
    const typo = await execFileP(process.execPath, [CLI, 'pull', '--no-snyc', `${rig.reg.host}/lib/a:1`]).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(typo?.code).toBe(125);
    expect(typo?.stderr).toContain('unknown flag: --no-snyc');
  });

  it('Ctrl-C (SIGINT) mid-blob cancels cleanly: exit 130, the store as it was, no lock left held', async () => {
    const s = newStore();
    const store = await s.open();
    await pull(store, `${rig.reg.host}/lib/a:1`, opts(s.cache));
    await store.close();
    const before = snapshot(s.podman.root);
    rig.proxy.addRule({ match: isBlobGet, fault: { kind: 'drip', chunk: 4096, intervalMs: 50 }, times: Infinity });
    const child = spawn(process.execPath, [CLI, '--root', s.podman.root, '--runroot', s.podman.runroot, 'pull', '--tls-verify=false', `${rig.proxy.host}/lib/big:1`], {
      // The blob cache outside the store (it would be in the graphroot by default), so the snapshot is the store's alone.
      env: { ...process.env, XDG_DATA_HOME: path.join(rig.work, `xdg${n}`), CARRIER_BLOB_CACHE: s.cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 200 && !stderr.includes(bigImg.layers[0]!.digest); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code, stderr).toBe(130);
    expect(snapshot(s.podman.root)).toEqual(before);
    // nothing holds the store: podman writes to it at once
    rig.proxy.clearRules();
    s.podman.run(['pull', '-q', '--tls-verify=false', `${rig.reg.host}/lib/b:1`]);
    expect(s.podman.images()).toHaveLength(2);
  }, 60_000);
});

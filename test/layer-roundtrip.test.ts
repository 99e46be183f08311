/**
 * Round trips: applyLayer with a tar-split, then assembleLayer(tarSplit, dir) must give back the original
 * uncompressed tar byte for byte (hashing to the DiffID). Here: every compression fixture of
 * layer-compression.test.ts, a rootless apply with skipped devices, and whiteout layers. The writer fixtures
 * (GNU tar, bsdtar, tar-stream, with the >100 MiB file) are round-tripped in layer-writers.test.ts on the same
 * extraction that is compared with GNU tar. Also the tar-split format itself (as podman reads it) and
 * assembleLayer's failures.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { applyLayer, assembleLayer, CarrierError, type AppliedLayer } from '../src/index.js';
import * as F from './support/fixtures.js';
import { expectCarrierError, expectRoundTrip as roundTrip, firstDifference, readAll } from './support/layer.js';
import { readTarSplit, crc64iso, entryName, assembleInJs } from './support/tarsplit.js';

let work: string;
let seq = 0;
const freshDir = (tag: string): string => fs.mkdtempSync(path.join(work, `${tag}-${seq++}-`));
const splitPath = (tag: string): string => path.join(work, `${tag}-${seq++}.tar-split.gz`);

interface Fixture {
  /** The blob given to applyLayer. */
  blob: string;
  /** The uncompressed tar it holds. */
  tar: string;
  options?: { rootless?: boolean; whiteouts?: 'overlay' | 'aufs' };
}
const fixtures = new Map<string, Fixture>();

/** Fixture names, known before beforeAll runs so tests can be declared. */
const LAYER_FIXTURES = [
  'tar-stream layer applied rootless (device nodes skipped, so absent from the tree)',
  'overlay whiteouts (char devices and opaque xattrs in the tree)',
  'aufs whiteouts (kept as files)',
];
const COMPRESSION_FIXTURES = [
  'uncompressed',
  'gzip',
  'gzip -k (FNAME/MTIME header fields)',
  'multi-member gzip',
  'zstd',
  'zstd -19 --no-check',
  'multi-frame zstd',
  'zstd with a skippable frame',
];

beforeAll(async () => {
  work = F.tempDir('roundtrip');
  const t = (n: string): string => path.join(work, n);
  await F.tarStreamFixture(t('ts-small.tar'), { big: false, many: 100 });
  await F.whiteoutFixture(t('wh.tar'));
  const [tsr, who, wha] = LAYER_FIXTURES as [string, string, string];
  fixtures.set(tsr, { blob: t('ts-small.tar'), tar: t('ts-small.tar'), options: { rootless: true } });
  fixtures.set(who, { blob: t('wh.tar'), tar: t('wh.tar'), options: { whiteouts: 'overlay' } });
  fixtures.set(wha, { blob: t('wh.tar'), tar: t('wh.tar'), options: { whiteouts: 'aufs' } });

  const medium = path.join(work, 'medium-src');
  fs.mkdirSync(medium);
  const m = t('medium.tar');
  F.gnuTar(F.buildMediumTree(medium), m, 'gnu');
  F.gzip(m, m + '.gz');
  const named = t('named.tar');
  fs.copyFileSync(m, named);
  F.gzipNamed(named);
  F.zstd(m, m + '.nocheck.zst', ['-19', '--no-check']);
  F.twoPieces(m, m + '.multi.gz', 1_234_567, 'gzip');
  F.zstd(m, m + '.zst');
  F.twoPieces(m, m + '.multi.zst', 2_345_679, 'zstd');
  fs.copyFileSync(m + '.zst', m + '.skippable.zst');
  F.appendSkippableFrame(m + '.skippable.zst', Buffer.from('metadata'));
  const blobsOf = [m, m + '.gz', named + '.gz', m + '.multi.gz', m + '.zst', m + '.nocheck.zst', m + '.multi.zst', m + '.skippable.zst'];
  COMPRESSION_FIXTURES.forEach((name, i) => fixtures.set(name, { blob: blobsOf[i]!, tar: m }));
}, 240_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, 120_000);

interface Applied {
  dir: string;
  split: string;
  result: AppliedLayer;
}

async function applyWithSplit(fx: Fixture, tag: string): Promise<Applied> {
  const dir = freshDir(tag);
  const split = splitPath(tag);
  const result = await applyLayer(fx.blob, dir, { rootless: false, ...fx.options, tarSplit: split });
  return { dir, split, result };
}

async function expectRoundTrip(fx: Fixture, a: Applied): Promise<void> {
  expect(a.result.diffDigest).toBe(await F.sha256File(fx.tar));
  await roundTrip(fx.tar, a.split, a.dir, a.result);
}

describe('assembleLayer rebuilds the original tar', { timeout: 180_000 }, () => {
  for (const name of [...LAYER_FIXTURES, ...COMPRESSION_FIXTURES.map((c) => `${c} blob of a GNU tar layer`)]) {
    const key = name.replace(/ blob of a GNU tar layer$/, '');
    it(`byte for byte, hashing to diffDigest: ${name}`, async () => {
      const fx = fixtures.get(key)!;
      const a = await applyWithSplit(fx, 'rt');
      try {
        await expectRoundTrip(fx, a);
      } finally {
        fs.rmSync(a.dir, { recursive: true, force: true });
      }
    });
  }

  it('with writeback (the store syncs afterwards), extracts the same tree and tar-split, rebuilt byte for byte', async () => {
    const fx = fixtures.get('uncompressed')!;
    const dir = freshDir('writeback');
    const split = splitPath('writeback');
    const result = await applyLayer(fx.blob, dir, { rootless: false, tarSplit: split, writeback: true });
    await expectRoundTrip(fx, { dir, split, result });
  });

  it('keeps bytes after the end-of-archive blocks: hashed into diffDigest and rebuilt by assembleLayer', async () => {
    const m = fixtures.get('uncompressed')!.tar;
    const tarFile = path.join(work, 'trailing.tar');
    fs.writeFileSync(tarFile, Buffer.concat([fs.readFileSync(m), Buffer.alloc(4096), Buffer.from('trailing bytes after the archive\n')]));
    F.gzip(tarFile, tarFile + '.gz');
    const fx: Fixture = { blob: tarFile + '.gz', tar: tarFile };
    const a = await applyWithSplit(fx, 'trailing');
    expect(a.result.diffSize).toBe(F.fileSize(tarFile));
    await expectRoundTrip(fx, a);
  });

  it('accepts a tar that ends right after its last entry, without end-of-archive blocks, as Go archive/tar and GNU tar do', async () => {
    const m = fixtures.get('uncompressed')!.tar;
    const tarFile = path.join(work, 'no-eof-blocks.tar');
    fs.writeFileSync(tarFile, fs.readFileSync(m).subarray(0, F.tarDataEnd(m)));
    const fx: Fixture = { blob: tarFile, tar: tarFile };
    const a = await applyWithSplit(fx, 'no-eof');
    expect(a.result.entries).toBe((await F.tarStats(m)).entries);
    await expectRoundTrip(fx, a);
  });

  it('serves a slow reader correctly (backpressure), one chunk per macrotask', async () => {
    const fx = fixtures.get('gzip')!;
    const a = await applyWithSplit(fx, 'slow');
    const chunks: Buffer[] = [];
    for await (const chunk of assembleLayer(a.split, a.dir)) {
      chunks.push(chunk as Buffer);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(firstDifference(Buffer.concat(chunks), fs.readFileSync(fx.tar))).toBe(-1);
  });

  it('can be stopped early by destroying the stream', async () => {
    const fx = fixtures.get('gzip')!;
    const a = await applyWithSplit(fx, 'destroy');
    const stream = assembleLayer(a.split, a.dir);
    let got = 0;
    for await (const chunk of stream) {
      got += (chunk as Buffer).length;
      if (got > 1024 * 1024) break; // for-await's return() destroys the stream
    }
    expect(stream.destroyed).toBe(true);
    fs.rmSync(a.dir, { recursive: true, force: true });
  });
});

describe('the tar-split file', { timeout: 120_000 }, () => {
  const check = async (fxName: string): Promise<void> => {
    const fx = fixtures.get(fxName)!;
    const a = await applyWithSplit(fx, 'shape');
    const entries = readTarSplit(a.split);
    const original = fs.readFileSync(fx.tar);

    // positions 0..n-1; each tar entry is a segment (padding + headers) then a file entry; a segment ends it.
    expect(entries.map((e) => e.position)).toEqual(entries.map((_, i) => i));
    const types = entries.map((e) => e.type).join('');
    expect(types).toMatch(/^(21)+2$/);
    const files = entries.filter((e) => e.type === 1);
    expect(files.length).toBe(a.result.entries);

    for (const e of entries) {
      if (e.type === 2) {
        expect(typeof e.payload).toBe('string');
        expect(Buffer.from(e.payload!, 'base64').length).toBeGreaterThan(0);
        continue;
      }
      // Go's encoding/json omitempty: size is absent for empty entries, present and positive otherwise.
      if (e.size !== undefined) expect(e.size).toBeGreaterThanOrEqual(0);
      const size = e.size ?? 0;
      const rel = entryName(e);
      expect(rel.length, 'every file entry is named (name or name_raw)').toBeGreaterThan(0);
      if (size === 0) {
        expect(e.payload).toBeNull();
        continue;
      }
      const content = fs.readFileSync(Buffer.concat([Buffer.from(a.dir + '/'), rel]));
      expect(content.length).toBe(size);
      expect(Buffer.from(e.payload!, 'base64').toString('hex'), `CRC-64/ISO of ${rel.toString()}`).toBe(crc64iso(content).toString('hex'));
    }

    // Names: UTF-8 in `name`, anything else base64 in `name_raw` — as vbatts/tar-split writes them.
    const stats = await F.tarStats(fx.tar);
    const strip = (s: string): string => s.replace(/\/+$/, '');
    const utf8Names = files.filter((e) => e.name_raw === undefined || e.name_raw === null).map((e) => strip(e.name!));
    for (const n of utf8Names) expect(stats.names.map(strip)).toContain(n);

    // A reader that knows only the format (not assembleLayer) rebuilds the exact tar.
    const rebuilt = assembleInJs(entries, a.dir);
    expect(firstDifference(rebuilt, original)).toBe(-1);
  };

  it('is gzip of JSON lines: positions 0..n-1, segment/file entries alternating, CRC-64 payloads (GNU tar layer)', async () => {
    await check('gzip');
  });

  it('has the same shape for a tar-stream layer with PAX headers, devices and a non-UTF-8 name in name_raw', async () => {
    await check(LAYER_FIXTURES[0]!);
    const a = await applyWithSplit(fixtures.get(LAYER_FIXTURES[0]!)!, 'raw-name');
    const raw = readTarSplit(a.split).filter((e) => e.type === 1 && e.name_raw);
    expect(raw.map((e) => Buffer.from(e.name_raw!, 'base64').toString('latin1'))).toEqual(['ts-names/bad-\xff\xfe.bin']);
  });

  it('is written only on success, at the path given', async () => {
    const fx = fixtures.get('gzip')!;
    const dir = freshDir('split-absent');
    const split = splitPath('split-absent');
    await applyLayer(fx.blob, dir, { tarSplit: split, expectedDiffID: 'sha256:' + 'f'.repeat(64) }).catch(() => undefined);
    expect(fs.existsSync(split)).toBe(false);
    const ok = await applyLayer(fx.blob, freshDir('split-present'), { tarSplit: split });
    expect(fs.existsSync(split)).toBe(true);
    expect(zlib.gunzipSync(fs.readFileSync(split)).length).toBeGreaterThan(ok.entries * 20);
  });
});

describe('assembleLayer failures', { timeout: 60_000 }, () => {
  const firstRegular = (split: string): { rel: string; size: number } => {
    const e = readTarSplit(split).find((x) => x.type === 1 && (x.size ?? 0) > 1000 && x.name)!;
    return { rel: e.name!, size: e.size! };
  };
  const assembleError = async (split: string, dir: string): Promise<CarrierError> =>
    expectCarrierError(readAll(assembleLayer(split, dir)));

  it('errors the stream when an extracted file’s content no longer matches its CRC-64', async () => {
    const a = await applyWithSplit(fixtures.get('gzip')!, 'crc');
    const { rel } = firstRegular(a.split);
    const file = path.join(a.dir, rel);
    const data = fs.readFileSync(file);
    data[Math.floor(data.length / 2)] ^= 0x20; // same size, one bit different
    fs.writeFileSync(file, data);
    const err = await assembleError(a.split, a.dir);
    expect(err.code, err.message).toBe('CARRIER_DIGEST_MISMATCH');
    expect(err.path ?? err.message).toContain(rel);
  });

  it('errors the stream when an extracted file became shorter', async () => {
    const a = await applyWithSplit(fixtures.get('gzip')!, 'short');
    const { rel, size } = firstRegular(a.split);
    fs.truncateSync(path.join(a.dir, rel), size - 1);
    const err = await assembleError(a.split, a.dir);
    expect(err.code, err.message).toBe('CARRIER_DIGEST_MISMATCH');
  });

  it('errors the stream when an extracted file became longer (the CRC covers the whole file, as in containers/storage)', async () => {
    const a = await applyWithSplit(fixtures.get('gzip')!, 'long');
    const { rel } = firstRegular(a.split);
    fs.appendFileSync(path.join(a.dir, rel), 'extra');
    const err = await assembleError(a.split, a.dir);
    expect(err.code, err.message).toBe('CARRIER_DIGEST_MISMATCH');
  });

  it('errors with ENOENT when an extracted file is missing', async () => {
    const a = await applyWithSplit(fixtures.get('gzip')!, 'missing');
    const { rel } = firstRegular(a.split);
    fs.rmSync(path.join(a.dir, rel));
    const err = await assembleError(a.split, a.dir);
    expect(err.code).toBe('ENOENT');
  });

  it('errors with ENOENT when the tar-split file does not exist', async () => {
    const err = await assembleError(path.join(work, 'no-such.tar-split.gz'), freshDir('nosplit'));
    expect(err.code).toBe('ENOENT');
  });

  it('errors with CARRIER_BAD_TAR_SPLIT when the tar-split is not gzip', async () => {
    const split = path.join(work, 'not-gzip.tar-split.gz');
    fs.writeFileSync(split, '{"type":2,"payload":null,"position":0}\n');
    const err = await assembleError(split, freshDir('notgz'));
    expect(err.code).toBe('CARRIER_BAD_TAR_SPLIT');
  });

  it('errors with CARRIER_BAD_TAR_SPLIT when a line is not JSON', async () => {
    const a = await applyWithSplit(fixtures.get('gzip')!, 'badjson');
    const lines = zlib.gunzipSync(fs.readFileSync(a.split)).toString().split('\n');
    lines.splice(3, 0, '{"type":1,"name":'); // a cut-off line in the middle
    fs.writeFileSync(a.split, zlib.gzipSync(lines.join('\n')));
    const err = await assembleError(a.split, a.dir);
    expect(err.code).toBe('CARRIER_BAD_TAR_SPLIT');
  });

  it('errors with CARRIER_BAD_TAR_SPLIT when a segment payload is not base64 of bytes', async () => {
    const a = await applyWithSplit(fixtures.get('gzip')!, 'badpayload');
    const lines = zlib.gunzipSync(fs.readFileSync(a.split)).toString().split('\n');
    const obj = JSON.parse(lines[0]!) as { payload: unknown };
    obj.payload = 12345;
    lines[0] = JSON.stringify(obj);
    fs.writeFileSync(a.split, zlib.gzipSync(lines.join('\n')));
    const err = await assembleError(a.split, a.dir);
    expect(err.code).toBe('CARRIER_BAD_TAR_SPLIT');
  });

  it('still rebuilds the tar when an extracted file only changed its mtime (contents are what is checked)', async () => {
    const fx = fixtures.get('gzip')!;
    const a = await applyWithSplit(fx, 'touch');
    const { rel } = firstRegular(a.split);
    fs.utimesSync(path.join(a.dir, rel), 1, 1);
    const rebuilt = await readAll(assembleLayer(a.split, a.dir));
    expect(crypto.createHash('sha256').update(rebuilt).digest('hex')).toBe(a.result.diffDigest.slice(7));
  });
});

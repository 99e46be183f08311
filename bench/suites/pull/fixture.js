// The pull suite's second image, smallfiles: three layers with ≈50k entries between them, mostly small files (every
// file ≤ 1 MiB of whole /usr subtrees) topped up with larger files to ≈1 GiB of tar, compressed once by the
// command-line tools (gzip -6, zstd -3) and cached in bench/work/fixtures/. (The first image, distro, is the apply
// suite's layer: bench/lib/fixture.js.)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { listUnits, collectUnit, listKey, withAncestors, countTypes, exists, tarOf, compressAll, describe, pruneStale } from '../../lib/fixture.js';
import { MiB } from '../../lib/util.js';

const SMALL = 1 * MiB;

/**
 * The small-files image's selection: whole /usr subtrees in a fixed pseudo-random order with their files ≤ 1 MiB
 * until there are `targetEntries` entries, then the larger files held back from those subtrees (hash order) until the
 * tar is about `targetBytes`; split into `layers` groups of subtrees with about the same number of bytes each.
 */
export function selectSmallFiles({ targetBytes, targetEntries, layers = 3 }) {
  const units = listUnits('smallfiles ');
  const order = (p) => createHash('sha1').update('smallfiles ' + p).digest('hex');
  const header = (p) => 512 + (Buffer.byteLength(p) > 99 ? 1024 : 0);
  const blocks = (n) => Math.ceil(n / 512) * 512;

  const chosen = [];
  const held = [];
  let count = 0;
  let bytes = 0;
  const inodes = new Set();
  for (const u of units) {
    if (count >= targetEntries * 0.97) break;
    const unit = collectUnit(u);
    if (!unit.entries.length) continue;
    const keep = [];
    let ub = 0;
    for (const e of unit.entries) {
      if (e.type === 'f' && e.size > SMALL) {
        held.push({ ...e, unit: u });
        continue;
      }
      keep.push(e);
      ub += header(e.path) + (e.type === 'f' && !inodes.has(e.ino) ? blocks(e.size) : 0);
    }
    if (count + keep.length > targetEntries * 1.02) continue;
    if (bytes + ub > targetBytes) continue;
    for (const e of keep) if (e.type === 'f') inodes.add(e.ino);
    chosen.push({ rel: u, entries: keep, bytes: ub });
    count += keep.length;
    bytes += ub;
  }
  // top up with the held-back large files of the chosen subtrees
  const taken = new Set(chosen.map((c) => c.rel));
  held.sort((a, b) => (order(a.path) < order(b.path) ? -1 : 1));
  const byUnit = new Map(chosen.map((c) => [c.rel, c]));
  for (const e of held) {
    if (bytes >= targetBytes * 0.97) break;
    if (!taken.has(e.unit) || inodes.has(e.ino)) continue;
    const b = header(e.path) + blocks(e.size);
    if (bytes + b > targetBytes * 1.02) continue;
    inodes.add(e.ino);
    const c = byUnit.get(e.unit);
    c.entries.push(e);
    c.bytes += b;
    bytes += b;
    count++;
  }
  // split: biggest subtrees first, each to the layer with the fewest bytes so far
  const groups = Array.from({ length: layers }, () => ({ units: [], bytes: 0 }));
  for (const c of [...chosen].sort((a, b) => b.bytes - a.bytes || (a.rel < b.rel ? -1 : 1))) {
    const g = groups.reduce((m, x) => (x.bytes < m.bytes ? x : m));
    g.units.push(c);
    g.bytes += c.bytes;
  }
  return groups.map((g) => ({ entries: withAncestors(g.units), units: g.units.map((u) => u.rel), estimatedTarBytes: g.bytes }));
}

/** Builds (or reuses) the small-files image's layers: [{ tar, gzip, zstd, meta, entries, counts }]. */
export async function buildSmallFilesLayers(workDir, { targetBytes, targetEntries, log }) {
  const t0 = Date.now();
  const groups = selectSmallFiles({ targetBytes, targetEntries });
  const key = listKey(groups.flatMap((g) => g.entries), `smallfiles v1 ${targetBytes} ${targetEntries} ${groups.map((g) => g.entries.length).join(',')}`);
  const root = path.join(workDir, 'fixtures');
  const dir = path.join(root, `smallfiles-${key}`);
  await fs.promises.mkdir(dir, { recursive: true });
  const spec = JSON.stringify({ smallfiles: true, targetBytes, targetEntries });
  await fs.promises.writeFile(path.join(dir, 'spec.json'), spec);
  await pruneStale(root, path.basename(dir), spec, log);
  const layers = [];
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    const tarPath = path.join(dir, `layer${i}.tar`);
    if (!(await exists(tarPath))) {
      log?.(`building small-files layer ${i + 1}/${groups.length}: ${g.entries.length} entries of /usr (${g.units.length} subtrees) ...`);
      await tarOf(g.entries.map((e) => e.path), tarPath, path.join(dir, `layer${i}.list.nul`));
    }
    const { gz, zst } = await compressAll(tarPath, { parallel: true, log });
    const meta = await describe(tarPath, gz, zst);
    layers.push({ tar: tarPath, gzip: gz, zstd: zst, meta, entries: g.entries.length, counts: countTypes(g.entries) });
  }
  return { key, dir, layers, took: (Date.now() - t0) / 1000 };
}

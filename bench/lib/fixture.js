// Builds the benchmark layers from real files on this machine, and caches them in bench/work/fixtures/<key>/: the
// distro-like layer the apply, pull and scaling suites share, its large version and its split into N layers.
//
// The layer is a GNU-tar (pax format, like the Go archive/tar writers that produce most image layers) archive of a
// deterministic selection of whole subtrees of /usr (children of /usr/bin, /usr/lib/x86_64-linux-gnu, /usr/share,
// ...), chosen so the tar is about `targetBytes` and holds about `targetEntries` entries, the shape of a distro base
// layer. Only directories, regular files and symlinks are taken (hard links between selected files stay hard links);
// sockets, FIFOs, devices and unreadable files are left out. The cache key is a hash of the selected list (path,
// type, size, mtime), so an unchanged machine reuses the archives and a changed one rebuilds them.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run, sha256File, MiB } from './util.js';

export const CANDIDATE_ROOTS = [
  'usr/bin',
  'usr/sbin',
  'usr/lib/x86_64-linux-gnu',
  'usr/lib/aarch64-linux-gnu',
  'usr/share',
  'usr/include',
  'usr/libexec',
  'usr/lib/python3',
  'usr/lib/python3.11',
  'usr/lib/python3.12',
  'usr/lib/systemd',
  'usr/lib/apt',
  'usr/lib/git-core',
];

const tarBlocks = (size) => Math.ceil(size / 512) * 512;

/** Entries of one unit (a child of a candidate root): itself and, for a directory, everything below it. */
export function collectUnit(rel) {
  const entries = [];
  let bytes = 0;
  let ok = true;
  const visit = (r) => {
    if (!ok) return;
    if (r.includes('\n') || Buffer.byteLength(r) > 4000) return;
    const abs = '/' + r;
    let st;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    // long names cost an extra pax header block pair
    const headerBytes = 512 + (Buffer.byteLength(r) > 99 ? 1024 : 0);
    if (st.isDirectory()) {
      try {
        fs.accessSync(abs, fs.constants.R_OK | fs.constants.X_OK);
      } catch {
        return;
      }
      entries.push({ path: r, type: 'd', size: 0, mtime: Math.floor(st.mtimeMs) });
      bytes += headerBytes;
      let names;
      try {
        names = fs.readdirSync(abs).sort();
      } catch {
        ok = false;
        return;
      }
      for (const n of names) visit(`${r}/${n}`);
    } else if (st.isFile()) {
      try {
        fs.accessSync(abs, fs.constants.R_OK);
      } catch {
        return;
      }
      entries.push({ path: r, type: 'f', size: st.size, mtime: Math.floor(st.mtimeMs), ino: `${st.dev}:${st.ino}` });
      bytes += headerBytes + tarBlocks(st.size);
    } else if (st.isSymbolicLink()) {
      entries.push({ path: r, type: 'l', size: 0, mtime: Math.floor(st.mtimeMs) });
      bytes += headerBytes;
    }
    // sockets, FIFOs, block/char devices: skipped
  };
  visit(rel);
  return ok ? { rel, entries, bytes } : { rel, entries: [], bytes: 0 };
}

/** Every child of the candidate roots (the units a selection takes whole), in a fixed pseudo-random order. */
export function listUnits(salt) {
  const units = [];
  for (const root of CANDIDATE_ROOTS) {
    let names;
    try {
      if (!fs.lstatSync('/' + root).isDirectory()) continue;
      names = fs.readdirSync('/' + root);
    } catch {
      continue;
    }
    for (const n of names) units.push(`${root}/${n}`);
  }
  const order = (p) => createHash('sha1').update(salt + p).digest('hex');
  return units.sort((a, b) => (order(a) < order(b) ? -1 : 1));
}

/**
 * Picks whole units in a fixed pseudo-random order (by hash of the path) while they fit both budgets, until the tar
 * is within a few percent of both targets.
 */
export function selectFiles({ targetBytes, targetEntries }) {
  const units = listUnits('');

  const chosen = [];
  let bytes = 0;
  let count = 0;
  const seenInodes = new Set();
  for (const u of units) {
    if (bytes >= targetBytes * 0.97 && count >= targetEntries * 0.93) break;
    const unit = collectUnit(u);
    if (unit.entries.length === 0) continue;
    // hard links to an inode already chosen are stored as link entries (no data)
    let ub = unit.bytes;
    for (const e of unit.entries) if (e.type === 'f' && seenInodes.has(e.ino)) ub -= tarBlocks(e.size);
    if (bytes + ub > targetBytes || count + unit.entries.length > targetEntries) continue;
    for (const e of unit.entries) if (e.type === 'f') seenInodes.add(e.ino);
    chosen.push(unit);
    bytes += ub;
    count += unit.entries.length;
  }
  // Small files usually use up the entry budget first: top the bytes up with the densest remaining units (big
  // single files such as shared libraries), allowing the entry count to overshoot by a few percent.
  if (bytes < targetBytes * 0.97) {
    const taken = new Set(chosen.map((u) => u.rel));
    const rest = units
      .filter((u) => !taken.has(u))
      .map(collectUnit)
      .filter((u) => u.entries.length > 0)
      .sort((a, b) => b.bytes / b.entries.length - a.bytes / a.entries.length || (a.rel < b.rel ? -1 : 1));
    for (const unit of rest) {
      if (bytes >= targetBytes * 0.97) break;
      if (unit.entries.some((e) => e.type === 'f' && seenInodes.has(e.ino))) continue;
      if (bytes + unit.bytes > targetBytes || count + unit.entries.length > targetEntries * 1.03) continue;
      for (const e of unit.entries) if (e.type === 'f') seenInodes.add(e.ino);
      chosen.push(unit);
      bytes += unit.bytes;
      count += unit.entries.length;
    }
  }

  const entries = withAncestors(chosen);
  return { entries, estimatedTarBytes: bytes + 1024 * 10, units: chosen.map((u) => u.rel) };
}

/**
 * The entries of `units` ([{ rel, entries }]) and every directory above them (so the tar is self-contained like a
 * real rootfs layer), sorted by path bytes.
 */
export function withAncestors(units) {
  const all = new Map();
  for (const unit of units) {
    const parts = unit.rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const a = parts.slice(0, i).join('/');
      if (!all.has(a)) all.set(a, { path: a, type: 'd', size: 0, mtime: Math.floor(fs.lstatSync('/' + a).mtimeMs) });
    }
    for (const e of unit.entries) all.set(e.path, e);
  }
  return [...all.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** How many directories, files and symlinks `entries` hold. */
export function countTypes(entries) {
  const counts = { dirs: 0, files: 0, symlinks: 0 };
  for (const e of entries) counts[{ d: 'dirs', f: 'files', l: 'symlinks' }[e.type]]++;
  return counts;
}

export function listKey(entries, extra) {
  const h = createHash('sha256').update(extra);
  for (const e of entries) h.update(`${e.type}\0${e.path}\0${e.size}\0${e.type === 'd' ? '' : e.mtime}\n`);
  return h.digest('hex').slice(0, 16);
}

export async function exists(p) {
  try {
    await fs.promises.access(p);
    return true;
  } catch {
    return false;
  }
}

const TAR_CREATE = ['--format=pax', '--pax-option=delete=atime,delete=ctime,delete=mtime', '--no-recursion'];

/** A pax tar of `paths` (relative to /, taken as they are, no recursion) at `tarPath`, its list beside it in `listPath`. */
export async function tarOf(paths, tarPath, listPath) {
  await fs.promises.writeFile(listPath, paths.map((p) => p + '\0').join(''));
  await run('tar', ['-c', ...TAR_CREATE, '-f', `${tarPath}.tmp`, '-C', '/', '--null', '-T', listPath]);
  await fs.promises.rename(`${tarPath}.tmp`, tarPath);
}

export async function compressAll(tarPath, { parallel = false, log }) {
  // gzip at its default level 6 and zstd at level 3, the levels the usual image builders use. For the large layer
  // pigz (same deflate level 6, same gzip format) is used when available, purely to build the fixture faster.
  const gz = `${tarPath}.gz`;
  const zst = `${tarPath}.zst`;
  if (!(await exists(gz))) {
    log?.(`  compressing ${path.basename(gz)} ...`);
    const usePigz = parallel && (await run('sh', ['-c', 'command -v pigz'], { allowFail: true })).code === 0;
    await run('sh', ['-c', `${usePigz ? 'pigz -6' : 'gzip -6'} -c "$1" > "$1.gz.tmp" && mv "$1.gz.tmp" "$1.gz"`, 'sh', tarPath]);
  }
  if (!(await exists(zst))) {
    log?.(`  compressing ${path.basename(zst)} ...`);
    await run('zstd', ['-3', '-q', '-f', ...(parallel ? ['-T0'] : []), tarPath, '-o', `${zst}.tmp`]);
    await fs.promises.rename(`${zst}.tmp`, zst);
  }
  return { gz, zst };
}

export async function describe(tarPath, gz, zst) {
  const metaPath = `${tarPath}.meta.json`;
  try {
    return JSON.parse(await fs.promises.readFile(metaPath, 'utf8'));
  } catch {}
  const [tarDigest, gzDigest, zstDigest] = await Promise.all([sha256File(tarPath), sha256File(gz), sha256File(zst)]);
  const meta = {
    tar: { size: (await fs.promises.stat(tarPath)).size, digest: tarDigest },
    gzip: { size: (await fs.promises.stat(gz)).size, digest: gzDigest },
    zstd: { size: (await fs.promises.stat(zst)).size, digest: zstDigest },
  };
  await fs.promises.writeFile(metaPath, JSON.stringify(meta, null, 2));
  return meta;
}

/** Deletes fixtures built for the same size target from an older file list (they are a few large files each). */
export async function pruneStale(root, key, spec, log) {
  for (const name of await fs.promises.readdir(root)) {
    if (name === key) continue;
    let other;
    try {
      other = await fs.promises.readFile(path.join(root, name, 'spec.json'), 'utf8');
    } catch {
      continue;
    }
    if (other !== spec) continue;
    log?.(`removing stale fixture ${name} (the file list changed)`);
    await fs.promises.rm(path.join(root, name), { recursive: true, force: true });
  }
}

/**
 * The main benchmark layer. Returns paths of layer.tar, layer.tar.gz, layer.tar.zst and their sizes and digests.
 */
export async function buildFixture(workDir, { targetBytes, targetEntries, parallel = false, log }) {
  const t0 = Date.now();
  const sel = selectFiles({ targetBytes, targetEntries });
  const key = listKey(sel.entries, `v1 ${targetBytes} ${targetEntries}`);
  const dir = path.join(workDir, 'fixtures', key);
  await fs.promises.mkdir(dir, { recursive: true });
  const spec = JSON.stringify({ targetBytes, targetEntries });
  await fs.promises.writeFile(path.join(dir, 'spec.json'), spec);
  await pruneStale(path.join(workDir, 'fixtures'), key, spec, log);
  const tarPath = path.join(dir, 'layer.tar');
  const listPath = path.join(dir, 'list.nul');
  if (!(await exists(tarPath))) {
    log?.(`building fixture ${key} from ${sel.entries.length} entries of /usr (${sel.units.length} subtrees) ...`);
    await fs.promises.writeFile(path.join(dir, 'units.txt'), sel.units.join('\n') + '\n');
    await tarOf(sel.entries.map((e) => e.path), tarPath, listPath);
  }
  const { gz, zst } = await compressAll(tarPath, { parallel, log });
  const meta = await describe(tarPath, gz, zst);
  const counts = countTypes(sel.entries);
  const took = (Date.now() - t0) / 1000;
  return { key, dir, tar: tarPath, gzip: gz, zstd: zst, listPath, meta, entries: sel.entries.length, counts, took };
}

/**
 * The large layer for the memory test: the main fixture's files plus big real-content files (the fixture's regular
 * files concatenated over and over) until the tar is about `targetBytes`.
 */
export async function buildLargeFixture(fixture, { targetBytes, log }) {
  const dir = path.join(fixture.dir, `large-${Math.round(targetBytes / MiB)}M`);
  const tarPath = path.join(dir, 'layer.tar');
  await fs.promises.mkdir(dir, { recursive: true });
  if (!(await exists(tarPath))) {
    const extra = targetBytes - fixture.meta.tar.size;
    const nBlobs = Math.max(1, Math.round(extra / (200 * MiB)));
    const blobSize = Math.floor(extra / nBlobs);
    log?.(`building large layer: fixture + ${nBlobs} file(s) of ${(blobSize / MiB).toFixed(0)} MiB ...`);
    const src = path.join(dir, 'src');
    await fs.promises.rm(src, { recursive: true, force: true });
    await fs.promises.mkdir(path.join(src, 'opt/big'), { recursive: true });
    const files = fs
      .readFileSync(fixture.listPath, 'utf8')
      .split('\0')
      .filter((p) => p && fs.lstatSync('/' + p).isFile());
    let fi = 0;
    const blobs = [];
    for (let b = 0; b < nBlobs; b++) {
      const rel = `opt/big/blob-${b}.bin`;
      const fd = fs.openSync(path.join(src, rel), 'w');
      let written = 0;
      while (written < blobSize) {
        const data = fs.readFileSync('/' + files[fi++ % files.length]);
        const n = Math.min(data.length, blobSize - written);
        fs.writeSync(fd, data, 0, n);
        written += n;
      }
      fs.closeSync(fd);
      blobs.push(rel);
    }
    const extraList = path.join(dir, 'extra.nul');
    await fs.promises.writeFile(extraList, ['opt', 'opt/big', ...blobs].map((p) => p + '\0').join(''));
    await run('tar', [
      '-c', ...TAR_CREATE, '-f', `${tarPath}.tmp`,
      '-C', '/', '--null', '-T', fixture.listPath,
      '-C', src, '--null', '-T', extraList,
    ]);
    await fs.promises.rename(`${tarPath}.tmp`, tarPath);
    await fs.promises.rm(src, { recursive: true, force: true });
  }
  const { gz, zst } = await compressAll(tarPath, { parallel: true, log });
  const meta = await describe(tarPath, gz, zst);
  return { dir, tar: tarPath, gzip: gz, zstd: zst, meta };
}

/**
 * The fixture's entries split into `n` layers (contiguous runs of its sorted file list, each with the directories
 * above its entries so it extracts on its own, as image layers do), for the layer-count scaling series. Cached in
 * bench/work/fixtures/<key>-split<n>/. Returns { key, layers: [{ tar, gzip, zstd, meta, entries }] }.
 */
export async function buildSplitLayers(fixture, n, { log } = {}) {
  const dir = path.join(path.dirname(fixture.dir), `${fixture.key}-split${n}`);
  await fs.promises.mkdir(dir, { recursive: true });
  const paths = fs.readFileSync(fixture.listPath, 'utf8').split('\0').filter(Boolean);
  const per = Math.ceil(paths.length / n);
  const layers = [];
  let built = false;
  for (let i = 0; i < n; i++) {
    const chunk = paths.slice(i * per, (i + 1) * per);
    const tarPath = path.join(dir, `layer${i}.tar`);
    if (!(await exists(tarPath))) {
      if (!built) log?.(`building ${n} layers from fixture ${fixture.key} (${paths.length} entries) ...`);
      built = true;
      const all = new Set();
      for (const p of chunk) {
        const parts = p.split('/');
        for (let k = 1; k < parts.length; k++) all.add(parts.slice(0, k).join('/'));
        all.add(p);
      }
      const list = [...all].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      await tarOf(list, tarPath, path.join(dir, `layer${i}.list.nul`));
    }
    const { gz, zst } = await compressAll(tarPath, {});
    const meta = await describe(tarPath, gz, zst);
    layers.push({ tar: tarPath, gzip: gz, zstd: zst, meta, entries: chunk.length });
  }
  return { key: `${fixture.key}-split${n}`, layers };
}

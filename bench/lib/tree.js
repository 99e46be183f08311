// Manifests of extracted trees and of tar archives, and their differences: how the suites check every output.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A canonical description of an extracted tree: one tab-separated line per entry with type, path, mode, owner, size,
 * mtime and link target. Two extractions of the same layer should give the same manifest.
 */
export function treeManifest(root) {
  const lines = [];
  const stats = { dirs: 0, files: 0, symlinks: 0, other: 0, bytes: 0 };
  const walk = (rel) => {
    const abs = rel ? path.join(root, rel) : root;
    for (const name of fs.readdirSync(abs)) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      const own = `${st.uid}:${st.gid}`;
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isDirectory()) {
        stats.dirs++;
        lines.push(['d', r, mode, own, mtime].join('\t'));
        walk(r);
      } else if (st.isFile()) {
        stats.files++;
        stats.bytes += st.size;
        lines.push(['f', r, mode, own, st.size, mtime].join('\t'));
      } else if (st.isSymbolicLink()) {
        stats.symlinks++;
        lines.push(['l', r, own, mtime, fs.readlinkSync(p)].join('\t'));
      } else {
        stats.other++;
        lines.push(['?', r, mode, own].join('\t'));
      }
    }
  };
  walk('');
  lines.sort();
  return { lines, stats, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

/**
 * What extracting `tarPath` should produce, in treeManifest's format, read from the tar headers themselves (so GNU tar
 * is checked like everyone else). Hard links take their target's record.
 */
export async function tarManifest(tarPath) {
  const { default: tarStream } = await import('tar-stream');
  const { pipeline } = await import('node:stream/promises');
  const byPath = new Map();
  const clean = (n) => path.posix.normalize('/' + n).slice(1).replace(/\/$/, '');
  const extract = tarStream.extract();
  extract.on('entry', (h, stream, next) => {
    const r = clean(h.name);
    const mode = (h.mode & 0o7777).toString(8);
    const own = `${h.uid}:${h.gid}`;
    const mtime = Math.floor(h.mtime.getTime() / 1000);
    if (h.type === 'directory') byPath.set(r, ['d', r, mode, own, mtime]);
    else if (h.type === 'file' || h.type === 'contiguous-file') byPath.set(r, ['f', r, mode, own, h.size, mtime]);
    else if (h.type === 'symlink') byPath.set(r, ['l', r, own, mtime, h.linkname]);
    else if (h.type === 'link') {
      const t = byPath.get(clean(h.linkname));
      if (t) byPath.set(r, [t[0], r, ...t.slice(2)]);
    } else byPath.set(r, ['?', r, mode, own]);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(fs.createReadStream(tarPath, { highWaterMark: 1 << 20 }), extract);
  byPath.delete('');
  const lines = [...byPath.values()].map((f) => f.join('\t')).sort();
  return { lines, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

/**
 * Sorts the differences between an expected and an actual manifest into unrestored directory mtimes, unrestored
 * symlink mtimes, and everything else (missing or extra entries, wrong type, mode, owner, size, content, target).
 */
export function classifyDiff(expected, actual) {
  const index = (m) => new Map(m.lines.map((l) => [l.split('\t').slice(0, 2).join('\t'), l]));
  const e = index(expected);
  const a = index(actual);
  const out = { dirMtime: [], symlinkMtime: [], other: [] };
  const mtimeField = { d: 4, l: 3 };
  for (const [key, el] of e) {
    const al = a.get(key);
    if (al === el) continue;
    if (al === undefined) {
      out.other.push(`missing: ${el.replaceAll('\t', ' ')}`);
      continue;
    }
    const ef = el.split('\t');
    const af = al.split('\t');
    const k = mtimeField[ef[0]];
    if (k !== undefined && ef.every((v, i) => i === k || v === af[i])) {
      (ef[0] === 'd' ? out.dirMtime : out.symlinkMtime).push(`${ef[1]} (${af[k]} instead of ${ef[k]})`);
    } else out.other.push(`want ${el.replaceAll('\t', ' ')} | got ${al.replaceAll('\t', ' ')}`);
  }
  for (const [key, al] of a) if (!e.has(key)) out.other.push(`unexpected: ${al.replaceAll('\t', ' ')}`);
  return out;
}

/** The first three items of a list, and how many there are in all when there are more. */
export const some = (xs) => xs.slice(0, 3).join('; ') + (xs.length > 3 ? `; … (${xs.length} in all)` : '');

// Store test helpers: an ImageCommit made from a test image, temp stores, and a snapshot of a store's state.
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ImageCommit } from '../../src/store/store.js';
import type { TestImage } from './images.js';

export function commitOf(img: TestImage, names: string[] = []): ImageCommit {
  return {
    config: img.config,
    configDigest: img.configDigest,
    manifest: img.manifest,
    manifestDigest: img.manifestDigest,
    layers: img.layers.map((l) => ({ diffID: l.diffID, digest: l.digest, size: l.size, open: async () => Readable.from([l.blob]) })),
    names,
  };
}

export function storeDirs(base: string): { root: string; runroot: string } {
  return { root: path.join(base, 'root'), runroot: path.join(base, 'run') };
}

/** Everything under the graphroot that is not a lock file: path → content hash or link target, JSON parsed. */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      const st = fs.lstatSync(p);
      if (name.endsWith('.lock')) continue;
      if (st.isDirectory()) {
        out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(p);
      } else if (st.isSymbolicLink()) {
        out[rel] = `-> ${fs.readlinkSync(p)}`;
      } else if (st.isFile()) {
        out[rel] = fs.readFileSync(p).toString('base64');
      } else {
        out[rel] = `special ${st.mode.toString(8)} ${st.rdev}`;
      }
    }
  };
  walk(root);
  return out;
}

export function readJson<T = unknown>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

// Applies each tar a manifest names into a fresh directory through the built package (dist/), then clones every
// applied tree and rebuilds its tar from the tar-split, and prints one JSON line: the process's path resolver and,
// per tar, the outcome (error code and path, or the tree, the clone's tree and the rebuilt tar's digest).
// Run by test/openat2-fallback.test.ts, once as is and once under a seccomp filter that denies openat2, to compare.
// Usage: node apply-tars.mjs MANIFEST.json   ({ "work": DIR, "cases": [{ "name": ..., "tar": PATH }] })
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const { applyLayer, assembleLayer, cloneTree } = await import(path.join(dist, 'index.js'));
const { native } = await import(path.join(dist, 'native.js'));

function listing(root) {
  const out = [];
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/ ${mode}`);
        walk(r);
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
        out.push(`${r} ${mode} ${st.size} ${sha} links=${st.nlink}`);
      } else out.push(`${r} special ${mode} ${st.rdev}`);
    }
  };
  walk('');
  return out;
}

async function digestOf(stream) {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk);
  return h.digest('hex');
}

const manifest = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const [i, c] of manifest.cases.entries()) {
  const dir = path.join(manifest.work, `layer-${i}`);
  const split = path.join(manifest.work, `layer-${i}.tar-split.gz`);
  fs.mkdirSync(dir);
  try {
    const r = await applyLayer(c.tar, dir, { rootless: true, tarSplit: split });
    const clone = `${dir}-clone`;
    await cloneTree(dir, clone);
    const rebuilt = await digestOf(assembleLayer(split, dir));
    results.push({
      name: c.name,
      ok: true,
      diffDigest: r.diffDigest,
      skipped: r.skipped,
      tree: listing(dir),
      clone: listing(clone),
      rebuilt: `sha256:${rebuilt}`,
    });
  } catch (e) {
    results.push({ name: c.name, ok: false, code: e.code, path: e.path, left: listing(dir) });
  }
}
process.stdout.write(`${JSON.stringify({ resolver: native.pathResolver(), results })}\n`);

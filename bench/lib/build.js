// The Carrier build the benchmark runs: a copy of dist/, package.json and the addon taken at the start, so a rebuild
// in the repository meanwhile cannot mix two builds in one set of results.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { sha256File } from './util.js';

const requireHere = createRequire(import.meta.url);

/** What a package root would run: the addon node-gyp-build picks (local build, else prebuild) and dist/'s digest. */
async function describeBuild(root) {
  const file = requireHere('node-gyp-build').path(root);
  const st = fs.statSync(file);
  const h = createHash('sha256');
  const dist = path.join(root, 'dist');
  for (const f of fs.readdirSync(dist, { recursive: true }).map(String).sort()) {
    if (f.endsWith('.js')) h.update(`${f}\0`).update(fs.readFileSync(path.join(dist, f)));
  }
  return {
    addon: path.relative(root, file),
    addonFile: file,
    addonDigest: (await sha256File(file)).slice(7),
    addonSize: st.size,
    addonMtime: st.mtime.toISOString(),
    distDigest: h.digest('hex'),
  };
}

/**
 * Copies dist/, package.json and the addon to bench/work/build/<pid>/ and loads carrier from there (one copy per
 * benchmark process, removed when it exits, so two benchmark processes never share or replace each other's copy).
 */
export async function loadCarrier(repoRoot, workDir) {
  try {
    const build = await describeBuild(repoRoot);
    const base = path.join(workDir, 'build');
    fs.mkdirSync(base, { recursive: true });
    for (const n of fs.readdirSync(base)) {
      // copies of benchmark processes that are gone (and the old single copy: dist/, package.json, build/, prebuilds/)
      if (!/^\d+$/.test(n) || !fs.existsSync(`/proc/${n}`)) fs.rmSync(path.join(base, n), { recursive: true, force: true });
    }
    const snap = path.join(base, String(process.pid));
    process.once('exit', () => fs.rmSync(snap, { recursive: true, force: true }));
    fs.cpSync(path.join(repoRoot, 'dist'), path.join(snap, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(snap, 'package.json'));
    fs.mkdirSync(path.dirname(path.join(snap, build.addon)), { recursive: true });
    fs.copyFileSync(build.addonFile, path.join(snap, build.addon));
    const entry = path.join(snap, 'dist', 'index.js');
    const mod = await import(pathToFileURL(entry).href);
    const loaded = await describeBuild(snap);
    if (loaded.addonDigest !== build.addonDigest || loaded.distDigest !== build.distDigest) {
      throw new Error('the copy of the build in bench/work/build differs from the repository build');
    }
    const binary = `${build.addon} (${build.addonSize} bytes, modified ${build.addonMtime}, sha256 ${build.addonDigest.slice(0, 12)}…)`;
    return { version: mod.version, entry, binary, build, error: null };
  } catch (e) {
    return { version: null, entry: null, error: e };
  }
}

/** The repository build changed since the copy was taken? (a sentence for the report, or undefined) */
export async function buildChanged(repoRoot, carrier) {
  if (!carrier.build) return undefined;
  try {
    const now = await describeBuild(repoRoot);
    const what = [
      now.addonDigest !== carrier.build.addonDigest ? `the addon (now sha256 ${now.addonDigest.slice(0, 12)}…, modified ${now.addonMtime})` : '',
      now.distDigest !== carrier.build.distDigest ? 'dist/' : '',
    ].filter(Boolean);
    if (what.length) return `the repository build changed during the run (${what.join(' and ')}); every run used the copy taken at the start`;
  } catch {}
  return undefined;
}

// The pull suite's two images (the distro-sized single layer and the three layers of small files, each in a gzip and
// a zstd variant) served by a local registry: what the push suite pulls into its source stores before it pushes them
// elsewhere. The registry's storage is bench/work/registry/data, shared with the pull suite (an image already there
// with the same manifest is not pushed again).
import fs from 'node:fs';
import path from 'node:path';
import { buildFixture } from './fixture.js';
import { startRegistry, pushLayers } from './registry.js';
import { buildSmallFilesLayers } from '../suites/pull/fixture.js';

/**
 * Builds (or reuses) the fixtures for `cfg` ({ distro, smallfiles } size targets, as the pull suite's configuration),
 * starts the registry and makes sure it serves every variant. Resolves { reg, variants: [{ id, image, title,
 * compression, ref, tarSize, compressedSize, entries, layers, manifestDigest, configDigest, diffIds, blobDigests }] };
 * stop the registry with reg.stop().
 */
export async function serveImages(workDir, cfg, { log, mode }) {
  const distro = await buildFixture(workDir, { ...cfg.distro, log });
  const small = await buildSmallFilesLayers(workDir, { ...cfg.smallfiles, log });
  const defs = [
    { name: 'distro', title: 'distro-sized single layer', key: distro.key, layers: [{ tar: distro.tar, gzip: distro.gzip, zstd: distro.zstd, meta: distro.meta, entries: distro.entries }] },
    { name: 'smallfiles', title: 'three layers of small files', key: small.key, layers: small.layers },
  ];
  const registryRoot = path.join(workDir, 'registry');
  const stateFile = path.join(registryRoot, 'images.json');
  let state = {};
  try {
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch {}
  const keys = defs.map((d) => `${d.name}-${d.key}`).join(',');
  if (state[mode] && state[mode] !== keys) {
    log('registry: the fixture images changed since the last run; emptying bench/work/registry/data');
    fs.rmSync(path.join(registryRoot, 'data'), { recursive: true, force: true });
    state = {};
  }
  const reg = await startRegistry(path.join(registryRoot, 'data'));
  try {
    const variants = [];
    for (const def of defs) {
      const repo = `bench/${def.name}-${def.key}`;
      const compressions = ['gzip', 'zstd'];
      const { images } = await pushLayers(reg, workDir, { layoutName: `oci-${def.name}-${def.key}`, name: def.name, repo, layers: def.layers, compressions, log });
      for (const c of compressions) {
        const img = images[c];
        variants.push({
          id: `${def.name}/${c}`,
          image: def.name,
          title: def.title,
          compression: c,
          ref: { host: reg.host, repo, tag: c, name: `${reg.host}/${repo}:${c}` },
          layers: def.layers.map((l) => ({ tar: l.meta.tar, [c]: l.meta[c], entries: l.entries })),
          manifestDigest: img.manifestDigest,
          configDigest: img.configDigest,
          diffIds: img.diffIds,
          blobDigests: img.layers.map((l) => l.digest),
          compressedSize: img.layers.reduce((a, l) => a + l.size, 0),
          tarSize: def.layers.reduce((a, l) => a + l.meta.tar.size, 0),
          entries: def.layers.reduce((a, l) => a + l.entries, 0),
        });
      }
    }
    fs.writeFileSync(stateFile, JSON.stringify({ ...state, [mode]: keys }) + '\n');
    return { reg, variants };
  } catch (e) {
    await reg.stop();
    throw e;
  }
}

// Images made straight from plain layer tars and committed to a Carrier store through the store API of the copied
// build's public API (no registry, no pull): the fixtures of the checkout and containers suites.
import { pathToFileURL } from 'node:url';
import { sha256 } from './util.js';

/**
 * What Store.commitImage takes for an image of `layers` ([{ tar, diffID, size }], uncompressed): an OCI config (with
 * `config` as its runtime config when given) and manifest, and every layer opened from its tar.
 */
export function tarImage(layers, config) {
  const configBytes = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', ...(config ? { config } : {}), rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(configBytes), size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffID, size: l.size })),
  }));
  return {
    config: configBytes,
    configDigest: sha256(configBytes),
    manifest,
    manifestDigest: sha256(manifest),
    layers: layers.map((l) => ({ diffID: l.diffID, open: async () => l.tar })),
  };
}

/** Opens the store at { root, runroot } with the build whose public entry (dist/index.js) is `entry`, runs fn(store), closes it. */
export async function withStore(entry, where, fn) {
  const { Store } = await import(pathToFileURL(entry).href);
  const store = await Store.open(where);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

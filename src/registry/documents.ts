// Small judgements on the documents a registry serves, kept out of the request flow.
import { MAX_DOCUMENT_BYTES } from '../oci/manifest.js';
import { printable } from './http.js';

/** A body `{"schemaVersion": 1, ...}` served with a generic content type. */
export function hasSchemaVersion1(bytes: Buffer): boolean {
  if (bytes.length > MAX_DOCUMENT_BYTES) return false;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { schemaVersion?: unknown };
    return doc?.schemaVersion === 1;
  } catch {
    return false;
  }
}

/** How many distinct platforms an error message lists before it says "and N more". */
const PLATFORMS_LISTED = 12;

/**
 * The platforms an index offers, for an error message: distinct, at most PLATFORMS_LISTED of them, each printable and
 * short, so an index with thousands of entries yields one short line.
 */
export function describePlatforms(manifests: readonly { platform?: { os: string; architecture: string; variant?: string } | undefined }[]): string {
  const seen = new Set<string>();
  for (const m of manifests) {
    const p = m.platform;
    seen.add(p ? printable(`${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`, 60) : '?');
  }
  if (seen.size === 0) return 'nothing';
  const all = [...seen];
  const shown = all.slice(0, PLATFORMS_LISTED).join(', ');
  return all.length > PLATFORMS_LISTED ? `${shown} and ${all.length - PLATFORMS_LISTED} more, in ${manifests.length} entries` : shown;
}

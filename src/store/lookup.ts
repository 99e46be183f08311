// Finding an image the way podman's libimage does: by id (full, `sha256:`-prefixed, or a unique prefix), by name
// (a short name matches `localhost/NAME`, `docker.io/library/NAME` and then any registry's `…/NAME`), or by digest.
import { normalizeLocalName, parseReference } from '../reference.js';

export interface ImageLookup {
  id: string;
  names: string[];
  digests: string[];
}

/** A name as `podman tag` records it: full reference, `localhost/` when it names no registry, `:latest` when untagged. */
export function normalizeTagName(name: string): string {
  return normalizeLocalName(name);
}

export function findImage<T extends ImageLookup>(images: readonly T[], query: string): T | undefined {
  const q = query.trim();
  if (q === '') return undefined;
  // ids
  const idQuery = q.startsWith('sha256:') ? q.slice(7) : q;
  if (/^[0-9a-f]{64}$/.test(idQuery)) {
    const byId = images.find((i) => i.id === idQuery);
    if (byId) return byId;
    if (q.startsWith('sha256:')) return images.find((i) => i.digests.includes(q));
  }
  // exact names as stored
  const exact = images.find((i) => i.names.includes(q));
  if (exact) return exact;
  // references
  let ref: ReturnType<typeof parseReference> | undefined;
  try {
    ref = parseReference(q);
  } catch {
    ref = undefined;
  }
  if (ref) {
    const explicitDomain = hasExplicitDomain(q);
    if (ref.digest) {
      const repoOf = (n: string): string => n.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
      const wantRepo = `${ref.domain}/${ref.path}`;
      const hit = images.find((i) => i.digests.includes(ref!.digest!) && (i.names.length === 0 || i.names.some((n) => repoOf(n) === wantRepo || (!explicitDomain && repoOf(n).endsWith('/' + ref!.path.replace(/^library\//, ''))))));
      if (hit) return hit;
    } else {
      const tag = ref.tag ?? 'latest';
      const candidates = explicitDomain
        ? [`${ref.domain}/${ref.path}:${tag}`]
        : [`localhost/${shortPath(q)}:${tag}`, `docker.io/${ref.path}:${tag}`, `${ref.domain}/${ref.path}:${tag}`];
      for (const c of candidates) {
        const hit = images.find((i) => i.names.includes(c));
        if (hit) return hit;
      }
      if (!explicitDomain) {
        const suffix = `/${shortPath(q)}:${tag}`;
        const hits = images.filter((i) => i.names.some((n) => n.endsWith(suffix)));
        if (hits.length === 1) return hits[0];
      }
    }
  }
  // a unique id prefix (podman accepts any unique prefix of the id)
  if (!q.startsWith('sha256:') && /^[0-9a-f]{1,63}$/.test(idQuery)) {
    const hits = images.filter((i) => i.id.startsWith(idQuery));
    if (hits.length === 1) return hits[0];
  }
  return undefined;
}

function hasExplicitDomain(q: string): boolean {
  const first = q.split('/')[0]!;
  return q.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
}

/** The repository path as typed, without tag or digest. */
function shortPath(q: string): string {
  return q.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
}

/**
 * Which requirements of a policy apply to an image: the transport's scopes from the most specific to the least, then
 * the transport's `""` scope, then `default` — the lookup containers/image does (policy_eval.go with each transport's
 * PolicyConfigurationIdentity and PolicyConfigurationNamespaces).
 */
import { formatReference, parseReference, repositoryName, type ImageReference } from '../reference.js';
import type { Policy, PolicyRequirement } from './policy.js';

/** The transports Carrier reads images from, by containers/image's names. */
export type PolicyTransport = 'docker' | 'oci' | 'oci-archive' | 'docker-archive' | 'containers-storage';

/** An image as the policy sees it. */
export type PolicyImage =
  | { transport: 'docker'; reference: ImageReference }
  /** `path`: absolute, symbolic links resolved (the caller resolves it). */
  | { transport: 'oci' | 'oci-archive'; path: string }
  /**
   * `store`: the store's driver and graph root, when known; `name`: the full name the image was named by (with its
   * tag); `id`: the image id, when it was named by id.
   */
  | { transport: 'containers-storage'; store?: { driver: string; graphroot: string }; name?: string; id?: string }
  | { transport: 'docker-archive' };

/** The scopes to try for an image, most specific first (without the transport's `""`). */
export function policyScopes(image: PolicyImage): string[] {
  switch (image.transport) {
    case 'docker':
      return [dockerIdentity(image.reference), ...dockerNamespaces(image.reference)];
    case 'oci':
    case 'oci-archive': {
      const out: string[] = [];
      for (let p = image.path; p !== '/' && p.includes('/'); p = p.slice(0, p.lastIndexOf('/')) || '/') out.push(p);
      return out;
    }
    case 'containers-storage':
      return storageScopes(image);
    default:
      return [];
  }
}

/**
 * containers/image's storage identity and namespaces: `[driver@graphroot]name:tag` (or `…@id`, `[…]@id`), then
 * `[driver@graphroot]` before each repository component from the full name to the host, then the store
 * (`[driver@graphroot]`), then the graph root alone (`[graphroot]`).
 */
function storageScopes(image: { store?: { driver: string; graphroot: string }; name?: string; id?: string }): string[] {
  if (image.store === undefined) return [];
  const spec = `[${image.store.driver}@${image.store.graphroot}]`;
  const out = [`${spec}${image.name ?? ''}${image.id !== undefined ? `@${image.id}` : ''}`];
  if (image.name !== undefined) {
    if (image.id !== undefined) out.push(spec + image.name);
    const ref = parseReference(image.name);
    const components = repositoryName(ref).split('/');
    for (let n = components.length; n > 0; n--) out.push(spec + components.slice(0, n).join('/'));
  }
  out.push(spec, `[${image.store.graphroot}]`);
  return out;
}

/** `domain/path:tag` or `domain/path@digest` (a digest wins over a tag, as podman drops the tag then). */
export function dockerIdentity(ref: ImageReference): string {
  if (ref.digest !== undefined) return `${repositoryName(ref)}@${ref.digest}`;
  return formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' });
}

/** The repository, each parent namespace, the host, then `*.` wildcards of the host without its port. */
export function dockerNamespaces(ref: ImageReference): string[] {
  const out: string[] = [];
  let name = repositoryName(ref);
  for (;;) {
    out.push(name);
    const slash = name.lastIndexOf('/');
    if (slash === -1) break;
    name = name.slice(0, slash);
  }
  const colon = name.indexOf(':');
  if (colon !== -1) name = name.slice(0, colon);
  for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.')) {
    name = name.slice(dot + 1);
    out.push(`*.${name}`);
  }
  return out;
}

export interface AppliedRequirements {
  /** Where in the policy they come from: `default`, or `transports.docker["docker.io/library"]`. */
  section: string;
  requirements: PolicyRequirement[];
}

export function requirementsFor(policy: Policy, image: PolicyImage): AppliedRequirements {
  const scopes = Object.hasOwn(policy.transports, image.transport) ? policy.transports[image.transport] : undefined;
  if (scopes !== undefined) {
    for (const scope of [...policyScopes(image), '']) {
      const reqs = Object.hasOwn(scopes, scope) ? scopes[scope] : undefined;
      if (reqs !== undefined) return { section: `transports.${image.transport}["${scope}"]`, requirements: reqs };
    }
  }
  return { section: 'default', requirements: policy.default };
}

/**
 * The signature policy as one call for a copy: find and read policy.json and registries.d, see the source image as
 * the policy sees it (from its transport reference: `docker://…`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
 * `docker-archive:…`, `containers-storage:…`), and evaluate. Meant to run after the source's manifest is read and
 * before any layer is: signatures cover the manifest digest.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { CarrierError } from '../errors.js';
import { parseReference } from '../reference.js';
import { evaluatePolicy, type PolicyDecision } from './evaluate.js';
import { loadPolicy, type PolicySource } from './policy.js';
import { loadRegistriesD } from './registries-d.js';
import type { PolicyImage } from './scopes.js';
import { fetchDockerSignatures, type FetchedSignatures, type SignatureRegistry, type UntrustedSignature } from './signatures.js';

/** What a source offers the check (the copy pipeline's ImageSource has it). */
export interface PolicyCheckedImage {
  /** A transport reference as skopeo writes it. */
  readonly reference: string;
  /** The image manifest's bytes and digest. */
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  /** The index the manifest was chosen from (signatures are checked on the manifest itself, as podman does). */
  readonly list?: { readonly bytes: Buffer; readonly digest: string };
}

export interface CheckSignaturePolicyOptions {
  /** policy.json to use (`--signature-policy`); default: ~/.config/containers/policy.json, else /etc/containers/policy.json. */
  signaturePolicy?: string;
  /** An already loaded policy (skips finding and reading the file). */
  policy?: PolicySource;
  /** registries.d directory; default: ~/.config/containers/registries.d, else /etc/containers/registries.d. */
  registriesDir?: string;
  home?: string;
  /** The registry client, for sigstore attachments of docker:// images. */
  registry?: SignatureRegistry;
  signal?: AbortSignal;
  /** Reads the image's signatures (default: {@link readSourceSignatures}); a copy shares one read with what it keeps. */
  signatures?: () => Promise<FetchedSignatures>;
}

async function resolvedPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await realpath(abs);
  } catch {
    try {
      return path.join(await realpath(path.dirname(abs)), path.basename(abs));
    } catch {
      return abs;
    }
  }
}

/**
 * A store image as containers/image names it: `[driver@graphroot+runroot…]` then a name, `@id`, or a bare id (as the
 * store source writes an image found by id). podman push names the image by id alone; Carrier's source carries the
 * name it was found by, as skopeo copy containers-storage:NAME does.
 */
function storageImage(rest: string): PolicyImage {
  const spec = /^\[([^\]]*)\]/.exec(rest);
  if (!spec) return { transport: 'containers-storage' };
  const inside = spec[1]!;
  const at = inside.indexOf('@');
  const root = at === -1 ? inside : inside.slice(at + 1);
  const store = { driver: at === -1 ? '' : inside.slice(0, at), graphroot: root.split(/[+:]/)[0]! };
  let named = rest.slice(spec[0].length);
  let id: string | undefined;
  const idAt = /@([0-9a-f]{64})$/.exec(named);
  if (idAt) {
    id = idAt[1]!;
    named = named.slice(0, idAt.index);
  } else if (/^[0-9a-f]{64}$/.test(named)) {
    id = named;
    named = '';
  }
  return { transport: 'containers-storage', store, ...(named !== '' ? { name: named } : {}), ...(id !== undefined ? { id } : {}) };
}

/** The image as policy scopes see it, from a transport reference. */
export async function policyImageOf(reference: string): Promise<PolicyImage> {
  const colon = reference.indexOf(':');
  const transport = reference.slice(0, colon);
  const rest = reference.slice(colon + 1);
  switch (transport) {
    case 'docker':
      return { transport, reference: parseReference(rest.replace(/^\/\//, '')) };
    case 'oci':
    case 'oci-archive': {
      const sep = rest.indexOf(':');
      return { transport, path: await resolvedPath(sep < 0 ? rest : rest.slice(0, sep)) };
    }
    case 'containers-storage':
      return storageImage(rest);
    case 'docker-archive':
      return { transport };
    default:
      throw new CarrierError('CARRIER_INVALID_REFERENCE', `the signature policy cannot place "${reference}": unknown transport`);
  }
}

/**
 * The signatures a source image carries, untrusted: a registry image's from its lookaside store and sigstore
 * attachments (as registries.d says); a store image's from the store (`stored`); an OCI layout or archive carries none.
 * They are the ones of the image manifest pulled, not of an index it was chosen from: containers/image checks the
 * instance it copies, and keeps that instance's signatures.
 */
export async function readSourceSignatures(
  image: PolicyCheckedImage,
  opts: Omit<CheckSignaturePolicyOptions, 'signaturePolicy' | 'policy' | 'signatures'> & { stored?: () => Promise<UntrustedSignature[]> } = {},
): Promise<FetchedSignatures> {
  if (opts.stored) return { signatures: await opts.stored(), lookedAt: [`the store's record of ${image.reference}`] };
  const policyImage = await policyImageOf(image.reference);
  if (policyImage.transport !== 'docker') return { signatures: [], lookedAt: [`the ${policyImage.transport} image itself (it carries no signatures)`] };
  const home = opts.home === undefined ? {} : { home: opts.home };
  const registries = await loadRegistriesD({ ...home, ...(opts.registriesDir === undefined ? {} : { registriesDir: opts.registriesDir }) });
  return fetchDockerSignatures(policyImage.reference, image.manifestDigest, {
    registries,
    ...(opts.registry === undefined ? {} : { registry: opts.registry }),
    ...home,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
}

/** Allows the image or throws CARRIER_POLICY_DENIED (CARRIER_INVALID_POLICY for a policy file that cannot be read). */
export async function checkSignaturePolicy(image: PolicyCheckedImage, opts: CheckSignaturePolicyOptions = {}): Promise<PolicyDecision> {
  const home = opts.home === undefined ? {} : { home: opts.home };
  const source = opts.policy ?? (await loadPolicy({ ...home, ...(opts.signaturePolicy === undefined ? {} : { signaturePolicy: opts.signaturePolicy }) }));
  return evaluatePolicy(source, {
    image: await policyImageOf(image.reference),
    manifest: image.manifest,
    fetchSignatures: opts.signatures ?? (() => readSourceSignatures(image, opts)),
  });
}

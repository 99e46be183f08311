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
import { fetchDockerSignatures, type SignatureRegistry } from './signatures.js';

/** What a source offers the check (the copy pipeline's ImageSource has it). */
export interface PolicyCheckedImage {
  /** A transport reference as skopeo writes it. */
  readonly reference: string;
  /** The image manifest's bytes and digest. */
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  /** The index the manifest was chosen from: signatures cover the top-level document. */
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
    case 'docker-archive':
    case 'containers-storage':
      return { transport };
    default:
      throw new CarrierError('CARRIER_INVALID_REFERENCE', `the signature policy cannot place "${reference}": unknown transport`);
  }
}

/** Allows the image or throws CARRIER_POLICY_DENIED (CARRIER_INVALID_POLICY for a policy file that cannot be read). */
export async function checkSignaturePolicy(image: PolicyCheckedImage, opts: CheckSignaturePolicyOptions = {}): Promise<PolicyDecision> {
  const home = opts.home === undefined ? {} : { home: opts.home };
  const source = opts.policy ?? (await loadPolicy({ ...home, ...(opts.signaturePolicy === undefined ? {} : { signaturePolicy: opts.signaturePolicy }) }));
  const policyImage = await policyImageOf(image.reference);
  const top = image.list ?? { bytes: image.manifest, digest: image.manifestDigest };
  return evaluatePolicy(source, {
    image: policyImage,
    manifest: top.bytes,
    fetchSignatures: async () => {
      if (policyImage.transport !== 'docker') return { signatures: [], lookedAt: [`the ${policyImage.transport} image itself (it carries no signatures)`] };
      const registries = await loadRegistriesD({ ...home, ...(opts.registriesDir === undefined ? {} : { registriesDir: opts.registriesDir }) });
      return fetchDockerSignatures(policyImage.reference, top.digest, {
        registries,
        ...(opts.registry === undefined ? {} : { registry: opts.registry }),
        ...home,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
    },
  });
}

/**
 * Evaluating a policy for one image, once, before any layer is fetched: every requirement of the scope that applies
 * must allow the image (containers/image's IsRunningImageAllowed). A signature requirement is met by one signature
 * that verifies with a trusted key, whose `docker-manifest-digest` is the digest of the manifest pulled, and whose
 * `docker-reference` satisfies `signedIdentity`. A refusal is CARRIER_POLICY_DENIED with the reason.
 */
import { createHash } from 'node:crypto';
import { CarrierError } from '../errors.js';
import { formatReference, type ImageReference } from '../reference.js';
import { loadGpgKeys, verifySimpleSigning, type TrustedGpgKeys } from './gpg.js';
import { describeIdentity, identityMatches, type IdentityMatch } from './identity.js';
import { SignatureRejected, type SignedClaims } from './payload.js';
import type { Policy, PolicyRequirement, PolicySource } from './policy.js';
import { policyScopes, requirementsFor, type PolicyImage } from './scopes.js';
import { SIGSTORE_SIGNATURE_MEDIA_TYPE, type FetchedSignatures, type UntrustedSignature } from './signatures.js';
import { loadPublicKeys, verifySigstore, type TrustedPublicKeys } from './sigstore.js';

export interface PolicyEvaluationInput {
  image: PolicyImage;
  /** The manifest fetched (the top-level one: an index when the reference named one); signatures cover its digest. */
  manifest: Buffer;
  /** Reads the image's signatures; called at most once, and only when a requirement needs signatures. */
  fetchSignatures: () => Promise<FetchedSignatures>;
}

export interface PolicyDecision {
  /** The policy file, or undefined when none exists and everything is accepted. */
  policyPath: string | undefined;
  /** Which part of the policy applied (`default`, `transports.docker["…"]`), when there is a policy. */
  section?: string;
  /** The requirements that allowed the image. */
  requirements: PolicyRequirement[];
}

/** The image's name as podman prints it in policy messages. */
export function policyImageName(image: PolicyImage): string {
  switch (image.transport) {
    case 'docker':
      return `docker://${formatReference(intendedReference(image.reference))}`;
    case 'oci':
    case 'oci-archive':
      return `${image.transport}:${image.path}`;
    case 'containers-storage':
      return `containers-storage:${policyScopes(image)[0] ?? ''}`;
    default:
      return `${image.transport}:`;
  }
}

/** The reference pulled, as signatures are matched against it: a tag defaults to `latest`; a digest wins. */
function intendedReference(ref: ImageReference): ImageReference {
  if (ref.digest !== undefined) return { domain: ref.domain, path: ref.path, digest: ref.digest };
  return { domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' };
}

function digestOf(manifest: Buffer, algorithm: string): string | undefined {
  if (algorithm !== 'sha256' && algorithm !== 'sha512' && algorithm !== 'sha384') return undefined;
  return `${algorithm}:${createHash(algorithm).update(manifest).digest('hex')}`;
}

/**
 * Decides whether `input.image` may be pulled under `source` (from {@link loadPolicy}, or a parsed policy). Resolves
 * with what allowed it; rejects with CARRIER_POLICY_DENIED.
 */
export async function evaluatePolicy(source: PolicySource | Policy, input: PolicyEvaluationInput): Promise<PolicyDecision> {
  const { path: policyPath, policy } = 'default' in source ? { path: undefined, policy: source } : source;
  if (policy === undefined) return { policyPath: undefined, requirements: [] };
  const { section, requirements } = requirementsFor(policy, input.image);
  const name = policyImageName(input.image);
  const where = `${policyPath ?? 'the signature policy'} (${section})`;
  const deny = (reason: string): CarrierError =>
    new CarrierError('CARRIER_POLICY_DENIED', `${name} is refused by ${where}: ${reason}`, policyPath === undefined ? {} : { path: policyPath });

  let fetched: Promise<FetchedSignatures> | undefined;
  const signatures = (): Promise<FetchedSignatures> => (fetched ??= input.fetchSignatures());
  const intended = input.image.transport === 'docker' ? intendedReference(input.image.reference) : undefined;
  const claimsOk = (claims: SignedClaims, identity: IdentityMatch, from: string): void => {
    const algorithm = claims.manifestDigest.split(':')[0] ?? '';
    const actual = digestOf(input.manifest, algorithm);
    if (actual === undefined || actual !== claims.manifestDigest) {
      const pulled = digestOf(input.manifest, 'sha256');
      throw new SignatureRejected(`the signature at ${from} is for manifest ${claims.manifestDigest}, not the manifest pulled (${pulled})`);
    }
    if (!identityMatches(identity, intended, claims.dockerReference)) {
      throw new SignatureRejected(`the signature at ${from} is for ${claims.dockerReference}, not ${describeIdentity(identity, intended)} (signedIdentity ${identity.type})`);
    }
  };

  for (const req of requirements) {
    switch (req.type) {
      case 'insecureAcceptAnything':
        continue;
      case 'reject':
        throw deny('the policy rejects it (requirement "reject")');
      case 'signedBaseLayer':
        throw deny('policy requirement signedBaseLayer is not supported');
      case 'signedBy': {
        if (req.keyType !== 'GPGKeys') throw deny(`signedBy keyType "${req.keyType}" is not supported (only GPGKeys)`);
        const got = await signatures();
        let keys: Promise<TrustedGpgKeys> | undefined;
        await oneAccepted(got, 'simple-signing', 'signedBy', deny, async (sig) => {
          if (sig.format !== 'simple-signing') return;
          const trusted = await (keys ??= loadGpgKeys(req));
          const claims = await verifySimpleSigning(sig.blob, trusted, sig.from);
          claimsOk(claims, req.signedIdentity, sig.from);
        });
        continue;
      }
      case 'sigstoreSigned': {
        if (req.fulcio !== undefined) throw deny('policy requirement fulcio is not supported');
        if (req.rekorPublicKeyPath !== undefined || req.rekorPublicKeyData !== undefined) {
          throw deny('policy requirement rekorPublicKey is not supported');
        }
        const got = await signatures();
        let keys: Promise<TrustedPublicKeys> | undefined;
        await oneAccepted(got, 'sigstore', 'sigstoreSigned', deny, async (sig) => {
          if (sig.format !== 'sigstore') return;
          const claims = verifySigstore(sig, await (keys ??= loadPublicKeys(req)));
          claimsOk(claims, req.signedIdentity, sig.from);
        });
        continue;
      }
    }
  }
  return { policyPath, section, requirements };
}

/** Resolves when one signature of `format` is accepted by `check`; otherwise throws the denial with every reason. */
async function oneAccepted(
  got: FetchedSignatures,
  format: UntrustedSignature['format'],
  requirement: string,
  deny: (reason: string) => CarrierError,
  check: (sig: UntrustedSignature) => Promise<void>,
): Promise<void> {
  const candidates = got.signatures.filter(
    (s) => s.format === format && (s.format !== 'sigstore' || s.mediaType === SIGSTORE_SIGNATURE_MEDIA_TYPE),
  );
  if (candidates.length === 0) {
    const others = got.signatures.length > 0 ? ` (${got.signatures.length} signature(s) of another kind were found)` : '';
    throw deny(`requirement ${requirement} needs a signature, and no ${format} signature was found at ${got.lookedAt.join(' or ')}${others}`);
  }
  const reasons: string[] = [];
  for (const sig of candidates) {
    try {
      await check(sig);
      return;
    } catch (err) {
      if (!(err instanceof SignatureRejected)) throw err;
      reasons.push(err.message);
    }
  }
  throw deny(reasons.length === 1 ? reasons[0]! : `none of the ${reasons.length} signatures was accepted: ${reasons.join('; ')}`);
}

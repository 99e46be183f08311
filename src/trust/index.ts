// Signature policy: policy.json, registries.d, signature fetching and verification.
export { findPolicyFile, loadPolicy, parsePolicy, SYSTEM_POLICY_PATH } from './policy.js';
export type { Policy, PolicyRequirement, PolicySource, LoadPolicyOptions, IdentityMatch } from './policy.js';
export { requirementsFor, policyScopes, dockerIdentity, dockerNamespaces } from './scopes.js';
export type { PolicyImage, PolicyTransport, AppliedRequirements } from './scopes.js';
export { loadRegistriesD, findRegistriesDir, lookasideBase, lookasideUrl, usesSigstoreAttachments, SYSTEM_REGISTRIES_D } from './registries-d.js';
export type { RegistriesD, RegistryNamespace, LoadRegistriesDOptions } from './registries-d.js';
export { fetchDockerSignatures, signatureFromBlob, signatureToBlob } from './signatures.js';
export { gpgSigner, sigstoreSigner, signaturePayload, readPassphraseFile } from './sign.js';
export { decryptSigstoreKey, ENCRYPTED_SIGSTORE_KEY_PEM, ENCRYPTED_COSIGN_KEY_PEM } from './cosign-key.js';
export type { ManifestSigner, GpgSignerOptions, SigstoreSignerOptions } from './sign.js';
export type { UntrustedSignature, SignatureRegistry, FetchedSignatures, FetchDockerSignaturesOptions } from './signatures.js';
export { evaluatePolicy, policyImageName } from './evaluate.js';
export type { PolicyEvaluationInput, PolicyDecision } from './evaluate.js';
export { describePolicy } from './describe.js';
export type { TrustRow } from './describe.js';
export { checkSignaturePolicy, policyImageOf, readSourceSignatures } from './check.js';
export type { PolicyCheckedImage, CheckSignaturePolicyOptions } from './check.js';

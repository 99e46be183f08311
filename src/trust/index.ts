// Signature policy: policy.json, registries.d, signature fetching and verification.
export { findPolicyFile, loadPolicy, parsePolicy, SYSTEM_POLICY_PATH } from './policy.js';
export type { Policy, PolicyRequirement, PolicySource, LoadPolicyOptions, IdentityMatch } from './policy.js';
export { requirementsFor, policyScopes, dockerIdentity, dockerNamespaces } from './scopes.js';
export type { PolicyImage, PolicyTransport, AppliedRequirements } from './scopes.js';
export { loadRegistriesD, findRegistriesDir, lookasideBase, lookasideUrl, usesSigstoreAttachments, SYSTEM_REGISTRIES_D } from './registries-d.js';
export type { RegistriesD, RegistryNamespace, LoadRegistriesDOptions } from './registries-d.js';
export { fetchDockerSignatures, signatureFromBlob } from './signatures.js';
export type { UntrustedSignature, SignatureRegistry, FetchedSignatures, FetchDockerSignaturesOptions } from './signatures.js';
export { evaluatePolicy, policyImageName } from './evaluate.js';
export type { PolicyEvaluationInput, PolicyDecision } from './evaluate.js';
export { describePolicy } from './describe.js';
export type { TrustRow } from './describe.js';
export { checkSignaturePolicy, policyImageOf } from './check.js';
export type { PolicyCheckedImage, CheckSignaturePolicyOptions } from './check.js';

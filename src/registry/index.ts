export { RegistryClient } from './client.js';
export { parseRetryAfter } from './http.js';
export type { RegistryClientOptions, GetManifestOptions, GetManifestResult, GetBlobOptions, FetchedDocument, ManifestSource } from './client.js';
export { loadCredentials, parseCreds, authFilePaths, staticCredentials } from './auth.js';
export type { Credentials, CredentialStore, CredentialOptions } from './auth.js';
export { parseChallenges } from './challenge.js';
export type { Challenge } from './challenge.js';
export { RegistryError } from './errors.js';

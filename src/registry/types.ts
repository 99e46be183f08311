// The registry client's options and results, and the internal shapes its parts share.
import type { Challenge } from './challenge.js';
import type { CredentialStore } from './auth.js';
import type { RegistriesConf } from '../registries-conf.js';
import type { ImageManifest, PlatformWant } from '../oci/manifest.js';

export interface RegistryClientOptions {
  /** false: plain http and untrusted TLS certificates are allowed for every registry (podman --tls-verify=false). */
  tlsVerify?: boolean;
  /** Mirrors, blocked and insecure registries, location rewrites. */
  registriesConf?: RegistriesConf;
  credentials?: CredentialStore;
  userAgent?: string;
  /** Retries per request on connection errors, 408, 429 and 5xx; and resumes of a blob without progress. Default 5. */
  maxRetries?: number;
  /** First backoff delay, doubled per attempt (with jitter), capped at 10 s. Default 200 ms. */
  retryBaseMs?: number;
  /** Longest Retry-After honoured (ms); longer values are clamped. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Time to wait for response headers, and the longest pause between body chunks. Default 60 s. */
  requestTimeoutMs?: number;
  /** Cancels everything this client does. */
  signal?: AbortSignal;
  /** Warnings (ignored settings); never given credentials. */
  onWarning?: (message: string) => void;
}

/** The endpoint that served a manifest. */
export interface ManifestSource {
  registry: string;
  repository: string;
  mirror: boolean;
  /** `https://host` or `http://host` actually used. */
  origin: string;
}

export interface FetchedDocument {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface GetManifestOptions {
  /** Accept header values (default: OCI and Docker schema 2 manifests and indexes). */
  accept?: string[];
  /** Platform to pick from an index (default: this machine). */
  platform?: PlatformWant;
  signal?: AbortSignal;
}

export interface GetManifestResult extends FetchedDocument {
  /** The image manifest, parsed and validated. */
  manifest: ImageManifest;
  /** The index / manifest list it was chosen from, when the reference named one. */
  list?: FetchedDocument;
  source: ManifestSource;
}

export interface GetBlobOptions {
  /** The descriptor's size: more bytes are refused, fewer mean the download resumes. */
  size?: number;
  signal?: AbortSignal;
  /** Bytes delivered so far (after each chunk). */
  onProgress?: (bytes: number, total: number | undefined) => void;
}

export interface Target {
  /** Registry name (credentials key): `docker.io`, `host:port`. */
  registry: string;
  /** Host contacted: `registry-1.docker.io` for docker.io. */
  apiHost: string;
  repository: string;
  insecure: boolean;
  mirror: boolean;
}

export interface HostState {
  origin: string;
  challenge: Challenge | null;
}

export interface CachedToken {
  value: string;
  expires: number;
}


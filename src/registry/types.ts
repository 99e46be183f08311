// The registry client's options and results, and the internal shapes its parts share.
import type { Readable } from 'node:stream';
import type { Challenge } from './challenge.js';
import type { CredentialStore } from './auth.js';
import type { RegistriesConf } from '../registries-conf.js';
import type { ImageManifest, PlatformWant } from '../oci/manifest.js';

export interface RegistryClientOptions {
  /** false: plain http and untrusted TLS certificates are allowed for every registry (podman --tls-verify=false). */
  tlsVerify?: boolean;
  /**
   * A directory of certificates (`*.crt` authorities, `*.cert` + `*.key` client certificate) for every registry
   * (podman --cert-dir). Default: the registry's certs.d directory (src/registry/certs.ts), if any.
   */
  certDir?: string;
  /** Mirrors, blocked and insecure registries, location rewrites. */
  registriesConf?: RegistriesConf;
  credentials?: CredentialStore;
  userAgent?: string;
  /** Retries per request on connection errors, 408, 429 and 5xx; and resumes of a blob without progress. Default 5. */
  maxRetries?: number;
  /** First backoff delay, doubled per attempt (with jitter), capped at 10 s. Default 200 ms. */
  retryBaseMs?: number;
  /** Longest Retry-After honoured (ms); a registry asking for longer is reported at once, not waited for. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Time to wait for response headers, and the longest pause between body chunks. Default 60 s. */
  requestTimeoutMs?: number;
  /**
   * curl's low-speed rule for every body (manifests, blobs, tokens): a transfer under `lowSpeedLimit` bytes per second
   * averaged over `lowSpeedTimeMs` ends with an error naming the registry. Time the reader holds a blob paused does
   * not count. Defaults 1024 bytes/s over 30 s; 0 disables.
   */
  lowSpeedLimit?: number;
  lowSpeedTimeMs?: number;
  /** Resumes of one blob in all, with progress or not (a reset every 100 bytes ends here). Default 50. */
  maxResumesPerBlob?: number;
  /**
   * Retries and resumes this client makes in all, over every request (a pull makes its own client, so: per pull).
   * Default 200.
   */
  maxTotalRetries?: number;
  /**
   * Time this client may spend in all waiting before retries (backoff and Retry-After), over every request: a
   * registry answering 503 with `Retry-After: 60` to every request ends here. Default 5 minutes.
   */
  maxRetryWaitMs?: number;
  /**
   * Overall deadline (ms) from the client's creation: every request, wait and blob body still open then ends with
   * CARRIER_TIMEOUT. Default: none.
   */
  timeoutMs?: number;
  /** Cancels everything this client does. */
  signal?: AbortSignal;
  /** Warnings (ignored settings, a retry after a failed connection); never given credentials. */
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


export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A request through RegistryClient.request (the push side). */
export interface ApiRequest {
  method?: HttpMethod;
  headers?: Record<string, string>;
  /**
   * Whole bytes are sent again on a retry; a stream is sent once (no retry, no redirect, no second try after a 401:
   * the caller asks the registry what arrived and resumes).
   */
  body?: Buffer | Readable;
  /** The actions asked for on the repository (`pull`, default; `pull,push`). */
  actions?: string;
  /** More token scopes (`repository:OTHER:pull` for a cross-repository mount). */
  extraScopes?: string[];
  /** Retries on connection errors and 408/429/5xx (default the client's maxRetries). */
  retries?: number;
  signal?: AbortSignal;
}

export interface ApiResponse {
  res: import('./http.js').Response;
  /** The URL that answered (after redirects). */
  url: URL;
  /** The registry and repository the request went to (after registries.conf rewriting). */
  registry: string;
  repository: string;
}

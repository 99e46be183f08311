// What every transport speaks: an image as a source offers it, and a destination that takes one. The shapes follow
// go-containerregistry's Image/Layer and containers/image's ImageSource/ImageDestination, cut down to what Carrier
// copies: one image manifest (a list it was chosen from rides along), its config, and its layers as blobs.
import type { Readable } from 'node:stream';
import type { ImageManifest } from '../oci/manifest.js';
import type { ByteRange, FetchedRanges } from '../registry/ranges.js';
import type { ManifestSigner, UntrustedSignature } from '../trust/index.js';

/** Where an image can be: a registry, the store, an OCI layout directory, or an archive file. */
export type TransportName = 'docker' | 'containers-storage' | 'oci' | 'oci-archive' | 'docker-archive';

export interface OpenBlobOptions {
  signal?: AbortSignal;
}

/** A layer as a source hands it out: a blob (compressed or not) and the uncompressed tar it stands for. */
export interface LayerBlob {
  /** Digest of the bytes `open()` yields. */
  digest: string;
  /** Length of the bytes `open()` yields. */
  size: number;
  /** Media type of the bytes `open()` yields (`…tar`, `…tar+gzip`, `…tar+zstd`). */
  mediaType: string;
  /** The config's rootfs.diff_ids entry: the digest of the uncompressed tar. */
  diffID: string;
  /** Length of the uncompressed tar, when the source knows it. */
  diffSize?: number;
  /**
   * A fresh stream of the blob each call. Nothing is verified here: the destination that consumes the bytes checks
   * digest, size and diff_id (the store's applyLayer natively; a blob writer as it writes). A registry blob stream
   * resumes a dropped connection itself (HTTP Range).
   */
  open(options?: OpenBlobOptions): Promise<Readable>;
  /**
   * True when the blob is a tar the source made (the store rebuilds it from its tar-split; a docker-archive serves
   * its layer files uncompressed) rather than a blob as it was distributed: a destination may compress it as it
   * likes. A distributed blob is copied as it is.
   */
  rebuilt?: boolean;
  /** The layer descriptor's annotations (zstd:chunked locates its TOC and tar-split by them). */
  annotations?: Record<string, string>;
  /** Parts of the blob by HTTP range, where the source can (a registry): a zstd:chunked layer can be pulled partially. */
  fetchRanges?(ranges: readonly ByteRange[], options?: OpenBlobOptions): Promise<FetchedRanges>;
  /** The uncompressed tar, when the source has it without decompressing the blob (the store rebuilds it). */
  openTar?(options?: OpenBlobOptions): Promise<Readable>;
}

/** A small document with its exact bytes, as a registry or a layout holds it. */
export interface Document {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

/**
 * What a source knows of an image once its manifest is read, before any blob is: all the signature policy looks at
 * (signatures cover the manifest digest).
 */
export interface ImageManifestSource {
  readonly transport: TransportName;
  /** The source written as a transport reference (`docker://host/repo:tag`, `oci:/dir:tag`, …). */
  readonly reference: string;
  /** Names the image carries at the source, as written there (a registry: the full name pulled). */
  readonly names: readonly string[];
  /** The image manifest: its exact bytes, digest and media type, and the parsed document. */
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  readonly parsedManifest: ImageManifest;
  /** The index or manifest list the manifest was chosen from, when there was one. */
  readonly list?: Document;
  /**
   * The signatures the source keeps with the image (the store's). A registry image's are read by the copy from where
   * registries.d says; an OCI layout or archive has none.
   */
  signatures?(): Promise<UntrustedSignature[]>;
}

/** One image, resolved to a single platform's manifest, ready to be copied. */
export interface ImageSource extends ImageManifestSource {
  /** The config bytes, already checked against `configDigest`. The image id is its hex. */
  readonly config: Buffer;
  readonly configDigest: string;
  /** The config's `created`, when set. */
  readonly created?: string;
  /** Base layer first, as the manifest lists them; layers[i].diffID is the config's diff_ids[i]. */
  readonly layers: readonly LayerBlob[];
}

/**
 * An image whose manifest is read and nothing more (a registry's): `resolve()` fetches and checks its config.
 * copyImage resolves it only after the signature policy allows the image, so a refused image costs no blob.
 */
export interface PendingImageSource extends ImageManifestSource {
  resolve(options?: { signal?: AbortSignal }): Promise<ImageSource>;
}

/** How a layer went to the destination. */
export type LayerCopyState = 'exists' | 'reused' | 'copying' | 'done';

export interface PutImageOptions {
  /** Names to give the image at the destination (already normalised as the destination wants them). */
  names: readonly string[];
  signal?: AbortSignal;
  /** Layers transferred at once, where the destination can take several. */
  concurrency: number;
  /** A layer found at the destination (`exists`), taken from a local copy (`reused`), being copied, done. */
  onLayer?: (layer: LayerBlob, state: LayerCopyState) => void;
  /** Bytes of a layer consumed so far (a partial pull: bytes fetched). */
  onBytes?: (layer: LayerBlob, bytes: number) => void;
  /** A layer pulled partially: compressed bytes to fetch, and skipped because the store has their files. */
  onPartial?: (layer: LayerBlob, bytes: { toFetch: number; skipped: number }) => void;
  /**
   * The source's signatures, to keep with the image where the destination can (the store; a registry's lookaside
   * and sigstore attachments). They cover the source's manifest, so a destination keeping them must not change it.
   */
  signatures?: readonly UntrustedSignature[];
  /** New signatures to make of the manifest written, for the destination's reference (push --sign-by…). */
  signers?: readonly ManifestSigner[];
}

export interface PutLayerResult {
  digest: string;
  size: number;
  diffID: string;
  /** exists: already there; reused: from a local copy (blob cache); copied: the source's bytes; recompressed. */
  state: 'exists' | 'reused' | 'copied' | 'recompressed';
}

export interface PutImageResult {
  /** Image id (hex of the config digest). */
  id: string;
  names: string[];
  /** The digest of the manifest the destination recorded or wrote. */
  manifestDigest: string;
  /** True when the source's manifest bytes were kept as they are. */
  manifestReused: boolean;
  layers: PutLayerResult[];
}

/**
 * Where an image can be written. `putImage` writes one image; a destination that holds several (an archive) takes
 * putImage more than once and is finished by `close()`, which its opener calls. After a failure, `abort()` undoes
 * what the destination wrote (a layout directory is left as it was found; a failed commit leaves the store as it
 * was anyway). A registry destination (push: blob uploads, then the manifest) fits the same shape.
 */
export interface ImageDestination {
  readonly transport: TransportName;
  readonly reference: string;
  /** True where the source's signatures are kept (the store, a registry); elsewhere they are left behind. */
  readonly keepsSignatures?: boolean;
  putImage(image: ImageSource, options: PutImageOptions): Promise<PutImageResult>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

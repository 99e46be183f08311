/** Media types of the documents and blobs Carrier reads (OCI image spec v1.1 and Docker image manifest v2.2). */

// Manifests and indexes
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Docker schema 1 (signed and unsigned): recognised only to be refused with a clear message. */
export const DOCKER_MANIFEST_V1 = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_MANIFEST_V1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

// Configs
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

// Layers
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** Non-distributable ("foreign") layers: deprecated by image-spec 1.1 but still found in Windows images. */
export const OCI_LAYER_NONDISTRIBUTABLE_TAR = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const OCI_LAYER_NONDISTRIBUTABLE_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const OCI_LAYER_NONDISTRIBUTABLE_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Not in Docker's spec, but used for uncompressed layers by tools (and by Carrier for docker-archive layers). */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
export const DOCKER_LAYER_FOREIGN_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export type ManifestKind = 'manifest' | 'index';

export const MANIFEST_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
export const INDEX_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
export const CONFIG_TYPES: ReadonlySet<string> = new Set([OCI_CONFIG, DOCKER_CONFIG]);

const LAYER_COMPRESSION: ReadonlyMap<string, 'gzip' | 'zstd' | 'none'> = new Map([
  [OCI_LAYER_TAR, 'none'],
  [OCI_LAYER_GZIP, 'gzip'],
  [OCI_LAYER_ZSTD, 'zstd'],
  [OCI_LAYER_NONDISTRIBUTABLE_TAR, 'none'],
  [OCI_LAYER_NONDISTRIBUTABLE_GZIP, 'gzip'],
  [OCI_LAYER_NONDISTRIBUTABLE_ZSTD, 'zstd'],
  [DOCKER_LAYER_GZIP, 'gzip'],
  [DOCKER_LAYER_TAR, 'none'],
  [DOCKER_LAYER_FOREIGN_GZIP, 'gzip'],
]);

/** 'manifest' or 'index' for a manifest media type Carrier understands, else undefined. */
export function manifestKind(mediaType: string): ManifestKind | undefined {
  if (MANIFEST_TYPES.has(mediaType)) return 'manifest';
  if (INDEX_TYPES.has(mediaType)) return 'index';
  return undefined;
}

export function isLayerMediaType(mediaType: string): boolean {
  return LAYER_COMPRESSION.has(mediaType);
}

/** Foreign / non-distributable layers: their blobs are often absent and fetched from `urls`. */
export function isNondistributable(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.') || mediaType === DOCKER_LAYER_FOREIGN_GZIP;
}

/**
 * The compression a layer media type announces. Unknown types are undefined; callers that still want to try
 * such a blob can let applyLayer detect the compression from its magic bytes.
 */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  return LAYER_COMPRESSION.get(mediaType);
}

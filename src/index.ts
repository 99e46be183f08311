export { applyLayer } from './layer/apply.js';
export type { ApplyLayerOptions, ApplyLayerLimits, AppliedLayer, Compression, SkippedEntry } from './layer/apply.js';
export { assembleLayer } from './layer/assemble.js';
export { CarrierError } from './errors.js';
export type { CarrierErrorCode, CarrierErrorDetails } from './errors.js';
export { version } from './version.js';
export { Store } from './store/store.js';
export type { StoreOpenOptions, ImageInfo, LayerInfo, ContainerInfo, ImageCommit, CommitLayer, CommitOptions, CommitResult } from './store/store.js';
export { loadImage, loadedNames } from './load-image.js';
export type { LoadImageOptions, LoadImageResult, LoadedImage } from './load-image.js';
export { normalizeLocalName, normalizePullName, parseReference } from './reference.js';
export type { ImageReference } from './reference.js';
export { cloneTree } from './fs/clone.js';
export type { CloneMode, CloneOptions, CloneResult } from './fs/clone.js';
export { mergeLayers } from './fs/merge.js';
export type { MergeMode, MergeOptions, MergeResult } from './fs/merge.js';
export { checkoutImage, checkoutLayers, layerChain } from './checkout/checkout.js';
export type { CheckoutOptions, CheckoutResult, ChainLayer } from './checkout/checkout.js';
export { exportContainer, exportContainerStream } from './checkout/export.js';
export type { ExportOptions, ExportResult } from './checkout/export.js';
export { saveImages } from './save/save.js';
export type { SaveFormat, SaveOptions, SaveResult, SavedImage } from './save/save.js';
export { systemDf } from './store/df.js';
export type { SystemDf, SystemDfOptions, DfSummary, DfImage, DfContainer } from './store/df.js';
export { pruneBlobCache, trimBlobCache, referencedBlobs, scanBlobCache, cacheMaxSizeFromEnv, diskUsage, DEFAULT_BLOB_MIN_AGE_MS } from './store/gc.js';
export type { PruneBlobCacheOptions, PruneBlobCacheResult, RemovedBlob, CachedBlob, CacheTempFile, BlobCacheScan } from './store/gc.js';
export { setDirQuota, getDirQuota, parseByteSize } from './quota.js';
export type { DirQuota, SetDirQuotaOptions } from './quota.js';
export { pull, parsePlatform } from './pull.js';
export type { PullOptions, PullEvent, PullResult, RegistrySource, LayerState } from './pull.js';
export { RegistryClient, loadCredentials } from './registry/index.js';
export type { RegistryClientOptions, CredentialStore, Credentials } from './registry/index.js';
// Image transports and copy: where an image can be (a registry, the store, an OCI layout, oci-archive,
// docker-archive), each an ImageSource and an ImageDestination, and the one copyImage that pull, load and save are.
export { copyImage } from './copy/copy-image.js';
export type { CopyOptions, CopyResult, CopyEvent, CopyPolicy } from './copy/copy-image.js';
export { parseTransportReference, openImageSource, openImageDestination } from './transports/reference.js';
export type { TransportReference, OpenTransportOptions, OpenedSource } from './transports/reference.js';
export { openRegistrySource, registryImageName } from './transports/registry.js';
export type { RegistryImageSourceOptions } from './transports/registry.js';
export { openStoreSource } from './transports/store-source.js';
export type { StoreImageSource, StoreSourceOptions } from './transports/store-source.js';
export { StoreDestination } from './transports/store-destination.js';
export type { StoreDestinationOptions } from './transports/store-destination.js';
export { openImageArchive } from './transports/archive.js';
export type { ImageArchive, ArchiveFormat, OpenImageArchiveOptions } from './transports/archive.js';
export { OciLayoutDestination } from './transports/oci-layout-destination.js';
export type { OciLayoutDestinationOptions } from './transports/oci-layout-destination.js';
export { DockerArchiveDestination } from './transports/docker-archive-destination.js';
export type { DockerArchiveDestinationOptions } from './transports/docker-archive-destination.js';
export type {
  TransportName,
  ImageSource,
  ImageDestination,
  LayerBlob,
  Document,
  OpenBlobOptions,
  LayerCopyState,
  PutImageOptions,
  PutImageResult,
  PutLayerResult,
} from './transports/types.js';
export {
  createContainer,
  listContainers,
  inspectContainer,
  removeContainer,
  mountContainer,
  unmountContainer,
  removeVolume,
  pruneVolumes,
  pruneContainers,
  volumeUsers,
  parseVolumeSpec,
} from './containers/containers.js';
export type {
  CreateContainerOptions,
  ContainerConfig,
  ContainerDetails,
  ContainerState,
  ContainerStatus,
  RemoveContainerOptions,
  VolumeSpec,
} from './containers/containers.js';
export { startContainer, runContainer } from './containers/run.js';
export type { RunResult, StartOptions } from './containers/run.js';
export { createVolume, listVolumes, inspectVolume } from './containers/volumes.js';
export type { VolumeInfo, CreateVolumeOptions } from './containers/volumes.js';
export { generateSpec, mergeEnv, processArgs, DEFAULT_CAPABILITIES } from './runtime/spec.js';
export type { OciSpec, OciMount, OciIdMapping, ImageRunConfig, ContainerMount, SpecInput, GeneratedSpec } from './runtime/spec.js';
export { resolveUser, resolveInRoot } from './runtime/rootfs.js';
export type { ResolvedUser } from './runtime/rootfs.js';
export { findRuntime, runBundle, classifyRuntimeError, SignalRelay } from './runtime/runtime.js';
export type { OciRuntime, RuntimeName, RunBundleOptions, RunBundleResult } from './runtime/runtime.js';
export { unshareCommand, subIdRanges } from './runtime/userns.js';
export { inUserNamespace, isRootless, processAlive } from './host.js';
export type { UnshareCommand, SubIdRange } from './runtime/userns.js';

// Entering Carrier's rootless user + mount namespace (what `carrier unshare` and the rootless container commands
// do), the overlay mount features this host offers, and removing a tree that holds read-only layer directories.
export { needsUserNamespace, unshareSpawn } from './runtime/namespace.js';
export type { UnshareSpawn } from './runtime/namespace.js';
/** What this process can use to mount overlays (fsopen, lowerdir+, userxattr, fuse-overlayfs), detected once. */
export { overlaySupport } from './drivers/mount.js';
export type { OverlaySupport } from './drivers/mount.js';

// Signature policy (issue 20): policy.json and registries.d as containers/image reads them, the signatures of a
// registry image, and the decision whether it may be pulled (CARRIER_POLICY_DENIED when not).
export {
  loadPolicy,
  parsePolicy,
  findPolicyFile,
  loadRegistriesD,
  findRegistriesDir,
  fetchDockerSignatures,
  evaluatePolicy,
  requirementsFor,
  describePolicy,
  checkSignaturePolicy,
  SYSTEM_POLICY_PATH,
  SYSTEM_REGISTRIES_D,
} from './trust/index.js';
export type {
  Policy,
  PolicyRequirement,
  PolicySource,
  LoadPolicyOptions,
  IdentityMatch,
  PolicyImage,
  PolicyTransport,
  RegistriesD,
  LoadRegistriesDOptions,
  UntrustedSignature,
  SignatureRegistry,
  FetchedSignatures,
  PolicyEvaluationInput,
  PolicyDecision,
  TrustRow,
  PolicyCheckedImage,
  CheckSignaturePolicyOptions,
} from './trust/index.js';

// The write direction: a layer's tar compressed on native threads with its diff_id, digest and tar-split in one
// pass, and a container's or image's changes as `podman diff` lists them.
/** Compresses a layer's uncompressed tar (gzip/zstd on several cores), hashing both sides and recording its tar-split. */
export { compressLayer } from './layer/compress.js';
export type { CompressLayerOptions, CompressedLayer, CompressingLayer, LayerCompression } from './layer/compress.js';
/** A container's changes against its image, or an image's top layer against its parent, as `podman diff` lists them. */
export { diff } from './containers/diff.js';
export type { Change, ChangeKind, DiffOptions, DiffResult } from './containers/diff.js';

// Commit (issue 19): a container's changes become a new image on top of its image, as `podman commit` makes it, with
// podman's `--change` instructions, OCI or Docker schema 2.
/** Commits a container's changes as a new image (one new layer, the config with a history entry). */
export { commit, parseChanges, CHANGE_INSTRUCTIONS } from './containers/commit.js';
export type { CommitContainerOptions, CommitContainerResult, CommittedLayer, CommitFormat, ImageChanges } from './containers/commit.js';

// Carrier's public API, grouped by concept in the order a reader meets them: errors; the store; moving images
// (pull, load, save, push, copy and the transports they are made of); trust; containers; layers and trees; the
// registry client; host facts. Each export's documentation is on its declaration. Helpers that only serve these
// (size parsing, spec generation, runtime error classification, ...) are internal.

// ---- errors and version ------------------------------------------------------------------------------------------
export { CarrierError } from './errors.js';
export type { CarrierErrorCode, CarrierErrorDetails } from './errors.js';
export { version } from './version.js';

// ---- the store: containers/storage's layout, shared with podman ----------------------------------------------------
export { Store } from './store/store.js';
export type { StoreOpenOptions, ImageInfo, LayerInfo, ContainerInfo, ImageCommit, CommitLayer, CommitOptions, CommitResult } from './store/store.js';
export { normalizeLocalName, normalizePullName, parseReference, validateStoredName, validateStoredNames } from './reference.js';
export type { ImageReference } from './reference.js';
export { systemDf } from './store/df.js';
export type { SystemDf, SystemDfOptions, DfSummary, DfImage, DfContainer } from './store/df.js';
export { pruneBlobCache, trimBlobCache, cacheMaxSizeFromEnv, diskUsage } from './store/gc.js';
export type { PruneBlobCacheOptions, PruneBlobCacheResult, RemovedBlob, CachedBlob, CacheTempFile } from './store/gc.js';
export { setDirQuota, getDirQuota, parseByteSize } from './quota.js';
export type { DirQuota, SetDirQuotaOptions } from './quota.js';

// ---- moving images: one copyImage between transports; pull, load, save, push and copy are made of it -------------
export { copyImage } from './copy/copy-image.js';
export type { CopyOptions, CopyResult, CopyEvent, CopyPolicy } from './copy/copy-image.js';
export { pull, parsePlatform } from './pull.js';
export type { PullOptions, PullEvent, PullResult, RegistrySource, LayerState } from './pull.js';
export { loadImage } from './load-image.js';
export type { LoadImageOptions, LoadImageResult, LoadedImage } from './load-image.js';
export { saveImages } from './save/save.js';
export type { SaveFormat, SaveOptions, SaveResult, SavedImage } from './save/save.js';
export { push, copy, pushDestination } from './push.js';
export type { PushOptions, PushResult, CopyImagesOptions, RegistryAccess, PushCompression, RegistryDestinationOptions } from './push.js';

// ---- transports: where an image can be, each an ImageSource and/or an ImageDestination ----------------------------
export { parseTransportReference, openImageSource, openImageDestination } from './transports/reference.js';
export type { TransportReference, OpenTransportOptions, OpenedSource } from './transports/reference.js';
export { openRegistrySource, openRegistryManifest, registryImageName } from './transports/registry.js';
export type { RegistryImageSourceOptions } from './transports/registry.js';
export { RegistryDestination } from './transports/registry-destination.js';
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
  ImageManifestSource,
  PendingImageSource,
  ImageDestination,
  LayerBlob,
  Document,
  OpenBlobOptions,
  LayerCopyState,
  PutImageOptions,
  PutImageResult,
  PutLayerResult,
} from './transports/types.js';

// ---- trust: policy.json and registries.d as containers/image reads them, and the decision for an image -----------
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
  gpgSigner,
  sigstoreSigner,
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
  ManifestSigner,
  GpgSignerOptions,
  SigstoreSignerOptions,
  SignatureRegistry,
  FetchedSignatures,
  PolicyEvaluationInput,
  PolicyDecision,
  TrustRow,
  PolicyCheckedImage,
  CheckSignaturePolicyOptions,
} from './trust/index.js';

// ---- containers: create, mount, run, remove; volumes; their changes -----------------------------------------------
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
export { diff } from './containers/diff.js';
export type { Change, ChangeKind, DiffOptions, DiffResult } from './containers/diff.js';
/** Commits a container's changes as a new image, as `podman commit`: one new layer, `--change` instructions, OCI or Docker. */
export { commit, parseChanges, CHANGE_INSTRUCTIONS } from './containers/commit.js';
export type { CommitContainerOptions, CommitContainerResult, CommittedLayer, CommitFormat, ImageChanges } from './containers/commit.js';
export { findRuntime, SignalRelay } from './runtime/runtime.js';
export type { OciRuntime, RuntimeName } from './runtime/runtime.js';
export { checkoutImage } from './checkout/checkout.js';
export type { CheckoutOptions, CheckoutResult } from './checkout/checkout.js';
export { exportContainer, exportContainerStream } from './checkout/export.js';
export type { ExportOptions, ExportResult } from './checkout/export.js';

// ---- layers and trees: the native engine's TypeScript face -------------------------------------------------------
export { applyLayer } from './layer/apply.js';
export type { ApplyLayerOptions, ApplyLayerLimits, AppliedLayer, Compression, SkippedEntry } from './layer/apply.js';
export { assembleLayer } from './layer/assemble.js';
export { compressLayer } from './layer/compress.js';
export type { CompressLayerOptions, CompressedLayer, CompressingLayer, LayerCompression } from './layer/compress.js';
export { cloneTree } from './fs/clone.js';
export type { CloneMode, CloneOptions, CloneResult } from './fs/clone.js';
export { mergeLayers } from './fs/merge.js';
export type { MergeMode, MergeOptions, MergeResult } from './fs/merge.js';

// ---- the registry client -----------------------------------------------------------------------------------------
export { RegistryClient, loadCredentials } from './registry/index.js';
export type { RegistryClientOptions, CredentialStore, Credentials } from './registry/index.js';

// ---- host facts: rootless, the user namespace Carrier enters, the overlay features this kernel offers -----------
export { inUserNamespace, isRootless } from './host.js';
export { needsUserNamespace, unshareSpawn } from './runtime/namespace.js';
export type { UnshareSpawn } from './runtime/namespace.js';
export { overlaySupport } from './drivers/mount.js';
export type { OverlaySupport } from './drivers/mount.js';

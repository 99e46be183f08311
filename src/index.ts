// Carrier's public API, grouped by concept in the order a reader meets them: errors; the store; moving images
// (pull, load, save, push, copy and the transports they are made of); trust; containers; layers and trees; the
// registry client; host facts. Each export's documentation is on its declaration. Helpers that only serve these
// (size parsing, spec generation, runtime error classification, ...) are internal.
//
// Start-up (issue 21): every CLI command imports this module, and most need only the store and the containers. So
// the async functions of the other modules (pull, push, load, save, copy, run, commit, checkout, the trust checks,
// ...) are {@link lazy} stand-ins that import their module on the first call. Classes and synchronous functions
// cannot wait for an import and are exported as they are, so some of those modules load anyway (pull.ts for
// parsePlatform, the transports for their destination classes); the large packages behind them (YAML, openpgp,
// undici) are imported where they are used.

/**
 * `fn` of the module `load` imports, called through a stand-in of the same type that loads the module on its first
 * call. Only for async functions: the stand-in returns a promise, and so must what it stands in for.
 */
function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K): M[K] {
  return (async (...args: unknown[]) => ((await load())[name] as (...a: unknown[]) => unknown)(...args)) as M[K];
}

// ---- errors and version ------------------------------------------------------------------------------------------
export { CarrierError } from './errors.js';
export type { CarrierErrorCode, CarrierErrorDetails } from './errors.js';
export { version } from './version.js';

// ---- the store: containers/storage's layout, shared with podman ----------------------------------------------------
export { Store } from './store/store.js';
export type { StoreOpenOptions, ImageInfo, LayerInfo, ContainerInfo, ImageCommit, CommitLayer, CommitOptions, CommitResult } from './store/store.js';
export {
  normalizeLocalName,
  normalizePullName,
  parseReference,
  validateStoredName,
  validateStoredNames,
} from './reference.js';
export type { ImageReference } from './reference.js';
export const systemDf = lazy(() => import('./store/df.js'), 'systemDf');
export type { SystemDf, SystemDfOptions, DfSummary, DfImage, DfContainer } from './store/df.js';
export { cacheMaxSizeFromEnv } from './store/gc.js';
export const pruneBlobCache = lazy(() => import('./store/gc.js'), 'pruneBlobCache');
export const trimBlobCache = lazy(() => import('./store/gc.js'), 'trimBlobCache');
export const diskUsage = lazy(() => import('./store/gc.js'), 'diskUsage');
export type { PruneBlobCacheOptions, PruneBlobCacheResult, RemovedBlob, CachedBlob, CacheTempFile } from './store/gc.js';
export { parseByteSize } from './quota.js';
export const setDirQuota = lazy(() => import('./quota.js'), 'setDirQuota');
export const getDirQuota = lazy(() => import('./quota.js'), 'getDirQuota');
export type { DirQuota, SetDirQuotaOptions } from './quota.js';

// ---- moving images: one copyImage between transports; pull, load, save, push and copy are made of it -------------
export const copyImage = lazy(() => import('./copy/copy-image.js'), 'copyImage');
export type { CopyOptions, CopyResult, CopyEvent, CopyPolicy } from './copy/copy-image.js';
export { parsePlatform } from './pull.js';
export const pull = lazy(() => import('./pull.js'), 'pull');
export type { PullOptions, PullEvent, PullResult, RegistrySource, LayerState } from './pull.js';
export const loadImage = lazy(() => import('./load-image.js'), 'loadImage');
export type { LoadImageOptions, LoadImageResult, LoadedImage } from './load-image.js';
export const saveImages = lazy(() => import('./save/save.js'), 'saveImages');
export type { SaveFormat, SaveOptions, SaveResult, SavedImage } from './save/save.js';
export { pushDestination } from './push.js';
export const push = lazy(() => import('./push.js'), 'push');
export const copy = lazy(() => import('./push.js'), 'copy');
export type { PushOptions, PushResult, CopyImagesOptions, RegistryAccess, PushCompression, RegistryDestinationOptions } from './push.js';

// ---- transports: where an image can be, each an ImageSource and/or an ImageDestination ----------------------------
export { parseTransportReference } from './transports/reference.js';
export const openImageSource = lazy(() => import('./transports/reference.js'), 'openImageSource');
export const openImageDestination = lazy(() => import('./transports/reference.js'), 'openImageDestination');
export type { TransportReference, OpenTransportOptions, OpenedSource } from './transports/reference.js';
export { registryImageName } from './transports/registry.js';
export const openRegistrySource = lazy(() => import('./transports/registry.js'), 'openRegistrySource');
export const openRegistryManifest = lazy(() => import('./transports/registry.js'), 'openRegistryManifest');
export type { RegistryImageSourceOptions } from './transports/registry.js';
export { RegistryDestination } from './transports/registry-destination.js';
export const openStoreSource = lazy(() => import('./transports/store-source.js'), 'openStoreSource');
export type { StoreImageSource, StoreSourceOptions } from './transports/store-source.js';
export { StoreDestination } from './transports/store-destination.js';
export type { StoreDestinationOptions } from './transports/store-destination.js';
export const openImageArchive = lazy(() => import('./transports/archive.js'), 'openImageArchive');
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
// (the synchronous ones from their own modules: trust/index.js re-exports registries-d.js, which loads YAML)
export { parsePolicy, SYSTEM_POLICY_PATH } from './trust/policy.js';
export { requirementsFor } from './trust/scopes.js';
export { gpgSigner, sigstoreSigner } from './trust/sign.js';
export { SYSTEM_REGISTRIES_D } from './trust/registries-d.js';
export const loadPolicy = lazy(() => import('./trust/index.js'), 'loadPolicy');
export const findPolicyFile = lazy(() => import('./trust/index.js'), 'findPolicyFile');
export const loadRegistriesD = lazy(() => import('./trust/index.js'), 'loadRegistriesD');
export const findRegistriesDir = lazy(() => import('./trust/index.js'), 'findRegistriesDir');
export const fetchDockerSignatures = lazy(() => import('./trust/index.js'), 'fetchDockerSignatures');
export const evaluatePolicy = lazy(() => import('./trust/index.js'), 'evaluatePolicy');
export const describePolicy = lazy(() => import('./trust/index.js'), 'describePolicy');
export const checkSignaturePolicy = lazy(() => import('./trust/index.js'), 'checkSignaturePolicy');
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
export const startContainer = lazy(() => import('./containers/run.js'), 'startContainer');
export const runContainer = lazy(() => import('./containers/run.js'), 'runContainer');
export type { RunResult, StartOptions } from './containers/run.js';
export const createVolume = lazy(() => import('./containers/volumes.js'), 'createVolume');
export const listVolumes = lazy(() => import('./containers/volumes.js'), 'listVolumes');
export const inspectVolume = lazy(() => import('./containers/volumes.js'), 'inspectVolume');
export type { VolumeInfo, CreateVolumeOptions } from './containers/volumes.js';
export const diff = lazy(() => import('./containers/diff.js'), 'diff');
export type { Change, ChangeKind, DiffOptions, DiffResult } from './containers/diff.js';
export { parseChanges, CHANGE_INSTRUCTIONS } from './containers/commit-changes.js';
/** Commits a container's changes as a new image, as `podman commit`: one new layer, `--change` instructions, OCI or Docker. */
export const commit = lazy(() => import('./containers/commit.js'), 'commit');
export type { CommitContainerOptions, CommitContainerResult, CommittedLayer, CommitFormat, ImageChanges } from './containers/commit.js';
export { SignalRelay } from './runtime/runtime.js';
export const findRuntime = lazy(() => import('./runtime/runtime.js'), 'findRuntime');
export type { OciRuntime, RuntimeName } from './runtime/runtime.js';
export const checkoutImage = lazy(() => import('./checkout/checkout.js'), 'checkoutImage');
export type { CheckoutOptions, CheckoutResult } from './checkout/checkout.js';
export const exportContainer = lazy(() => import('./checkout/export.js'), 'exportContainer');
export const exportContainerStream = lazy(() => import('./checkout/export.js'), 'exportContainerStream');
export type { ExportOptions, ExportResult } from './checkout/export.js';

// ---- layers and trees: the native engine's TypeScript face -------------------------------------------------------
export { imageBudget } from './layer/apply.js';
export const applyLayer = lazy(() => import('./layer/apply.js'), 'applyLayer');
export type { ApplyLayerOptions, ApplyLayerLimits, AppliedLayer, Compression, ImageBudget, SkippedEntry } from './layer/apply.js';
export { assembleLayer } from './layer/assemble.js';
export { compressLayer } from './layer/compress.js';
export type { CompressLayerOptions, CompressedLayer, CompressingLayer, LayerCompression } from './layer/compress.js';
export const cloneTree = lazy(() => import('./fs/clone.js'), 'cloneTree');
export type { CloneMode, CloneOptions, CloneResult } from './fs/clone.js';
export const mergeLayers = lazy(() => import('./fs/merge.js'), 'mergeLayers');
export type { MergeMode, MergeOptions, MergeResult } from './fs/merge.js';

// ---- the registry client -----------------------------------------------------------------------------------------
export { RegistryClient } from './registry/index.js';
export const loadCredentials = lazy(() => import('./registry/index.js'), 'loadCredentials');
export type { RegistryClientOptions, CredentialStore, Credentials } from './registry/index.js';

// ---- host facts: rootless, the user namespace Carrier enters, the overlay features this kernel offers -----------
export { inUserNamespace, isRootless } from './host.js';
export { needsUserNamespace } from './runtime/namespace.js';
export const unshareSpawn = lazy(() => import('./runtime/namespace.js'), 'unshareSpawn');
export type { UnshareSpawn } from './runtime/namespace.js';
export { overlaySupport } from './drivers/mount.js';
export type { OverlaySupport } from './drivers/mount.js';

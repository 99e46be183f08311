// One copy for every direction: pull (registry → store), load (archive → store), save (store → archive), and copy
// between any two transports. copyImage composes a source and a destination and owns nothing of the bytes: the
// destination streams each layer from the source (the store applies it on native threads as it arrives) and checks
// what it is given at the boundary it owns. The signature policy (src/trust) is checked here, once per image, after the
// source's manifest is read and before anything else is: a source source (a registry's) is resolved, its config
// fetched, only once the policy allows it, so a refused image costs its manifest (and signatures) and no blob, and
// leaves the destination as it was.
import { abortError } from '../errors.js';
import { checkSignaturePolicy, readSourceSignatures, type FetchedSignatures, type ManifestSigner, type PolicySource, type SignatureRegistry } from '../trust/index.js';
import type { ImageDestination, ImageManifestSource, ImageSource, LayerBlob, LayerCopyState, PendingImageSource, PutImageResult } from '../transports/types.js';

export type CopyEvent =
  | {
      type: 'resolved';
      source: string;
      manifestDigest: string;
      listDigest?: string;
      configDigest: string;
      layers: { digest: string; size: number }[];
    }
  | { type: 'layer'; digest: string; size: number; state: LayerCopyState }
  | { type: 'progress'; digest: string; bytes: number; size: number }
  | { type: 'partial'; digest: string; size: number; toFetch: number; skipped: number }
  | { type: 'committed'; id: string; names: string[]; destination: string };

/**
 * Decides whether `source` may be copied (the signature policy's place): resolve to allow, reject (a CarrierError)
 * to refuse. It sees the source's manifest (no blob is fetched before it allows the image) and runs before the
 * destination is touched.
 */
export type CopyPolicy = (source: ImageManifestSource) => Promise<void> | void;

export interface CopyOptions {
  /** Names to give the image at the destination (default: none; a destination may add its own tag). */
  names?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (event: CopyEvent) => void;
  /** Layers transferred at once, where the destination can take several. Default 3. */
  concurrency?: number;
  /** Least time between two `progress` events of one layer (ms). Default 100; the last byte is always reported. */
  progressIntervalMs?: number;
  /** Replaces the signature policy check (below) for this copy. */
  policy?: CopyPolicy;
  /** The policy.json to enforce (podman --signature-policy); default: the one in force, as containers/image finds it. */
  signaturePolicy?: string;
  /** That policy already being loaded (a pull reads it while the manifest is fetched); replaces `signaturePolicy`. */
  loadedPolicy?: Promise<PolicySource>;
  /** The client a docker:// source was read with: sigstore signatures are read through it. */
  signatureRegistry?: SignatureRegistry;
  /** Drop the source's signatures instead of keeping them at the destination (podman --remove-signatures). */
  removeSignatures?: boolean;
  /** Sign the manifest written, for the destination's reference (podman --sign-by, --sign-by-sigstore-private-key). */
  signers?: readonly ManifestSigner[];
}

export type CopyResult = PutImageResult;

/**
 * Copies one image from `source` to `destination`. The destination is not closed: an archive can take more images
 * before its opener closes it. On failure the destination is left for the caller to abort. A pending source (a
 * registry's, whose config is not fetched yet) is resolved once the signature policy allows it.
 */
export async function copyImage(source: ImageSource | PendingImageSource, destination: ImageDestination, options: CopyOptions = {}): Promise<CopyResult> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const emit = options.onProgress ?? (() => {});
  // The source's signatures are read once: for the policy when it needs them, and to be kept at the destination
  // (containers/image reads them whenever it copies, so podman pull stores them and podman push carries them on).
  let read: Promise<FetchedSignatures> | undefined;
  const signatures = (): Promise<FetchedSignatures> =>
    (read ??= readSourceSignatures(source, {
      ...(source.signatures ? { stored: () => source.signatures!() } : {}),
      ...(options.signatureRegistry ? { registry: options.signatureRegistry } : {}),
      ...(signal ? { signal } : {}),
    }));
  if (options.policy) await options.policy(source);
  else {
    await checkSignaturePolicy(source, {
      ...(options.loadedPolicy ? { policy: await options.loadedPolicy } : {}),
      ...(options.signaturePolicy !== undefined ? { signaturePolicy: options.signaturePolicy } : {}),
      signatures,
    });
  }
  if (signal?.aborted) throw abortError(signal);
  // The signatures to keep are read while the config is fetched (the policy allowed the image already).
  const keeping = options.removeSignatures === true || destination.keepsSignatures !== true ? undefined : signatures();
  keeping?.catch(() => {});
  const image = 'resolve' in source ? await source.resolve(signal ? { signal } : {}) : source;
  const kept = keeping ? (await keeping).signatures : [];
  if (signal?.aborted) throw abortError(signal);
  emit({
    type: 'resolved',
    source: source.reference,
    manifestDigest: image.manifestDigest,
    ...(image.list ? { listDigest: image.list.digest } : {}),
    configDigest: image.configDigest,
    layers: image.layers.map((l) => ({ digest: l.digest, size: l.size })),
  });
  const interval = options.progressIntervalMs ?? 100;
  const lastReport = new Map<LayerBlob, number>();
  const result = await destination.putImage(image, {
    names: options.names ?? [],
    concurrency: options.concurrency ?? 3,
    signatures: kept,
    ...(options.signers && options.signers.length > 0 ? { signers: options.signers } : {}),
    ...(signal ? { signal } : {}),
    onLayer: (layer, state) => emit({ type: 'layer', digest: layer.digest, size: layer.size, state }),
    onPartial: (layer, b) => emit({ type: 'partial', digest: layer.digest, size: layer.size, ...b }),
    ...(options.onProgress
      ? {
          onBytes: (layer: LayerBlob, bytes: number) => {
            const now = Date.now();
            if (now - (lastReport.get(layer) ?? 0) >= interval || bytes === layer.size) {
              lastReport.set(layer, now);
              emit({ type: 'progress', digest: layer.digest, bytes, size: layer.size });
            }
          },
        }
      : {}),
  });
  emit({ type: 'committed', id: result.id, names: result.names, destination: destination.reference });
  return result;
}

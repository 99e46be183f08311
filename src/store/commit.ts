// Committing an image: its layers planned by storage id (podman's rule), the missing ones made by the layer pool,
// then the image record with its config and manifests as big data and its names.
import { CarrierError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { isFullId, layerIdFor } from './ids.js';
import type { ImageStore } from './images.js';
import { fillLayers, type CommitLayer, type CommitOptions, type PlannedLayer } from './layer-pool.js';
import type { LayerStore } from './layers.js';
import { dedupe, nowRfc3339, type ImageRecord } from './records.js';
import { signatureRecord } from './signatures.js';

/** Everything the store needs to record an image; a local archive and a registry pull both produce one. */
export interface ImageCommit {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  /** The index or manifest list the manifest was chosen from, when there was one. */
  list?: { bytes: Buffer; digest: string };
  layers: CommitLayer[];
  /** Full names (already normalised) to give the image. */
  names: string[];
  created?: string;
  /**
   * The image's signatures in their stored form (signature.Blob), kept as podman keeps them. Given (even empty), they
   * replace what the record held, as a pull by podman does; left out, the record's signatures stay.
   */
  signatures?: readonly Buffer[];
}

export interface CommitResult {
  id: string;
  names: string[];
  layers: { id: string; diffID: string; applied: boolean }[];
}

/** An image commit checked and planned: its id and each layer's storage id, parent first. */
export interface CommitPlan {
  id: string;
  layers: PlannedLayer[];
  top: string | undefined;
}

/** Checks the config and manifest against their digests and gives every layer its storage id. */
export function planCommit(image: ImageCommit): CommitPlan {
  const id = image.configDigest.replace(/^sha256:/, '');
  if (!isFullId(id)) throw new CarrierError('CARRIER_INVALID_DIGEST', `config digest ${image.configDigest} is not a sha256 digest`);
  if (sha256Digest(image.config) !== image.configDigest) throw new CarrierError('CARRIER_DIGEST_MISMATCH', `config does not match ${image.configDigest}`);
  if (sha256Digest(image.manifest) !== image.manifestDigest) throw new CarrierError('CARRIER_DIGEST_MISMATCH', `manifest does not match ${image.manifestDigest}`);
  const layers: PlannedLayer[] = [];
  let parent: string | undefined;
  for (const layer of image.layers) {
    const lid = layerIdFor(parent, layer.diffID);
    layers.push({ id: lid, parent, layer });
    parent = lid;
  }
  return { id, layers, top: parent };
}

/**
 * Makes the plan's missing layers (verified against the config's diff_ids) and reports on every layer. Layers
 * already present are not touched. Hold the layers write lock.
 */
export async function commitLayersLocked(layers: LayerStore, plan: CommitPlan, options: CommitOptions): Promise<CommitResult['layers']> {
  for (const p of plan.layers) {
    const existing = layers.get(p.id);
    if (existing && existing['diff-digest'] !== p.layer.diffID) {
      throw new CarrierError('CARRIER_CORRUPT_STORE', `layer ${p.id} exists with diff digest ${existing['diff-digest']}, expected ${p.layer.diffID}`);
    }
  }
  const missing = plan.layers.filter((p) => !layers.get(p.id));
  const applied = await fillLayers(layers, missing, options);
  const results: CommitResult['layers'] = [];
  for (const p of plan.layers) {
    if (!applied.has(p.id)) {
      await p.layer.settle?.(undefined);
      options.onLayer?.({ diffID: p.layer.diffID, id: p.id, state: 'exists' });
    }
    results.push({ id: p.id, diffID: p.layer.diffID, applied: applied.has(p.id) });
  }
  return results;
}

/**
 * Records the image (or adds to the existing record): config and manifests as big data, the digest podman records,
 * and its names, taken from any image that had them. Hold the images write lock.
 */
export async function recordImageLocked(images: ImageStore, image: ImageCommit, plan: CommitPlan): Promise<void> {
  let record = images.get(plan.id);
  const fresh = !record;
  if (!record) {
    record = { id: plan.id, created: image.created ?? nowRfc3339(), metadata: '{}' } as ImageRecord;
    if (plan.top !== undefined) record.layer = plan.top;
  }
  const bigData: [string, Buffer][] = [[image.configDigest, image.config]];
  if (image.list) bigData.push([`manifest-${image.list.digest}`, image.list.bytes]);
  bigData.push([`manifest-${image.manifestDigest}`, image.manifest], ['manifest', image.manifest]);
  if (image.signatures !== undefined) {
    const signed = signatureRecord(image.manifestDigest, image.signatures);
    bigData.push(...signed.bigData);
    record.metadata = signed.metadata;
  }
  await images.writeBigData(record, bigData);
  record.digest = image.list?.digest ?? image.manifestDigest; // podman records the index digest when there was one
  if (fresh) images.add(record);
  images.addNames(record, dedupe(image.names), 'prepend');
  await images.file.save();
}

// `diff`: what a container changed against its image, or an image's top layer against its parent, listed as podman
// diff lists it (containers/storage's Changes); the driver lists a layer's changes as it stores layers.
import { layerChain } from '../checkout/checkout.js';
import type { Change } from '../drivers/changes.js';
import { CarrierError } from '../errors.js';
import type { Store } from '../store/store.js';

export type { Change, ChangeKind } from '../drivers/changes.js';

export interface DiffOptions {
  /** What `query` may name: podman's `diff` tries an image first, then a container (default `all`). */
  type?: 'all' | 'container' | 'image';
}

export interface DiffResult {
  /** The id of the container or image the query named. */
  id: string;
  type: 'container' | 'image';
  /** In podman's order: overlay's walk order, each added or deleted path after the directories above it. */
  changes: Change[];
}

/** Paths podman leaves out of a diff: the files and mount points it manages in every container. */
const MANAGED = new Set([
  '/dev',
  '/etc/hostname',
  '/etc/hosts',
  '/etc/resolv.conf',
  '/proc',
  '/run',
  '/run/notify',
  '/run/.containerenv',
  '/run/secrets',
  '/run/podman-init',
  '/sys',
  '/etc/mtab',
]);

/**
 * The changes of a container's read-write layer against its image, or of an image's top layer against its parent,
 * as `podman diff` lists them.
 */
export async function diff(store: Store, query: string, options: DiffOptions = {}): Promise<DiffResult> {
  const type = options.type ?? 'all';
  let target: { id: string; type: 'container' | 'image'; layer: string | undefined } | undefined;
  if (type !== 'container') {
    const image = await store.image(query);
    if (image) target = { id: image.id, type: 'image', layer: image.topLayer };
  }
  if (!target && type !== 'image') {
    const container = await store.container(query);
    if (container) target = { id: container.id, type: 'container', layer: container.layer };
  }
  if (!target) {
    const what = type === 'all' ? 'image or container' : type;
    throw new CarrierError('CARRIER_NOT_FOUND', `${what} not known: ${query}`);
  }
  if (target.layer === undefined) return { id: target.id, type: target.type, changes: [] };
  const chain = await layerChain(store, target.layer);
  const all = await store.layerChanges(chain[chain.length - 1]!.id, chain[chain.length - 2]?.id);
  return { id: target.id, type: target.type, changes: all.filter((c) => !MANAGED.has(c.path)) };
}

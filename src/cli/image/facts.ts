// Facts about images that `images` and `inspect` share: the config, podman's size, repo digests, parent and children.
import type { ImageInfo, LayerInfo, Store } from '../../index.js';
import { splitName } from '../names.js';

export type Json = Record<string, unknown>;

export interface ImageFacts {
  info: ImageInfo;
  config: Json;
  /** What podman reports as Size: the layers' uncompressed sizes plus every big data item's size. */
  size: number;
  repoDigests: string[];
  parentId: string;
  children: number;
  containers: number;
}

async function readConfig(store: Store, info: ImageInfo): Promise<Json> {
  try {
    const v = JSON.parse((await store.imageBigData(info.id, `sha256:${info.id}`)).toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' ? (v as Json) : {};
  } catch {
    return {};
  }
}

/** `repo@digest` for every name and every manifest digest of the image, sorted (podman's RepoDigests). */
function repoDigests(info: ImageInfo): string[] {
  const out = new Set<string>();
  for (const name of info.names) {
    const repo = splitName(name).repo;
    for (const d of info.digests) out.add(`${repo}@${d}`);
  }
  return [...out].sort();
}

export async function gatherFacts(store: Store, images: ImageInfo[]): Promise<ImageFacts[]> {
  const layers = new Map<string, LayerInfo>((await store.layers()).map((l) => [l.id, l]));
  const containers = await store.containers();
  const byTop = new Map<string, ImageInfo[]>();
  for (const i of images) if (i.topLayer) byTop.set(i.topLayer, [...(byTop.get(i.topLayer) ?? []), i]);
  const out: ImageFacts[] = [];
  for (const info of images) {
    const bigData = Object.values(info.record['big-data-sizes'] ?? {}).reduce<number>((a, b) => a + (typeof b === 'number' ? b : 0), 0);
    // Parent image: one whose top layer is the parent of this image's top layer. Children: the reverse.
    const parentLayer = info.topLayer ? layers.get(info.topLayer)?.parent : undefined;
    const parent = parentLayer ? byTop.get(parentLayer)?.[0] : undefined;
    const children = info.topLayer
      ? images.filter((o) => o.id !== info.id && o.topLayer !== undefined && layers.get(o.topLayer)?.parent === info.topLayer).length
      : 0;
    out.push({
      info,
      config: await readConfig(store, info),
      size: info.size + bigData,
      repoDigests: repoDigests(info),
      parentId: parent?.id ?? '',
      children,
      containers: containers.filter((c) => c.image === info.id).length,
    });
  }
  return out;
}

export function labelsOf(config: Json): unknown {
  const c = config.config as Json | undefined;
  const labels = c?.Labels;
  return labels !== null && typeof labels === 'object' && Object.keys(labels).length > 0 ? labels : null;
}

export function createdUnix(info: ImageInfo): number {
  const t = info.created ? Date.parse(info.created) : NaN;
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}


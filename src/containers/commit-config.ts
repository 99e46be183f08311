// The config and manifest of a committed image, as podman 4.3 (buildah) writes them: the parent image's settings with
// the container's and then the `--change` ones on top, the new layer's diff_id and a history entry appended, fields
// in the order Go marshals its structs (and escaped as Go escapes strings), for an OCI or a Docker schema 2 image.
import { sha256Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER_TAR,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER_GZIP,
  OCI_LAYER_TAR,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
  layerCompression,
} from '../oci/mediatypes.js';
import type { ImageChanges } from './commit-changes.js';

export type CommitFormat = 'oci' | 'docker';

type Json = Record<string, unknown>;

/** The container's own settings, baked into the image as podman bakes a container's. */
export interface ContainerSettings {
  entrypoint?: string[];
  cmd?: string[];
  /** `K=V`, the container's whole environment (the image's included). */
  env?: string[];
  user?: string;
  workingDir?: string;
}

export interface CommitConfigInput {
  format: CommitFormat;
  /** The parent image's config, parsed. */
  parent: Json;
  parentId: string;
  /** The parent image's first name ('' when it has none): `FROM name` in the history comment. */
  parentName: string;
  /** The parent's stored manifest, parsed, when it has one that lists its layers. */
  parentManifest?: { mediaType: string; layers: Descriptor[]; annotations?: Record<string, string> };
  containerId: string;
  container: ContainerSettings;
  changes: ImageChanges;
  author?: string;
  /** Docker format only: the config's `comment`. */
  message?: string;
  created: string;
  /** annotations: the new layer descriptor's (zstd:chunked's TOC and tar-split positions). */
  layer: { diffID: string; digest: string; size: number; compression: 'gzip' | 'zstd' | 'none'; annotations?: Record<string, string> };
}

export interface CommitDocuments {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? [...(v as string[])] : undefined);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const keys = (v: unknown): string[] => (isObject(v) ? Object.keys(v) : []);

/** Go's map ordering when it marshals: sorted keys. */
function sortedSet(names: Iterable<string>): Json | undefined {
  const all = [...new Set(names)].sort();
  return all.length === 0 ? undefined : Object.fromEntries(all.map((k) => [k, {}]));
}

/** buildah's SetEnv: any entry for the key is dropped and the new one appended. */
function setEnv(env: string[], entry: string): string[] {
  const key = entry.slice(0, entry.indexOf('=') + 1);
  return [...env.filter((e) => !e.startsWith(key)), entry];
}

/** The run settings every format shares, after the container's and the changes' are applied (podman's order). */
interface Settings {
  user: string;
  exposedPorts: string[];
  env: string[] | undefined;
  entrypoint: string[] | undefined;
  cmd: string[] | undefined;
  volumes: string[];
  workingDir: string;
  labels: Map<string, string>;
  stopSignal: string;
  onBuild: string[] | undefined;
}

function settings(input: CommitConfigInput, base: Json): Settings {
  const c = input.container;
  const ch = input.changes;
  const s: Settings = {
    user: str(base.User),
    exposedPorts: keys(base.ExposedPorts),
    env: strings(base.Env),
    entrypoint: c.entrypoint ?? strings(base.Entrypoint) ?? [],
    cmd: c.cmd ?? strings(base.Cmd),
    volumes: keys(base.Volumes),
    workingDir: c.workingDir ?? (str(base.WorkingDir) || '/'),
    labels: new Map(Object.entries(isObject(base.Labels) ? base.Labels : {}).map(([k, v]) => [k, str(v)])),
    stopSignal: str(base.StopSignal),
    onBuild: strings(base.OnBuild),
  };
  for (const e of c.env ?? []) s.env = setEnv(s.env ?? [], e.includes('=') ? e : `${e}=`);
  if (c.user !== undefined && c.user !== '') s.user = c.user;
  if (ch.user !== undefined) s.user = ch.user;
  s.exposedPorts.push(...ch.exposedPorts);
  for (const e of ch.env) s.env = setEnv(s.env ?? [], e);
  if (ch.entrypoint !== undefined) s.entrypoint = ch.entrypoint;
  if (ch.cmd !== undefined) s.cmd = ch.cmd;
  s.volumes.push(...ch.volumes);
  if (ch.workingDir !== undefined) s.workingDir = ch.workingDir;
  for (const [k, v] of ch.labels) s.labels.set(k, v);
  if (ch.stopSignal !== undefined) s.stopSignal = ch.stopSignal;
  if (ch.onBuild.length > 0) s.onBuild = [...(s.onBuild ?? []), ...ch.onBuild];
  return s;
}

const labelsJson = (labels: Map<string, string>): Json | undefined =>
  labels.size === 0 ? undefined : Object.fromEntries([...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** image-spec's ImageConfig, every field omitempty. */
function ociRunConfig(s: Settings, base: Json): Json {
  const nonEmpty = (a: string[] | undefined): string[] | undefined => (a && a.length > 0 ? a : undefined);
  return {
    User: s.user || undefined,
    ExposedPorts: sortedSet(s.exposedPorts),
    Env: nonEmpty(s.env),
    Entrypoint: nonEmpty(s.entrypoint),
    Cmd: nonEmpty(s.cmd),
    Volumes: sortedSet(s.volumes),
    WorkingDir: s.workingDir || undefined,
    Labels: labelsJson(s.labels),
    StopSignal: s.stopSignal || undefined,
    ArgsEscaped: base.ArgsEscaped === true ? true : undefined,
  };
}

/** Docker's container Config: most fields always present (null when unset). */
function dockerRunConfig(s: Settings, base: Json, image: string): Json {
  const bool = (k: string): boolean => base[k] === true;
  return {
    Hostname: str(base.Hostname),
    Domainname: str(base.Domainname),
    User: s.user,
    AttachStdin: bool('AttachStdin'),
    AttachStdout: bool('AttachStdout'),
    AttachStderr: bool('AttachStderr'),
    ExposedPorts: sortedSet(s.exposedPorts),
    Tty: bool('Tty'),
    OpenStdin: bool('OpenStdin'),
    StdinOnce: bool('StdinOnce'),
    Env: s.env ?? null,
    Cmd: s.cmd ?? null,
    Healthcheck: isObject(base.Healthcheck) ? base.Healthcheck : undefined,
    ArgsEscaped: bool('ArgsEscaped') || undefined,
    Image: image,
    Volumes: sortedSet(s.volumes) ?? null,
    WorkingDir: s.workingDir,
    Entrypoint: s.entrypoint ?? null,
    NetworkDisabled: bool('NetworkDisabled') || undefined,
    MacAddress: str(base.MacAddress) || undefined,
    OnBuild: s.onBuild ?? null,
    Labels: labelsJson(s.labels) ?? null,
    StopSignal: s.stopSignal || undefined,
    StopTimeout: typeof base.StopTimeout === 'number' ? base.StopTimeout : undefined,
    Shell: strings(base.Shell)?.length ? base.Shell : undefined,
  };
}

/** One history entry in a format's field order; `docker` writes `created` always (Go's zero time when unset). */
function historyEntry(h: Json, format: CommitFormat): Json {
  const created = typeof h.created === 'string' ? h.created : format === 'docker' ? '0001-01-01T00:00:00Z' : undefined;
  const by = str(h.created_by) || undefined;
  const author = str(h.author) || undefined;
  const comment = str(h.comment) || undefined;
  const empty = h.empty_layer === true ? true : undefined;
  return format === 'oci'
    ? { created, created_by: by, author, comment, empty_layer: empty }
    : { created, author, created_by: by, comment, empty_layer: empty };
}

/** JSON as Go's encoding/json writes it: compact, with <, >, & and the line separators escaped. */
export function goJsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

const OCI_LAYER: Record<'gzip' | 'zstd' | 'none', string> = { gzip: OCI_LAYER_GZIP, zstd: OCI_LAYER_ZSTD, none: OCI_LAYER_TAR };
const DOCKER_LAYER: Record<'gzip' | 'none', string> = { gzip: DOCKER_LAYER_GZIP, none: DOCKER_LAYER_TAR };

/**
 * A parent layer's descriptor in the new manifest: the blob the parent's manifest names (what a pull cached, so a
 * push uploads it unchanged), retyped for the format; the uncompressed tar (its diff_id) where the format cannot name
 * that compression or the parent's manifest does not say.
 */
function parentLayer(format: CommitFormat, diffID: string, diffSize: number, d: Descriptor | undefined): Descriptor {
  const compression = d ? layerCompression(d.mediaType) : undefined;
  if (d && compression !== undefined && compression !== 'none') {
    if (format === 'oci') return { mediaType: OCI_LAYER[compression], digest: d.digest, size: d.size, ...(d.annotations ? { annotations: d.annotations } : {}) };
    if (compression === 'gzip') return { mediaType: DOCKER_LAYER.gzip, digest: d.digest, size: d.size };
  }
  return { mediaType: format === 'oci' ? OCI_LAYER_TAR : DOCKER_LAYER_TAR, digest: diffID, size: diffSize };
}

/** The committed image's config and manifest. `parentLayers` are the parent's layers, base first. */
export function commitDocuments(input: CommitConfigInput, parentLayers: { diffID: string; diffSize: number }[]): CommitDocuments {
  const { format, parent } = input;
  const base = isObject(parent.config) ? parent.config : {};
  const s = settings(input, base);
  const author = input.author !== undefined && input.author !== '' ? input.author : str(parent.author) || undefined;
  const diffIDs = [...parentLayers.map((l) => l.diffID), input.layer.diffID];
  const createdBy = (strings(base.Shell) ?? []).join(' ') || '/bin/sh';
  const fresh: Json = { created: input.created, created_by: createdBy, author, comment: `FROM ${input.parentName}` };
  const history = [...(Array.isArray(parent.history) ? parent.history.filter(isObject) : []), fresh].map((h) => historyEntry(h, format));
  const platform = {
    architecture: str(parent.architecture) || undefined,
    variant: str(parent.variant) || undefined,
    os: str(parent.os) || undefined,
  };
  const osExtra = { 'os.version': str(parent['os.version']) || undefined, 'os.features': strings(parent['os.features'])?.length ? parent['os.features'] : undefined };
  const rootfs = { type: 'layers', diff_ids: diffIDs };

  let config: Json;
  if (format === 'oci') {
    config = { created: input.created, author, ...platform, ...osExtra, config: ociRunConfig(s, base), rootfs, history };
  } else {
    const run = dockerRunConfig(s, base, input.parentName);
    config = {
      comment: input.message || undefined,
      created: input.created,
      container: input.containerId,
      container_config: run,
      author,
      config: run,
      ...platform,
      parent: `sha256:${input.parentId}`,
      rootfs,
      history,
      ...osExtra,
    };
  }
  const configBytes = goJsonBytes(config);
  const configDigest = sha256Digest(configBytes);

  const stored = input.parentManifest && input.parentManifest.layers.length === parentLayers.length ? input.parentManifest : undefined;
  const layers = parentLayers.map((l, i) => parentLayer(format, l.diffID, l.diffSize, stored?.layers[i]));
  const { compression, digest, size, annotations: layerAnnotations } = input.layer;
  layers.push({ mediaType: format === 'oci' || compression === 'zstd' ? OCI_LAYER[compression] : DOCKER_LAYER[compression], digest, size, ...(layerAnnotations ? { annotations: layerAnnotations } : {}) });

  let manifest: Json;
  if (format === 'oci') {
    const annotations = stored?.mediaType === OCI_MANIFEST && stored.annotations && Object.keys(stored.annotations).length > 0 ? stored.annotations : undefined;
    manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) })),
      annotations,
    };
  } else {
    manifest = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, size: configBytes.length, digest: configDigest },
      layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
    };
  }
  const manifestBytes = goJsonBytes(manifest);
  return {
    config: configBytes,
    configDigest,
    manifest: manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    manifestMediaType: format === 'oci' ? OCI_MANIFEST : DOCKER_MANIFEST,
  };
}

import os from 'node:os';
import { CarrierError } from '../errors.js';
import { parseDigest } from './digest.js';
import {
  DOCKER_MANIFEST_V1,
  DOCKER_MANIFEST_V1_SIGNED,
  OCI_INDEX,
  OCI_MANIFEST,
  manifestKind,
  type ManifestKind,
} from './mediatypes.js';

/** Largest manifest, index or config document accepted (the cap podman applies to manifest bodies). */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export type IndexEntry = Descriptor & { platform?: Platform };

export interface ImageManifest {
  kind: 'manifest';
  /** The body's `mediaType`, else the declared one, else inferred (OCI) from the fields present. */
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: IndexEntry[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export type ParsedManifest = ImageManifest | ImageIndex;

export interface ImageConfig {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  created?: string;
  author?: string;
  /** The container defaults (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ...), as found. */
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Record<string, unknown>[];
}

function invalid(message: string, cause?: unknown): CarrierError {
  return new CarrierError('CARRIER_INVALID_MANIFEST', message, cause === undefined ? {} : { cause });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJSONObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_DOCUMENT_BYTES) {
    throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `${what} is ${bytes.length} bytes, over the ${MAX_DOCUMENT_BYTES}-byte cap`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (err) {
    throw invalid(`${what} is not valid JSON: ${(err as Error).message}`, err);
  }
  if (!isObject(doc)) throw invalid(`${what} must be a JSON object`);
  return doc;
}

function optionalString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`${where}.${key} must be a string`);
  return v;
}

function requiredString(o: Record<string, unknown>, key: string, where: string): string {
  const v = optionalString(o, key, where);
  if (v === undefined || v === '') throw invalid(`${where}.${key} is missing`);
  return v;
}

function stringMap(v: unknown, where: string): Record<string, string> {
  if (!isObject(v)) throw invalid(`${where} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw invalid(`${where}[${JSON.stringify(k)}] must be a string`);
    // defineProperty: plain assignment of '__proto__' would set the prototype and lose the annotation
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function stringArray(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalid(`${where} must be an array of strings`);
  return v as string[];
}

/** Validates one descriptor: media type, digest syntax, a non-negative integer size. */
export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw invalid(`${where} must be an object`);
  const mediaType = requiredString(v, 'mediaType', where);
  let digest: string;
  try {
    digest = parseDigest(v.digest).digest;
  } catch (err) {
    throw invalid(`${where}.digest: ${(err as Error).message}`, err);
  }
  const size = v.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${where}.size must be a non-negative integer, got ${JSON.stringify(size)}`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (v.urls !== undefined) d.urls = stringArray(v.urls, `${where}.urls`);
  if (v.annotations !== undefined) d.annotations = stringMap(v.annotations, `${where}.annotations`);
  const artifactType = optionalString(v, 'artifactType', where);
  if (artifactType !== undefined) d.artifactType = artifactType;
  return d;
}

function parsePlatform(v: unknown, where: string): Platform {
  if (!isObject(v)) throw invalid(`${where} must be an object`);
  const p: Platform = { os: requiredString(v, 'os', where), architecture: requiredString(v, 'architecture', where) };
  const variant = optionalString(v, 'variant', where);
  if (variant !== undefined) p.variant = variant;
  const osVersion = optionalString(v, 'os.version', where);
  if (osVersion !== undefined) p['os.version'] = osVersion;
  if (v['os.features'] !== undefined) p['os.features'] = stringArray(v['os.features'], `${where}.os.features`);
  return p;
}

/**
 * Parses and validates an image manifest or index.
 *
 * @param declaredMediaType the type the document was served or referenced as (Content-Type, a descriptor's
 *   mediaType). When the body carries a `mediaType` too, the two must agree.
 *
 * Refused with CARRIER_INVALID_MANIFEST: non-JSON, schemaVersion other than 2, unknown or schema 1 media types,
 * fields that contradict the media type (an index with `layers`/`config`, a manifest with `manifests`), bad
 * descriptors (digest syntax, negative or fractional sizes). Over {@link MAX_DOCUMENT_BYTES}: CARRIER_LIMIT_EXCEEDED.
 */
export function parseManifest(bytes: Uint8Array, declaredMediaType?: string): ParsedManifest {
  const doc = parseJSONObject(bytes, 'manifest');
  if (doc.schemaVersion !== 2) throw invalid(`unsupported manifest schemaVersion ${JSON.stringify(doc.schemaVersion)} (want 2)`);
  const bodyType = optionalString(doc, 'mediaType', 'manifest');
  if (bodyType !== undefined && declaredMediaType !== undefined && bodyType !== declaredMediaType) {
    throw invalid(`manifest declared as '${declaredMediaType}' but its body says '${bodyType}'`);
  }
  const hasManifests = doc.manifests !== undefined;
  const hasImageFields = doc.config !== undefined || doc.layers !== undefined;
  let mediaType = bodyType ?? declaredMediaType;
  if (mediaType === undefined || mediaType === '') {
    // OCI documents may omit mediaType; the fields present decide (image-spec: the property SHOULD be used).
    if (hasManifests && !hasImageFields) mediaType = OCI_INDEX;
    else if (hasImageFields && !hasManifests) mediaType = OCI_MANIFEST;
    else throw invalid('manifest has no mediaType and its fields do not say whether it is a manifest or an index');
  }
  if (mediaType === DOCKER_MANIFEST_V1 || mediaType === DOCKER_MANIFEST_V1_SIGNED) {
    throw invalid('Docker schema 1 manifests are not supported');
  }
  const kind: ManifestKind | undefined = manifestKind(mediaType);
  if (kind === undefined) throw invalid(`unsupported manifest media type '${mediaType}'`);

  let annotations: Record<string, string> | undefined;
  if (doc.annotations !== undefined) annotations = stringMap(doc.annotations, 'manifest.annotations');
  const subject = doc.subject === undefined ? undefined : parseDescriptor(doc.subject, 'manifest.subject');

  if (kind === 'index') {
    if (hasImageFields) throw invalid(`an index (${mediaType}) must not have 'config' or 'layers'`);
    if (!Array.isArray(doc.manifests)) throw invalid(`index (${mediaType}) has no 'manifests' array`);
    const manifests = doc.manifests.map((m: unknown, i: number): IndexEntry => {
      const d: IndexEntry = parseDescriptor(m, `manifests[${i}]`);
      const platform = (m as Record<string, unknown>).platform;
      if (platform !== undefined) d.platform = parsePlatform(platform, `manifests[${i}].platform`);
      return d;
    });
    const out: ImageIndex = { kind, mediaType, manifests };
    if (annotations) out.annotations = annotations;
    if (subject) out.subject = subject;
    return out;
  }
  if (hasManifests) throw invalid(`an image manifest (${mediaType}) must not have 'manifests'`);
  if (doc.config === undefined) throw invalid(`image manifest (${mediaType}) has no 'config'`);
  if (!Array.isArray(doc.layers)) throw invalid(`image manifest (${mediaType}) has no 'layers' array`);
  const out: ImageManifest = {
    kind,
    mediaType,
    config: parseDescriptor(doc.config, 'config'),
    layers: doc.layers.map((l: unknown, i: number) => parseDescriptor(l, `layers[${i}]`)),
  };
  if (annotations) out.annotations = annotations;
  if (subject) out.subject = subject;
  return out;
}

/**
 * Parses and validates an image config: `os` and `architecture` strings, `rootfs.type` 'layers' and `diff_ids`
 * all valid digests. Other fields are kept as found (type-checked where Carrier reads them).
 */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  const doc = parseJSONObject(bytes, 'image config');
  const out: ImageConfig = {
    os: requiredString(doc, 'os', 'config'),
    architecture: requiredString(doc, 'architecture', 'config'),
    rootfs: { type: 'layers', diff_ids: [] },
  };
  for (const key of ['variant', 'os.version', 'created', 'author'] as const) {
    const v = optionalString(doc, key, 'config');
    if (v !== undefined) out[key] = v;
  }
  if (doc['os.features'] !== undefined) out['os.features'] = stringArray(doc['os.features'], 'config.os.features');
  if (doc.config !== undefined && doc.config !== null) {
    if (!isObject(doc.config)) throw invalid('config.config must be an object');
    out.config = doc.config;
  }
  if (doc.history !== undefined && doc.history !== null) {
    if (!Array.isArray(doc.history) || !doc.history.every(isObject)) throw invalid('config.history must be an array of objects');
    out.history = doc.history;
  }
  const rootfs = doc.rootfs;
  if (!isObject(rootfs)) throw invalid('config.rootfs is missing');
  if (rootfs.type !== 'layers') throw invalid(`config.rootfs.type must be 'layers', got ${JSON.stringify(rootfs.type)}`);
  if (!Array.isArray(rootfs.diff_ids)) throw invalid('config.rootfs.diff_ids must be an array');
  out.rootfs.diff_ids = rootfs.diff_ids.map((d: unknown, i: number) => {
    try {
      return parseDigest(d).digest;
    } catch (err) {
      throw invalid(`config.rootfs.diff_ids[${i}]: ${(err as Error).message}`, err);
    }
  });
  return out;
}

export interface PlatformWant {
  os: string;
  architecture: string;
  variant?: string;
}

/** Variants that are the architecture's default: `arm64` and `arm64/v8` are the same platform. */
function normalVariant(architecture: string, variant: string | undefined): string {
  if (architecture === 'arm64' && (variant === undefined || variant === '' || variant === 'v8')) return 'v8';
  return variant ?? '';
}

/**
 * Picks the index entry for a platform: an exact os/architecture/variant match first; for 32-bit arm, an older
 * variant the wanted one can run (v7 runs v6 and v5), newest first; then an entry without a variant. Entries
 * that are not image manifests or indexes are ignored. Returns undefined when nothing fits.
 */
export function choosePlatform(index: ImageIndex, want: PlatformWant): IndexEntry | undefined {
  const candidates = index.manifests.filter(
    (m) => manifestKind(m.mediaType) !== undefined && m.platform?.os === want.os && m.platform.architecture === want.architecture,
  );
  const wantVariant = normalVariant(want.architecture, want.variant);
  const variantOf = (m: IndexEntry): string => normalVariant(want.architecture, m.platform?.variant);
  const exact = candidates.find((m) => variantOf(m) === wantVariant);
  if (exact) return exact;
  if (want.architecture === 'arm' && /^v[5-8]$/.test(wantVariant)) {
    for (let v = Number(wantVariant.slice(1)) - 1; v >= 5; v--) {
      const older = candidates.find((m) => variantOf(m) === `v${v}`);
      if (older) return older;
    }
  }
  if (wantVariant === '' || want.variant === undefined) return candidates.find((m) => variantOf(m) === '') ?? candidates[0];
  return candidates.find((m) => variantOf(m) === '');
}

/** The OCI platform of this process: Node's `process.arch` in GOARCH spelling, with the arm variant. */
export function hostPlatform(): PlatformWant {
  const osName = process.platform === 'win32' ? 'windows' : process.platform;
  switch (process.arch) {
    case 'x64':
      return { os: osName, architecture: 'amd64' };
    case 'arm64':
      return { os: osName, architecture: 'arm64', variant: 'v8' };
    case 'arm': {
      const v = Number((process.config.variables as Record<string, unknown>).arm_version ?? 7);
      return { os: osName, architecture: 'arm', variant: `v${Number.isInteger(v) && v >= 5 ? v : 7}` };
    }
    case 'ia32':
      return { os: osName, architecture: '386' };
    case 'ppc64':
      return { os: osName, architecture: os.endianness() === 'LE' ? 'ppc64le' : 'ppc64' };
    case 'mipsel':
      return { os: osName, architecture: 'mipsle' };
    default: // s390x, riscv64, loong64, mips: same spelling as GOARCH
      return { os: osName, architecture: process.arch };
  }
}

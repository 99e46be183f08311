// `carrier image inspect` and `carrier inspect`: podman image inspect's JSON shape.
import type { Store } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { ExitError } from '../errors.js';
import { goJson, renderTemplate } from '../format.js';
import { withStore } from '../open-store.js';
import { gatherFacts, labelsOf, type ImageFacts, type Json } from './facts.js';
import { writeOut } from '../output.js';

const DOCKER_V2S2 = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_CONFIG_KEYS = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped'] as const;
const HISTORY_KEYS = ['created', 'created_by', 'author', 'comment', 'empty_layer'] as const;

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === false || v === 0 ||
    (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
}

/** Only the keys of the OCI image config (podman converts Docker configs to OCI for inspect), empty ones omitted. */
function ociRunConfig(config: Json): Json {
  const c = (config.config ?? {}) as Json;
  const out: Json = {};
  for (const k of OCI_CONFIG_KEYS) if (!isEmpty(c[k])) out[k] = c[k];
  return out;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

async function inspectData(store: Store, f: ImageFacts): Promise<Json> {
  const { info, config } = f;
  let manifest: Json = {};
  try {
    manifest = JSON.parse((await store.imageBigData(info.id, 'manifest')).toString('utf8')) as Json;
  } catch {
    /* no manifest */
  }
  const rootfs = (config.rootfs ?? {}) as Json;
  const history = Array.isArray(config.history) ? (config.history as Json[]) : [];
  const graphData: Json = {};
  if (info.topLayer) {
    const lowers: string[] = [];
    const layers = new Map((await store.layers()).map((l) => [l.id, l]));
    for (let p = layers.get(info.topLayer)?.parent, guard = 0; p !== undefined && guard < 10_000; guard++) {
      lowers.push(store.layerDiffPath(p));
      p = layers.get(p)?.parent;
    }
    if (lowers.length > 0) graphData.LowerDir = lowers.join(':');
    graphData.UpperDir = store.layerDiffPath(info.topLayer);
    graphData.WorkDir = store.layerDiffPath(info.topLayer).replace(/\/diff$/, '/work');
  }
  const out: Json = {
    Id: info.id,
    Digest: info.digest ?? '',
    RepoTags: info.names,
    RepoDigests: f.repoDigests,
    Parent: f.parentId,
    // podman: an image whose manifest is OCI reports its first history entry's comment; a Docker schema 2 image
    // the config's own top-level comment (checked with configs carrying both).
    Comment: str(manifest.mediaType) === DOCKER_V2S2 ? str(config.comment) : str(history[0]?.comment),
    Created: str(config.created) || info.created || '',
    Config: ociRunConfig(config),
    Version: str(config.docker_version),
    Author: str(config.author),
    Architecture: str(config.architecture),
  };
  if (str(config.variant)) out.Variant = config.variant;
  out.Os = str(config.os);
  out.Size = f.size;
  out.VirtualSize = f.size;
  out.GraphDriver = { Name: store.driverName, Data: graphData };
  const hc = (config.config as Json | undefined)?.Healthcheck;
  if (hc) out.Healthcheck = hc;
  out.RootFS = { Type: str(rootfs.type), Layers: Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [] };
  out.Labels = labelsOf(config);
  out.Annotations = manifest.annotations !== null && typeof manifest.annotations === 'object' ? manifest.annotations : {};
  out.ManifestType = str(manifest.mediaType) || (manifest.config ? 'application/vnd.oci.image.manifest.v1+json' : '');
  out.User = str(((config.config ?? {}) as Json).User);
  out.History = history.map((h) => {
    const e: Json = {};
    for (const k of HISTORY_KEYS) if (!isEmpty(h[k])) e[k] = h[k];
    return e;
  });
  out.NamesHistory = info.namesHistory.length > 0 ? info.namesHistory : null;
  return out;
}

/** `generic` is `carrier inspect` (podman's object-agnostic inspect), which words "not found" differently. */
export async function inspectImages(ctx: Context, generic: boolean): Promise<number> {
  if (generic) {
    const type = ctx.flags.string('type');
    if (type !== 'image' && type !== 'all') throw new UsageError(`carrier inspect only knows images (--type ${type})`);
  }
  const format = ctx.flags.string('format');
  return withStore(ctx.globals, async (store) => {
    const found: Json[] = [];
    const errors: string[] = [];
    for (const q of ctx.args) {
      const img = await store.image(q);
      if (!img) {
        errors.push(generic ? `no such object: ${JSON.stringify(q)}` : `${q}: image not known`);
        continue;
      }
      const [facts] = await gatherFacts(store, [img]);
      found.push(await inspectData(store, facts!));
    }
    if (format !== undefined && format !== 'json') {
      for (const d of found) writeOut(`${renderTemplate(format, d)}\n`);
    } else {
      writeOut(`${goJson(found, 5)}\n`);
    }
    if (errors.length > 0) throw new ExitError(`inspecting object: ${errors.join('\n')}`, 125);
    return 0;
  });
}

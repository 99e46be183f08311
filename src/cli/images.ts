// Image commands: images, inspect, tag, untag, rmi, image exists, load — podman 4.3.1's output and exit codes.
//
// Exit codes, as podman 4.3.1 gives them (each checked against podman on a private store):
//   podman image exists X      0 found, 1 not found (no output at all)
//   podman rmi X               1 when X is not known ("Error: X: image not known"), 2 when a container uses it
//   podman tag/untag/inspect X 125 when X is not known (same "image not known" message)
//   anything else failing      125
import { mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarrierError } from '../errors.js';
import { Store, type ImageInfo, type LayerInfo } from '../store/store.js';
import { loadImage } from '../load-image.js';
import { normalizeLocalName, normalizePullName } from '../reference.js';
import { UsageError, parseArgs, stringFlag, type ParsedArgs } from './args.js';
import { goJson, goLocalTime, humanSize, renderTable, renderTemplate, timeAgo } from './format.js';

export { ExitError, type GlobalOptions } from './errors.js';
import { ExitError, type GlobalOptions } from './errors.js';

import { withStore } from './open-store.js';

export function has(args: ParsedArgs, ...names: string[]): boolean {
  return names.some((n) => args.flags.has(n));
}

function isNotFound(err: unknown): boolean {
  return err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND';
}

// ---- facts about images shared by `images` and `inspect` ---------------------------------------------------------

interface ImageFacts {
  info: ImageInfo;
  config: Record<string, unknown>;
  /** What podman reports as Size: the layers' uncompressed sizes plus every big data item's size. */
  size: number;
  repoDigests: string[];
  parentId: string;
  children: number;
  containers: number;
}

type Json = Record<string, unknown>;

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

/** `quay.io/x/y:2` → repo `quay.io/x/y`, tag `2`; `repo@sha256:…` → tag `<none>`. */
function splitName(name: string): { repo: string; tag: string } {
  const at = name.indexOf('@');
  if (at !== -1) return { repo: name.slice(0, at), tag: '<none>' };
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { repo: name, tag: '<none>' };
}

async function gatherFacts(store: Store, images: ImageInfo[]): Promise<ImageFacts[]> {
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

function labelsOf(config: Json): unknown {
  const c = config.config as Json | undefined;
  const labels = c?.Labels;
  return labels !== null && typeof labels === 'object' && Object.keys(labels).length > 0 ? labels : null;
}

function createdUnix(info: ImageInfo): number {
  const t = info.created ? Date.parse(info.created) : NaN;
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

// ---- carrier images ---------------------------------------------------------------------------------------------

const IMAGES_HELP = `Usage: carrier images [options]

List images in local storage.

Options:
  -a, --all          show all images (by default intermediate images are hidden)
      --digests      show digests
      --format FMT   'json', or a Go-template subset ({{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, ...)
  -n, --noheading    do not print column headings
      --no-trunc     do not truncate output
  -q, --quiet        display only image IDs
`;

export async function imagesCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--format']);
  if (has(args, '--help', '-h')) {
    process.stdout.write(IMAGES_HELP);
    return 0;
  }
  if (args.positionals.length > 1) throw new UsageError('images accepts at most one argument');
  const all = has(args, '-a', '--all');
  const quiet = has(args, '-q', '--quiet');
  const noTrunc = has(args, '--no-trunc');
  const digests = has(args, '--digests');
  const format = stringFlag(args, '--format');
  return withStore(g, async (store) => {
    let images = await store.images();
    if (args.positionals[0] !== undefined) {
      const hit = await store.image(args.positionals[0]);
      images = hit ? [hit] : [];
    }
    const facts = await gatherFacts(store, images);
    // Newest first (podman's default --sort created); stable for equal times.
    const sorted = facts
      .map((f, i) => ({ f, i }))
      .sort((a, b) => createdUnix(b.f.info) - createdUnix(a.f.info) || (Date.parse(b.f.info.created ?? '') || 0) - (Date.parse(a.f.info.created ?? '') || 0) || a.i - b.i)
      .map((x) => x.f)
      // Intermediate images (no name, and some image is built on them) are hidden unless --all.
      .filter((f) => all || f.info.names.length > 0 || f.children === 0);
    const id = (f: ImageFacts): string => (noTrunc ? `sha256:${f.info.id}` : f.info.id.slice(0, 12));
    if (quiet) {
      const seen = new Set<string>();
      for (const f of sorted) {
        const s = id(f);
        if (!seen.has(s)) process.stdout.write(`${s}\n`);
        seen.add(s);
      }
      return 0;
    }
    // podman emits one entry per name (an image with 3 names appears 3 times, identically), at least one per image.
    const rows = sorted.flatMap((f) => (f.info.names.length > 0 ? f.info.names : [undefined]).map((name) => ({ f, name })));
    if (format === 'json') {
      const out = rows.map(({ f }) => {
        const unix = createdUnix(f.info);
        const entry: Json = {
          Id: f.info.id,
          ParentId: f.parentId,
          RepoTags: null,
          RepoDigests: f.repoDigests,
          Size: f.size,
          SharedSize: 0,
          VirtualSize: f.size,
          Labels: labelsOf(f.config),
          Containers: f.containers,
        };
        if (f.info.readOnly) entry.ReadOnly = true;
        if (f.info.names.length === 0 && f.children === 0) entry.Dangling = true;
        if (f.info.names.length > 0) entry.Names = f.info.names;
        if (f.info.digest) entry.Digest = f.info.digest;
        if (f.info.namesHistory.length > 0) entry.History = f.info.namesHistory;
        entry.Created = unix;
        entry.CreatedAt = goLocalTime(unix);
        return entry;
      });
      process.stdout.write(`${goJson(out, 4)}\n`);
      return 0;
    }
    const cells = rows.map(({ f, name }) => {
      const { repo, tag } = name ? splitName(name) : { repo: '<none>', tag: '<none>' };
      return {
        Repository: repo,
        Tag: tag,
        Digest: f.info.digest ?? '',
        ID: id(f),
        Id: f.info.id,
        Created: timeAgo(f.info.created),
        CreatedSince: timeAgo(f.info.created),
        CreatedAt: goLocalTime(createdUnix(f.info)),
        Size: humanSize(f.size),
        Names: f.info.names,
        Labels: labelsOf(f.config),
        Containers: f.containers,
      };
    });
    if (format !== undefined && format !== 'table') {
      for (const c of cells) process.stdout.write(`${renderTemplate(format, c)}\n`);
      return 0;
    }
    const header = ['REPOSITORY', 'TAG', ...(digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
    const body = cells.map((c) => [c.Repository, c.Tag, ...(digests ? [c.Digest] : []), c.ID, c.Created, c.Size]);
    process.stdout.write(renderTable(has(args, '-n', '--noheading') ? body : [header, ...body]));
    return 0;
  });
}

// ---- carrier inspect / image inspect ----------------------------------------------------------------------------

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

const INSPECT_HELP = `Usage: carrier image inspect [--format FMT] IMAGE [IMAGE...]

Display the configuration of one or more images as a JSON array (podman image inspect's shape).
`;

/** `generic` is `carrier inspect` (podman's object-agnostic inspect), which words "not found" differently. */
export async function inspectCommand(g: GlobalOptions, argv: string[], generic: boolean): Promise<number> {
  const args = parseArgs(argv, ['--format', '-f', '--type', '-t']);
  if (has(args, '--help', '-h')) {
    process.stdout.write(INSPECT_HELP);
    return 0;
  }
  const type = stringFlag(args, '--type') ?? stringFlag(args, '-t');
  if (type !== undefined && type !== 'image' && type !== 'all') throw new UsageError(`carrier inspect only knows images (--type ${type})`);
  if (args.positionals.length === 0) throw new UsageError('inspect needs at least one IMAGE');
  const format = stringFlag(args, '--format') ?? stringFlag(args, '-f');
  return withStore(g, async (store) => {
    const found: Json[] = [];
    const errors: string[] = [];
    for (const q of args.positionals) {
      const img = await store.image(q);
      if (!img) {
        errors.push(generic ? `no such object: ${JSON.stringify(q)}` : `${q}: image not known`);
        continue;
      }
      const [facts] = await gatherFacts(store, [img]);
      found.push(await inspectData(store, facts!));
    }
    if (format !== undefined && format !== 'json') {
      for (const d of found) process.stdout.write(`${renderTemplate(format, d)}\n`);
    } else {
      process.stdout.write(`${goJson(found, 5)}\n`);
    }
    if (errors.length > 0) throw new ExitError(`inspecting object: ${errors.join('\n')}`, 125);
    return 0;
  });
}

// ---- tag / untag / exists ---------------------------------------------------------------------------------------

export async function tagCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (has(args, '--help', '-h')) {
    process.stdout.write('Usage: carrier tag IMAGE TARGET_NAME [TARGET_NAME...]\n\nAdd names to a local image.\n');
    return 0;
  }
  const [query, ...names] = args.positionals;
  if (query === undefined || names.length === 0) throw new UsageError('tag requires at least 2 arguments: IMAGE TARGET_NAME...');
  const full = names.map((n) => normalizeLocalName(n));
  return withStore(g, async (store) => {
    const img = await store.image(query);
    if (!img) throw new ExitError(`${query}: image not known`, 125);
    await store.tag(img.id, full);
    return 0;
  });
}

export async function untagCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (has(args, '--help', '-h')) {
    process.stdout.write('Usage: carrier untag IMAGE [NAME...]\n\nRemove names from a local image (all of them when no NAME is given).\n');
    return 0;
  }
  const [query, ...names] = args.positionals;
  if (query === undefined) throw new UsageError('untag requires at least 1 argument: IMAGE [NAME...]');
  const full = names.map((n) => normalizeLocalName(n));
  return withStore(g, async (store) => {
    const img = await store.image(query);
    if (!img) throw new ExitError(`${query}: image not known`, 125);
    if (full.length === 0) {
      await store.untag(img.id);
      return 0;
    }
    for (const n of full) {
      if (!img.names.includes(n)) throw new ExitError(`${n}: tag not known`, 125);
    }
    await store.untag(img.id, full);
    return 0;
  });
}

export async function existsCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (args.positionals.length !== 1) throw new UsageError('image exists requires exactly 1 argument: IMAGE');
  return withStore(g, async (store) => ((await store.image(args.positionals[0]!)) ? 0 : 1));
}

// ---- rmi --------------------------------------------------------------------------------------------------------

/** The stored name that `query` designates on `img` (podman's lookup order: exact, localhost/, docker.io/, suffix). */
function matchedName(img: ImageInfo, query: string): string | undefined {
  if (img.names.includes(query)) return query;
  for (const normalise of [normalizeLocalName, normalizePullName]) {
    try {
      const n = normalise(query);
      if (img.names.includes(n)) return n;
    } catch {
      /* not a name */
    }
  }
  const withTag = /:[^:/]*$/.test(query) ? query : `${query}:latest`;
  return img.names.find((n) => n.endsWith(`/${withTag}`));
}

const RMI_HELP = `Usage: carrier rmi [options] IMAGE [IMAGE...]

Remove images. An image with several names, given by name, only loses that name.

Options:
  -a, --all     remove all images
  -f, --force   also remove the containers using the image, and images given by id with several names
`;

export async function rmiCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, []);
  if (has(args, '--help', '-h')) {
    process.stdout.write(RMI_HELP);
    return 0;
  }
  const force = has(args, '-f', '--force');
  const all = has(args, '-a', '--all');
  if (all && args.positionals.length > 0) throw new UsageError('when using the --all switch, you may not pass any images names or IDs');
  if (!all && args.positionals.length === 0) throw new UsageError('image name or ID must be specified');
  return withStore(g, async (store) => {
    const untagged: string[] = [];
    const deleted: string[] = [];
    const errors: { message: string; code: number }[] = [];
    const remove = async (img: ImageInfo): Promise<void> => {
      if (!force) {
        const user = (await store.containers()).find((c) => c.image === img.id);
        if (user) {
          errors.push({ message: `image used by ${user.id}: image is in use by a container: consider listing external containers and force-removing image`, code: 2 });
          return;
        }
      }
      try {
        const res = await store.removeImage(img.id, { force });
        untagged.push(...res.untagged);
        deleted.push(res.id);
      } catch (err) {
        if (err instanceof CarrierError && err.code === 'CARRIER_IN_USE') errors.push({ message: err.message, code: 2 });
        else if (isNotFound(err)) errors.push({ message: `${img.id}: image not known`, code: 1 });
        else errors.push({ message: err instanceof Error ? err.message : String(err), code: 125 });
      }
    };
    if (all) {
      for (const img of await store.images()) if (!img.readOnly) await remove(img);
    } else {
      for (const query of args.positionals) {
        const img = await store.image(query);
        if (!img) {
          errors.push({ message: `${query}: image not known`, code: 1 });
          continue;
        }
        if (img.names.length > 1) {
          const byId = /^[0-9a-f]+$/.test(query) && img.id.startsWith(query);
          const byDigest = query.startsWith('sha256:');
          if (!force && (byId || byDigest)) {
            errors.push({
              message: `unable to delete image "${img.id}" by ${byId ? 'ID' : 'digest'} with more than one tag ([${img.names.join(' ')}]): please force removal`,
              code: 125,
            });
            continue;
          }
          if (!byId && !byDigest) {
            const name = matchedName(img, query);
            if (name !== undefined) {
              await store.untag(img.id, [name]);
              untagged.push(name);
              continue;
            }
          }
        }
        await remove(img);
      }
    }
    for (const n of untagged) process.stdout.write(`Untagged: ${n}\n`);
    for (const id of deleted) process.stdout.write(`Deleted: ${id}\n`);
    if (errors.length === 0) return 0;
    for (const e of errors.slice(0, -1)) process.stderr.write(`Error: ${e.message}\n`);
    const last = errors[errors.length - 1]!;
    throw new ExitError(last.message, last.code);
  });
}

// ---- load -------------------------------------------------------------------------------------------------------

const LOAD_HELP = `Usage: carrier load [options]

Load images from a docker-archive or oci-archive (plain, gzip or zstd) or an OCI layout directory.

Options:
  -i, --input FILE   read from FILE (default: standard input, when it is not a terminal)
  -q, --quiet        do not print progress
`;

export async function loadCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['-i', '--input']);
  if (has(args, '--help', '-h')) {
    process.stdout.write(LOAD_HELP);
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('load takes no arguments (use -i FILE)');
  const quiet = has(args, '-q', '--quiet');
  let input = stringFlag(args, '-i') ?? stringFlag(args, '--input');
  let tmp: string | undefined;
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (input === undefined) {
      if (process.stdin.isTTY) throw new UsageError('cannot read from terminal; use -i FILE or redirect standard input');
      tmp = await mkdtemp(join(tmpdir(), 'carrier-stdin-'));
      input = join(tmp, 'archive');
      await pipeline(process.stdin, createWriteStream(input, { mode: 0o600 }));
    }
    const file = input;
    const result = await withStore(g, (store) =>
      loadImage(store, file, {
        signal: controller.signal,
        onLayer: quiet
          ? undefined
          : (e) => {
              if (e.state === 'applying') process.stderr.write(`Copying blob ${e.diffID}\n`);
              else if (e.state === 'exists') process.stderr.write(`Copying blob ${e.diffID} skipped: already exists\n`);
            },
      }),
    );
    for (const img of result.images) {
      if (img.names.length === 0) process.stdout.write(`Loaded image: sha256:${img.id}\n`);
      for (const n of img.names) process.stdout.write(`Loaded image: ${n}\n`);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  }
}

// ---- `carrier image <sub>` --------------------------------------------------------------------------------------

export async function imageCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'ls':
    case 'list':
      return imagesCommand(g, rest);
    case 'rm':
      return rmiCommand(g, rest);
    case 'tag':
      return tagCommand(g, rest);
    case 'untag':
      return untagCommand(g, rest);
    case 'load':
      return loadCommand(g, rest);
    case 'exists':
      return existsCommand(g, rest);
    case 'inspect':
      return inspectCommand(g, rest, false);
    case 'prune':
      // Loaded on demand: system.ts builds on this module.
      return (await import('./system.js')).imagePruneCommand(g, rest);
    default:
      throw new UsageError(`unknown image command '${sub ?? ''}' (ls, rm, tag, untag, load, exists, inspect, prune)`);
  }
}

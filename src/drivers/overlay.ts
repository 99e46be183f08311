// The overlay driver's on-disk layout, as containers/storage's overlay driver keeps it:
//   overlay/<id>/{diff/, link, lower | empty/, work/, merged/}   and   overlay/l/<link> -> ../<id>/diff
// `lower` lists the parent's link first, then the parent's own lowers, joined by ':' (nearest parent first).
// A layer's diff/ holds its own changes only: whiteouts as 0/0 character devices and opaque directories as
// `*.overlay.opaque` xattrs (native overlay), or as aufs `.wh.` files when a mount program (fuse-overlayfs) is
// configured — a store never mixes the two. A read-write layer is mounted at <id>/merged.
import { mkdir, writeFile, unlink, readdir, readlink, lstat, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { CarrierError } from '../errors.js';
import { pathExists } from '../fs/paths.js';
import { readText } from '../fs/read-text.js';
import { removeTree } from '../fs/remove.js';
import { fsBatch, makeDirs, type FsStep, type FsStepError } from '../fs/batch.js';
import { isRootless } from '../host.js';
import { applyLayer, type AppliedLayer } from '../layer/apply.js';
import { isFullId, isLinkId, linkId } from '../store/ids.js';
import type { ApplyDiffOptions, CreateReadWriteOptions, DiffSource, Driver, DriverMountOptions, DriverUsage } from './driver.js';
import { isMounted, mountOverlay, unmountOverlay } from './mount.js';
import type { Change } from './changes.js';
import { overlayChanges } from './overlay-changes.js';
import { overlayDiffStream } from './overlay-diff.js';
import { LayerModes } from './layer-modes.js';
import { treeUsage } from './usage.js';

const LINK_DIR = 'l';
/** A base layer's diff/ mode in c/storage; a child layer's diff/ takes its parent's mode. */
const DEFAULT_DIFF_MODE = 0o555;

export interface OverlayLayerPaths {
  dir: string;
  diff: string;
  work: string;
  merged: string;
}

export interface OverlayDriverOptions {
  /** storage.conf `force_mask`: a base layer's diff/ mode. */
  forceMask?: number;
  /** storage.conf `mount_program` (fuse-overlayfs): mounts go through it and layers keep aufs `.wh.` whiteouts. */
  mountProgram?: string;
  /** storage.conf `mountopt`, one option per entry. */
  mountOptions?: string[];
  /** Graphroots of read-only additional image stores, searched by {@link OverlayDriver.locate}. */
  additionalImageStores?: string[];
}

export class OverlayDriver implements Driver {
  readonly name = 'overlay';
  readonly flat = false;
  private readonly modes: LayerModes;

  constructor(
    /** graphroot/overlay */
    readonly home: string,
    readonly options: OverlayDriverOptions = {},
  ) {
    this.modes = new LayerModes(this.defaultDiffMode, (id) => this.diffMode(id));
  }

  async init(): Promise<void> {
    // The home, its l/ and the flag file are looked at together with the link check's listings, which show whether
    // the two directories are there: in a store that exists (every command after the first) nothing is made, and
    // opening costs one thread-pool round trip here, where making sure of each in turn cost six.
    const ldir = join(this.home, LINK_DIR);
    // podman (rootful) scans every layer for `.wh.` files to decide whether the store needs a mount program unless
    // this flag says; Carrier writes native-overlay whiteouts (0/0 char devices), so the answer is known.
    const flag = join(this.home, '.has-mount-program');
    const list = (dir: string): Promise<string[] | undefined> => readdir(dir).catch(() => undefined);
    const found = await Promise.all([list(ldir), list(this.home), pathExists(flag)]);
    let [links, entries] = found;
    const hasFlag = found[2];
    if (links === undefined || entries === undefined) {
      await makeDirs(this.home, 0o700);
      await makeDirs(ldir, 0o755);
      [links, entries] = await Promise.all([list(ldir), list(this.home)]);
    }
    if (!hasFlag) await writeFile(flag, this.options.mountProgram ? 'true' : 'false', { mode: 0o600 });
    // Safe without the layers lock: a link is made after its layer's diff/ and removed before it, so a dangling one
    // is left only by something else removing a layer directory.
    await this.pruneDanglingLinks(links ?? [], entries ?? []);
  }

  paths(id: string): OverlayLayerPaths {
    const dir = join(this.home, id);
    return { dir, diff: join(dir, 'diff'), work: join(dir, 'work'), merged: join(dir, 'merged') };
  }

  contentDir(id: string): string {
    return this.paths(id).diff;
  }

  layerDir(id: string): string {
    return this.paths(id).dir;
  }

  async locate(id: string): Promise<string> {
    for (const home of [this.home, ...this.additionalHomes()]) {
      const diff = join(home, id, 'diff');
      if (await pathExists(diff)) return diff;
    }
    throw new CarrierError('CARRIER_NOT_FOUND', `layer ${id} has no diff directory in this store or its additional image stores`);
  }

  mountPath(id: string): string {
    return this.paths(id).merged;
  }

  /**
   * Creates the layer's directories. diff/ is left writable (0755) so an unprivileged extraction can fill it;
   * {@link applyDiff} gives it its final mode ({@link defaultDiffMode} or the parent's) once filled.
   */
  async create(id: string, parent: string | undefined): Promise<void> {
    await this.make(id, parent, parent === undefined ? undefined : this.lowerFor(parent));
  }

  async createReadWrite(id: string, parent: string | undefined, options: CreateReadWriteOptions = {}): Promise<void> {
    // the parent's lowers and mode are read while the store marks the layer (options.recorded): a container's create
    // waited for each of these round trips in turn
    const lower = parent === undefined ? undefined : this.lowerFor(parent);
    lower?.catch(() => {}); // awaited in make
    const mode = this.modes.modeFor(parent);
    mode.catch(() => {}); // awaited in make, or the layer is removed for the failure that came first
    await options.recorded;
    await this.make(id, parent, lower, mode);
  }

  /**
   * The layer's directories, made by one native job in this order: the layer's directory (EEXIST when there: then
   * nothing is removed), diff/ and then its link (a link never leads nowhere), work/, merged/, and the `lower` file
   * (`lower`, read from the parent beforehand) or empty/ (a base layer). With `diffMode` (a read-write layer) diff/
   * gets it at once; a layer to be filled keeps diff/ writable (0755) until {@link applyDiff} settles its mode. On a
   * failure after the first step the layer is removed.
   */
  private async make(id: string, parent: string | undefined, lower: Promise<string> | undefined, diffMode?: Promise<number>): Promise<void> {
    lower?.catch(() => {});
    diffMode?.catch(() => {});
    const p = this.paths(id);
    const link = linkId();
    const steps: FsStep[] = [
      { op: 'mkdir', path: p.dir, mode: 0o700 },
      { op: 'spreadDir', path: p.dir, name: 'diff', mode: 0o755 },
      { op: 'symlink', path: join(this.home, LINK_DIR, link), target: join('..', id, 'diff') },
      { op: 'write', path: join(p.dir, 'link'), data: link, mode: 0o644 },
      { op: 'mkdir', path: p.work, mode: 0o700 },
      { op: 'mkdir', path: p.merged, mode: 0o700 },
    ];
    let made = false;
    try {
      const [text, mode] = await Promise.all([lower, diffMode]);
      steps.push(text === undefined ? { op: 'mkdir', path: join(p.dir, 'empty'), mode: 0o700 } : { op: 'write', path: join(p.dir, 'lower'), data: text, mode: 0o644 });
      if (mode !== undefined) steps.push({ op: 'chmod', path: p.diff, mode });
      await fsBatch(steps).catch((err: FsStepError) => {
        made = err.step > 0;
        throw err;
      });
      made = true;
      this.modes.created(id, parent);
      if (mode !== undefined) this.modes.forget(id);
    } catch (err) {
      if (made) await this.remove(id).catch(() => {});
      throw err;
    }
  }

  async applyDiff(id: string, parent: string | undefined, source: DiffSource, options: ApplyDiffOptions = {}): Promise<AppliedLayer> {
    const { parentReady: _ignored, onApplied: _later, ...applyOptions } = options;
    const diff = this.paths(id).diff;
    const applied = await applyLayer(source, diff, {
      ...applyOptions,
      rootless: isRootless(),
      // With a mount program (fuse-overlayfs) c/storage keeps `.wh.` files as they are; native overlay wants 0/0
      // char devices and opaque xattrs. A store must not mix the two.
      whiteouts: this.options.mountProgram ? 'aufs' : 'overlay',
    });
    await this.modes.settle(id, parent, diff);
    return applied;
  }

  async diff(id: string, _parent: string | undefined): Promise<Readable> {
    const diff = await this.locate(id);
    return overlayDiffStream(diff);
  }

  /** The layer's diff/ (here or in an additional image store) against the lower layers its `lower` file names. */
  async changes(id: string, _parent: string | undefined): Promise<Change[]> {
    const diff = await this.locate(id);
    const lowerFile = join(dirname(diff), 'lower');
    const lowers = await this.resolveLowers(lowerFile, await readOptional(lowerFile));
    return overlayChanges(Buffer.from(diff), lowers.map((l) => Buffer.from(l)));
  }

  /** The mode c/storage gives a base layer's diff/: force_mask, else 0555. A child layer's diff/ takes its parent's mode. */
  get defaultDiffMode(): number {
    return this.options.forceMask ?? DEFAULT_DIFF_MODE;
  }

  /** The mode of the layer's diff/ (here, or in an additional image store). */
  async diffMode(id: string): Promise<number> {
    return (await stat(await this.locate(id))).mode & 0o7777;
  }

  /** `lower` content for a child of `parent` (which may live in an additional image store). */
  async lowerFor(parent: string): Promise<string> {
    const pdir = await this.locateLayerDir(parent);
    const linkFile = join(pdir, 'link');
    const lowerFile = join(pdir, 'lower');
    const [linkText, lowerText] = await Promise.all([readText(linkFile), readOptional(lowerFile)]);
    const parentLink = linkText.trim();
    if (!isLinkId(parentLink)) throw badLink(linkFile, parentLink);
    return [`${LINK_DIR}/${parentLink}`, ...checkedLowers(lowerFile, lowerText)].join(':');
  }

  /**
   * The lower directories of a layer, nearest first, as absolute paths: each `l/<link>` in this store's home, or,
   * as containers/storage resolves them, in the first additional image store that has it.
   */
  async lowerDirs(id: string): Promise<string[]> {
    const lowerFile = join(this.paths(id).dir, 'lower');
    return this.resolveLowers(lowerFile, await readOptional(lowerFile));
  }

  /** A `lower` file's links as absolute paths, nearest first (see {@link lowerDirs}). */
  private async resolveLowers(lowerFile: string, lower: string): Promise<string[]> {
    const links = checkedLowers(lowerFile, lower);
    if (links.length === 0) return [];
    const homes = this.additionalHomes();
    return Promise.all(
      links.map(async (l) => {
        const own = join(this.home, l);
        if (homes.length === 0 || (await pathExists(own))) return own;
        for (const home of homes) if (await pathExists(join(home, l))) return join(home, l);
        return own;
      }),
    );
  }

  /** overlay/ of each additional image store. */
  private additionalHomes(): string[] {
    return (this.options.additionalImageStores ?? []).map((r) => join(r, 'overlay'));
  }

  /** overlay/<id> here, else in the first additional image store that has it. */
  private async locateLayerDir(id: string): Promise<string> {
    return dirname(await this.locate(id));
  }

  async get(id: string, options: DriverMountOptions = {}): Promise<string> {
    const p = this.paths(id);
    // all looked at (and merged/ and work/ made where missing) together: each is a thread-pool round trip (or several)
    // that a `carrier mount` waited for in turn (issue 21). Not recursively: a layer whose directory is gone gets none.
    const madeDir = (dir: string): Promise<void> =>
      mkdir(dir, { mode: 0o700 }).then(
        () => {},
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST' && err.code !== 'ENOENT') throw err;
        },
      );
    const [hasDiff, mounted, lowers] = await Promise.all([
      pathExists(p.diff),
      isMounted(p.merged),
      this.lowerDirs(id),
      madeDir(p.merged),
      madeDir(p.work),
    ]);
    if (!hasDiff) throw new CarrierError('CARRIER_NOT_FOUND', `layer ${id} has no diff directory to mount`, { path: p.diff });
    if (mounted) return p.merged;
    await mountOverlay(
      {
        lowerdirs: lowers.length > 0 ? lowers : [join(p.dir, 'empty')],
        upperdir: p.diff,
        workdir: p.work,
        target: p.merged,
        ...(isRootless() ? { userxattr: true } : {}),
        extraOptions: [...(this.options.mountOptions ?? []), ...(options.options ?? [])],
      },
      this.options.mountProgram ? { method: 'fuse', mountProgram: this.options.mountProgram } : {},
    );
    return p.merged;
  }

  async put(id: string): Promise<void> {
    const merged = this.paths(id).merged;
    if (await isMounted(merged)) await unmountOverlay(merged);
  }

  async usage(id: string): Promise<DriverUsage> {
    return treeUsage(this.paths(id).diff);
  }

  /**
   * Removes the layer directory and its link; missing pieces are fine (a half-created layer). A layer still mounted
   * is unmounted first, so the removal never walks into its merged tree.
   */
  async remove(id: string): Promise<void> {
    this.modes.forget(id);
    const p = this.paths(id);
    // the link's name is read while a mount is looked for; the link goes before the directory it leads to
    const [link] = await Promise.all([readText(join(p.dir, 'link')).catch(() => undefined), this.put(id)]);
    if (link && isLinkId(link.trim())) await unlink(join(this.home, LINK_DIR, link.trim())).catch(ignoreEnoent);
    await removeTree(p.dir);
  }

  async exists(id: string): Promise<boolean> {
    return pathExists(this.paths(id).dir);
  }

  async cleanup(recorded: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.home).catch(() => [] as string[])) {
      if (isFullId(name) && !recorded.has(name)) {
        await this.remove(name);
        removed.push(`overlay/${name}`);
      }
    }
    const ldir = join(this.home, LINK_DIR);
    for (const name of await readdir(ldir).catch(() => [] as string[])) {
      const target = await readlink(join(ldir, name)).catch(() => undefined);
      const id = target?.match(/^\.\.\/([0-9a-f]{64})\/diff$/)?.[1];
      if (id === undefined || !recorded.has(id)) {
        await unlink(join(ldir, name)).catch(() => {});
        removed.push(`overlay/${LINK_DIR}/${name}`);
      }
    }
    return removed;
  }

  /**
   * Links in l/ whose layer is gone, removed. Every store open runs this, so the links are checked together: one
   * after another, a store of 130 layers spent ~20 ms of each short command here, a thread-pool round trip per link.
   */
  private async pruneDanglingLinks(names: string[], entries: string[]): Promise<void> {
    const ldir = join(this.home, LINK_DIR);
    // Every layer directory has one link, made after its diff/ and removed before it, so a link left dangling (its
    // directory removed by something else) makes more links than layer directories. Each link is looked at only then:
    // a stat of every link cost every command of a store of ~130 layers a few milliseconds (issue 21).
    if (names.length <= entries.filter(isFullId).length) return;
    await Promise.all(
      names.map(async (name) => {
        const target = join(ldir, name);
        try {
          await stat(target);
        } catch {
          if ((await lstat(target).catch(() => undefined))?.isSymbolicLink()) await unlink(target).catch(ignoreEnoent);
        }
      }),
    );
  }
}

/**
 * The `l/<link>` entries of a `lower` file, each checked to be a short link (a damaged or planted file must not name
 * a path outside the store's l/ directory); an empty file is no lowers.
 */
function checkedLowers(lowerFile: string, lower: string): string[] {
  const text = lower.trim();
  if (text === '') return [];
  return text.split(':').map((entry) => {
    if (!entry.startsWith(`${LINK_DIR}/`) || !isLinkId(entry.slice(LINK_DIR.length + 1))) throw badLink(lowerFile, entry);
    return entry;
  });
}

function badLink(file: string, link: string): CarrierError {
  return new CarrierError(
    'CARRIER_CORRUPT_STORE',
    `${file} names an invalid layer link ${JSON.stringify(link)} (a link is l/ and 26 characters of A-Z2-7); it is not followed`,
    { path: file },
  );
}

async function readOptional(p: string): Promise<string> {
  return readText(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
}

function ignoreEnoent(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

// The overlay driver's on-disk layout, as containers/storage's overlay driver keeps it:
//   overlay/<id>/{diff/, link, lower | empty/, work/, merged/}   and   overlay/l/<link> -> ../<id>/diff
// `lower` lists the parent's link first, then the parent's own lowers, joined by ':' (nearest parent first).
import { pathExists } from '../fs/paths.js';
import { mkdir, readFile, writeFile, symlink, unlink, stat, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { linkId } from '../store/ids.js';
import { removeTree } from '../fs/remove.js';

const LINK_DIR = 'l';
/** A base layer's diff/ mode in c/storage; a child layer's diff/ takes its parent's mode. */
const DEFAULT_DIFF_MODE = 0o555;

export interface OverlayLayerPaths {
  dir: string;
  diff: string;
  work: string;
  merged: string;
}

export class OverlayDriver {
  readonly name = 'overlay';

  constructor(
    /** graphroot/overlay */
    readonly home: string,
    readonly options: { forceMask?: number; mountProgram?: string } = {},
  ) {}

  async init(): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o700 });
    await mkdir(join(this.home, LINK_DIR), { recursive: true, mode: 0o755 });
    // podman (rootful) scans every layer for `.wh.` files to decide whether the store needs a mount program unless
    // this flag says; Carrier writes native-overlay whiteouts (0/0 char devices), so the answer is known.
    const flag = join(this.home, '.has-mount-program');
    if (!(await exists(flag))) await writeFile(flag, this.options.mountProgram ? 'true' : 'false', { mode: 0o600 });
  }

  paths(id: string): OverlayLayerPaths {
    const dir = join(this.home, id);
    return { dir, diff: join(dir, 'diff'), work: join(dir, 'work'), merged: join(dir, 'merged') };
  }

  /**
   * Creates the layer's directories. diff/ is left writable (0755) so an unprivileged extraction can fill it;
   * the caller gives it its final mode ({@link defaultDiffMode} or the parent's {@link diffMode}) once filled.
   */
  async create(id: string, parent: string | undefined): Promise<OverlayLayerPaths> {
    const p = this.paths(id);
    await mkdir(p.dir, { mode: 0o700 });
    try {
      await mkdir(p.diff, { mode: 0o755 });
      const link = linkId();
      await symlink(join('..', id, 'diff'), join(this.home, LINK_DIR, link));
      await writeFile(join(p.dir, 'link'), link, { mode: 0o644 });
      await mkdir(p.work, { mode: 0o700 });
      await mkdir(p.merged, { mode: 0o700 });
      if (parent === undefined) {
        await mkdir(join(p.dir, 'empty'), { mode: 0o700 });
      } else {
        const lower = await this.lowerFor(parent);
        await writeFile(join(p.dir, 'lower'), lower, { mode: 0o644 });
      }
    } catch (err) {
      await this.remove(id).catch(() => {});
      throw err;
    }
    return p;
  }

  /** The mode c/storage gives a base layer's diff/: force_mask, else 0555. A child layer's diff/ takes its parent's mode. */
  get defaultDiffMode(): number {
    return this.options.forceMask ?? DEFAULT_DIFF_MODE;
  }

  async diffMode(id: string): Promise<number> {
    return (await stat(this.paths(id).diff)).mode & 0o7777;
  }

  /** `lower` content for a child of `parent`. */
  async lowerFor(parent: string): Promise<string> {
    const pdir = this.paths(parent).dir;
    const parentLink = (await readFile(join(pdir, 'link'), 'utf8')).trim();
    const lowers = [`${LINK_DIR}/${parentLink}`];
    const parentLower = await readFile(join(pdir, 'lower'), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    if (parentLower) lowers.push(...parentLower.split(':'));
    return lowers.join(':');
  }

  /** The lower directories of a layer, nearest first, as absolute paths. */
  async lowerDirs(id: string): Promise<string[]> {
    const lower = await readFile(join(this.paths(id).dir, 'lower'), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    return lower ? lower.split(':').map((l) => join(this.home, l)) : [];
  }

  /** Removes the layer directory and its link; missing pieces are fine (a half-created layer). */
  async remove(id: string): Promise<void> {
    const p = this.paths(id);
    const link = await readFile(join(p.dir, 'link'), 'utf8').catch(() => undefined);
    if (link && /^[A-Z2-7]{26}$/.test(link.trim())) await unlink(join(this.home, LINK_DIR, link.trim())).catch(ignoreEnoent);
    await removeTree(p.dir);
  }

  /** Links in l/ whose layer is gone (left by a crash between unlink steps), removed. */
  async pruneDanglingLinks(): Promise<void> {
    const ldir = join(this.home, LINK_DIR);
    for (const name of await readdir(ldir).catch(() => [] as string[])) {
      const target = join(ldir, name);
      try {
        await stat(target);
      } catch {
        if ((await lstat(target).catch(() => undefined))?.isSymbolicLink()) await unlink(target).catch(ignoreEnoent);
      }
    }
  }

  async exists(id: string): Promise<boolean> {
    return exists(this.paths(id).dir);
  }
}

const exists = pathExists;

function ignoreEnoent(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}


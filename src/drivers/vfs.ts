// The vfs driver's on-disk layout, as containers/storage's vfs driver keeps it:
//   vfs/dir/<id>/    the layer's whole tree (its parent's tree, then its own diff applied; no whiteouts left)
// There are no link/lower files and nothing is ever mounted: a container's root file system is its layer directory.
//
// Carrier adds one private directory, vfs/carrier-staging/<id>/, where a layer's tar is extracted before it is
// merged over its parent's tree into vfs/dir/<id>. It exists only while the layer is flagged incomplete (the
// layers lock held) and is removed with the layer.
import { mkdir, stat, access } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTree } from '../fs/remove.js';

/** A base layer's directory mode in c/storage's vfs driver; a child layer's directory takes its parent's mode. */
const DEFAULT_DIR_MODE = 0o555;
const STAGING = 'carrier-staging';

export class VfsDriver {
  readonly name = 'vfs';

  constructor(
    /** graphroot/vfs */
    readonly home: string,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o700 });
    await mkdir(join(this.home, 'dir'), { recursive: true, mode: 0o700 });
  }

  /** The layer's directory: its whole tree. */
  dir(id: string): string {
    return join(this.home, 'dir', id);
  }

  /** Where the layer's own tar is extracted (aufs-style `.wh.` whiteouts) before it is merged over the parent. */
  stagingDir(id: string): string {
    return join(this.home, STAGING, id);
  }

  /** Directory of staging trees (each named by a layer id). */
  get stagingRoot(): string {
    return join(this.home, STAGING);
  }

  /**
   * Creates the layer's (empty) directory, writable (0755) so it can be filled; the caller gives it its final mode
   * ({@link defaultDiffMode} or the parent's {@link diffMode}) once filled.
   */
  async create(id: string, _parent?: string): Promise<void> {
    await mkdir(join(this.home, 'dir'), { recursive: true, mode: 0o700 });
    await mkdir(this.dir(id), { mode: 0o755 });
  }

  /** Creates the empty staging directory a layer's tar is extracted into. */
  async createStaging(id: string): Promise<string> {
    await mkdir(this.stagingRoot, { recursive: true, mode: 0o700 });
    const p = this.stagingDir(id);
    await removeTree(p);
    await mkdir(p, { mode: 0o755 });
    return p;
  }

  get defaultDiffMode(): number {
    return DEFAULT_DIR_MODE;
  }

  async diffMode(id: string): Promise<number> {
    return (await stat(this.dir(id))).mode & 0o7777;
  }

  /** Removes the layer directory and its staging tree; missing pieces are fine (a half-created layer). */
  async remove(id: string): Promise<void> {
    await removeTree(this.stagingDir(id));
    await removeTree(this.dir(id));
  }

  /** Nothing to prune: vfs keeps no links. */
  async pruneDanglingLinks(): Promise<void> {}

  async exists(id: string): Promise<boolean> {
    try {
      await access(this.dir(id));
      return true;
    } catch {
      return false;
    }
  }
}

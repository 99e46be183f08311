// The mode a layer's directory ends with, as containers/storage gives it layer by layer: a base layer gets the
// driver's default (force_mask, else 0555), a child its parent's. The directory stays writable (0755) while it is
// filled, and the layers of one image are created before any is filled and filled at the same time, so a child's
// mode is found by walking up the layers still being filled to one that is complete (or to the base).
import { chmod } from 'node:fs/promises';

export class LayerModes {
  /** Layers created and not yet given their mode → their parent. */
  private readonly filling = new Map<string, string | undefined>();

  constructor(
    private readonly defaultMode: number,
    /** The final mode of a complete layer (read from its directory). */
    private readonly modeOf: (id: string) => Promise<number>,
  ) {}

  created(id: string, parent: string | undefined): void {
    this.filling.set(id, parent);
  }

  /** Gives `dir`, layer `id`'s filled directory, its final mode. */
  async settle(id: string, parent: string | undefined, dir: string): Promise<void> {
    await chmod(dir, await this.decide(this.filling.has(id) ? this.filling.get(id) : parent));
    this.filling.delete(id);
  }

  forget(id: string): void {
    this.filling.delete(id);
  }

  /** The mode a new child of `parent` (none: a base layer) ends with. */
  modeFor(parent: string | undefined): Promise<number> {
    return this.decide(parent);
  }

  private async decide(parent: string | undefined): Promise<number> {
    for (let id = parent, guard = 0; guard < 100_000; guard++) {
      if (id === undefined) return this.defaultMode;
      if (!this.filling.has(id)) return this.modeOf(id);
      id = this.filling.get(id);
    }
    return this.defaultMode;
  }
}

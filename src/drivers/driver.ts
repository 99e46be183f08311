// The one contract every storage driver keeps, mirroring containers/storage's graph driver: how a layer becomes a
// directory, a stack of layers a mounted tree, and a directory a layer again. The store (records, locks) decides
// *which* layer and *when*; a driver decides *where* and *how*. Nothing outside src/drivers/ asks which driver it has.
import type { Readable } from 'node:stream';
import type { AppliedLayer, ApplyLayerOptions } from '../layer/apply.js';

/** Where a layer's tar comes from: a stream of the (possibly compressed) blob, or a file holding it. */
export type DiffSource = Readable | string;

export interface ApplyDiffOptions extends Omit<ApplyLayerOptions, 'whiteouts' | 'rootless'> {}

export interface DriverUsage {
  /** Bytes of regular-file data the layer's own directory holds. */
  bytes: number;
  /** Entries (files, directories, links, ...) in the layer's own directory. */
  inodes: number;
}

export interface DriverMountOptions {
  /** Extra mount options (storage.conf `mountopt`). */
  options?: string[];
}

export interface Driver {
  /** `overlay` or `vfs`: names the record directories (`<name>-layers`, ...) and the driver's home under graphroot. */
  readonly name: 'overlay' | 'vfs';
  /** graphroot/<name>. */
  readonly home: string;

  /** Makes the driver's home and whatever it keeps beside the layers. Idempotent. */
  init(): Promise<void>;

  /** Creates an empty, writable layer `id` on top of `parent` (none: a base layer). */
  create(id: string, parent: string | undefined): Promise<void>;
  /** Removes the layer's directories; missing pieces are fine (a half-created layer). */
  remove(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;

  /**
   * Extracts a layer's tar (compressed or not) into layer `id` (created, empty) as this driver stores layers, then
   * gives the layer its final directory mode. Verifies what `options` names (digest, size, diff_id).
   */
  applyDiff(id: string, parent: string | undefined, source: DiffSource, options?: ApplyDiffOptions): Promise<AppliedLayer>;

  /**
   * The layer's own changes against `parent` as an uncompressed tar stream, as containers/storage writes it:
   * deletions become `.wh.NAME` entries, an opaque directory a `.wh..wh..opq` entry.
   */
  diff(id: string, parent: string | undefined): Promise<Readable>;

  /**
   * The directory holding the layer's own content as it is stored (overlay: its diff/; vfs: its whole tree). Read by
   * export (tar-split assembly) and checkout.
   */
  contentDir(id: string): string;
  /** True when {@link contentDir} holds the layer's whole tree (vfs); false when it holds only its changes (overlay). */
  readonly flat: boolean;

  /**
   * The layer's whole tree as a directory, mounting where the driver mounts (overlay at `<id>/merged`). Called under
   * the store's mount count: the store calls it when the count goes from 0 to 1.
   */
  get(id: string, options?: DriverMountOptions): Promise<string>;
  /** Undoes {@link get} (unmounts where the driver mounts). Safe when nothing is mounted. */
  put(id: string): Promise<void>;
  /** Where {@link get} puts the layer's tree, whether or not it is mounted now. */
  mountPath(id: string): string;

  /** Space the layer's own directory takes. */
  usage(id: string): Promise<DriverUsage>;

  /** Removes what a crash left behind that no layer record names (given the ids that are recorded). */
  cleanup(recorded: ReadonlySet<string>): Promise<string[]>;
}

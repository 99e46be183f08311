// The one contract every storage driver keeps, mirroring containers/storage's graph driver: how a layer becomes a
// directory, a stack of layers a mounted tree, and a directory a layer again. The store (records, locks) decides
// *which* layer and *when*; a driver decides *where* and *how*. Nothing outside src/drivers/ asks which driver it has.
import type { Readable } from 'node:stream';
import type { AppliedLayer, ApplyLayerOptions, RebuiltTar } from '../layer/apply.js';
import type { Change } from './changes.js';

/** Where a layer's tar comes from: a stream of the (possibly compressed) blob, a file holding it, or its parts. */
export type DiffSource = Readable | string | RebuiltTar;

export interface ApplyDiffOptions extends Omit<ApplyLayerOptions, 'whiteouts' | 'rootless'> {
  /**
   * Settles once the parent's content is final. A driver whose layer holds its parent's tree (vfs) extracts the tar
   * at once but waits for this before merging over the parent, so the layers of one image can be applied together;
   * a driver that keeps only the layer's own changes (overlay) does not wait. Default: the parent is final.
   */
  parentReady?: Promise<void>;
  /**
   * Called with the verified result as soon as the layer's own content is extracted, before the driver waits for
   * `parentReady`: the blob the layer came from is final then, whatever a later merge does. A pull lets go of the
   * blob's download lock here, so a lock is never held across a wait for another layer. A driver that does not call
   * it has it called once applyDiff returns.
   */
  onApplied?: (applied: AppliedLayer) => Promise<void>;
}

export interface CreateReadWriteOptions {
  /**
   * Settles once the store has named the layer where a crash leaves it to be removed (its marker, see
   * src/store/layers.ts): the driver may read what it needs of the parent meanwhile, and makes nothing before. A
   * rejection is thrown, nothing made.
   */
  recorded?: Promise<void>;
}

export interface DriverUsage {
  /** Bytes of regular-file data the layer's own directory holds (a file with several hard links counted once). */
  bytes: number;
  /** Entries (files, directories, links, ...) in the layer's own directory, hard links counted once. */
  inodes: number;
}

export interface DriverMountOptions {
  /** Mount options on top of the driver's own (storage.conf `mountopt`), e.g. `nodev`. */
  options?: string[];
}

export interface Driver {
  /** `overlay` or `vfs`: names the record directories (`<name>-layers`, ...) and the driver's home under graphroot. */
  readonly name: 'overlay' | 'vfs';
  /** graphroot/<name>. */
  readonly home: string;
  /** True when {@link contentDir} holds the layer's whole tree (vfs); false when it holds only its changes (overlay). */
  readonly flat: boolean;

  /** Makes the driver's home and whatever it keeps beside the layers. Idempotent. */
  init(): Promise<void>;

  /**
   * Creates an empty layer `id` on top of `parent` (none: a base layer) for {@link applyDiff} to fill. Layers of one
   * image are created parent first; each takes its directory mode (its parent's, or the driver's default) when its
   * content is in place.
   */
  create(id: string, parent: string | undefined): Promise<void>;
  /**
   * Creates a read-write layer `id` on top of `parent` (a container's layer), ready to use at once: on vfs it starts
   * as a copy of its parent's tree (reflinks where the filesystem can); on overlay its diff/ is empty. The parent may
   * live in a read-only additional image store.
   */
  createReadWrite(id: string, parent: string | undefined, options?: CreateReadWriteOptions): Promise<void>;
  /** Removes the layer's directories; missing pieces are fine (a half-created layer). Unmounts nothing: {@link put} first. */
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
   * The layer's changes against `parent` as `podman diff` lists them (containers/storage's Changes): each added,
   * changed or deleted path, the directories above an addition or a deletion listed as changed before it.
   */
  changes(id: string, parent: string | undefined): Promise<Change[]>;

  /**
   * The directory holding the layer's own content as it is stored (overlay: its diff/; vfs: its whole tree), in
   * this store's graphroot. Read by export (tar-split assembly) and checkout.
   */
  contentDir(id: string): string;
  /**
   * {@link contentDir} of a layer in this store or, when this store lacks it, in the first read-only additional image
   * store that has it. CARRIER_NOT_FOUND when none has.
   */
  locate(id: string): Promise<string>;

  /**
   * The layer's whole tree as a directory, mounting where the driver mounts (overlay at `<id>/merged`). Called under
   * the store's mount count: the store calls it when the count goes from 0 to 1, or to remount a layer its count says
   * is mounted. A layer already mounted is not mounted twice.
   */
  get(id: string, options?: DriverMountOptions): Promise<string>;
  /** Undoes {@link get} (unmounts where the driver mounts). Safe when nothing is mounted. */
  put(id: string): Promise<void>;
  /** Where {@link get} puts the layer's tree, whether or not it is mounted now. */
  mountPath(id: string): string;

  /**
   * Everything the driver keeps for the layer, as one directory (overlay: `overlay/<id>` with its diff/, work/, ...;
   * vfs: `vfs/dir/<id>`): what a disk-usage count of the layer measures.
   */
  layerDir(id: string): string;
  /** Space the layer's own content takes. */
  usage(id: string): Promise<DriverUsage>;

  /**
   * Removes what a crash left behind that no layer record names (given the ids that are recorded): layer
   * directories, overlay's `l/` links, vfs's staging trees. Hold the layers write lock. Returns what it removed,
   * relative to the graphroot (`overlay/<id>`, `overlay/l/<link>`, `vfs/dir/<id>`, ...).
   */
  cleanup(recorded: ReadonlySet<string>): Promise<string[]>;
}

import { CarrierError, abortError } from '../errors.js';
import { native, type MergeResult } from '../native.js';
import { awaitNativeJob } from './clone.js';
export type { MergeResult } from '../native.js';

/** How file contents reach the merged tree (see {@link CloneMode}; hard links into layers are not offered). */
export type MergeMode = 'auto' | 'reflink' | 'copy';

export interface MergeOptions {
  /** Default `auto`: reflink per file where the filesystem can, else copy. */
  mode?: MergeMode;
  signal?: AbortSignal;
  /** Give every entry the layer's uid/gid (needs CAP_CHOWN). Default: true when running as root. */
  preserveOwnership?: boolean;
}


const MODES: readonly MergeMode[] = ['auto', 'reflink', 'copy'];

/**
 * Flattens overlay layer directories, base first, into `dst` (which must not exist, or be an empty directory), on a
 * native thread, with overlay's rules: a whiteout (0/0 character device, or an aufs `.wh.NAME` file) deletes NAME
 * from the layers below, recursively; an opaque directory (`trusted.overlay.opaque=y`, `user.overlay.opaque=y`, or
 * an aufs `.wh..wh..opq` inside it) hides what the layers below had in it; any other entry replaces what is there (a
 * directory over a directory is merged and takes the upper one's metadata). Whiteouts and `*.overlay.*` xattrs are
 * not copied. `dst`'s own mode is left as it was made.
 *
 * Nothing is ever resolved through a symlink in `dst`: an entry of a lower layer that is in the way is removed, so
 * a symlink `a` in one layer and a file `a/x` in the next make a real directory `a` holding `x`, never a write
 * through the link. On failure, abort included, `dst` is removed again (or emptied, if it existed).
 */
export async function mergeLayers(layers: readonly string[], dst: string, options: MergeOptions = {}): Promise<MergeResult> {
  const mode = options.mode ?? 'auto';
  if (!MODES.includes(mode)) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `mergeLayers: unknown mode '${String(mode)}'; use ${MODES.join(', ')}`);
  }
  if (layers.length === 0) throw new CarrierError('CARRIER_INVALID_ARGUMENT', 'mergeLayers: no layers to merge');
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const preserveOwnership = options.preserveOwnership ?? process.geteuid?.() === 0;
  return awaitNativeJob(native.mergeLayers([...layers], dst, { mode, preserveOwnership }), signal);
}

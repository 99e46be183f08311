// overlay's diff: a layer's diff/ (its upper directory) is its changes already, so the archive is a walk of it with
// overlay's markers turned into the aufs-style entries a layer tar carries — a 0/0 character device becomes
// `.wh.NAME`, a directory whose opaque xattr is `y` gets a `.wh..wh..opq` entry right after its own, and the
// `*.overlay.*` xattrs themselves are left out. `.wh.` files (stores with a mount program keep whiteouts that way)
// are archived as they are.
import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { END_OF_ARCHIVE } from '../save/tar.js';
import { DiffTarWriter, OPAQUE_MARKER, WHITEOUT_PREFIX as PREFIX, joinRel, lstatOrUndefined } from './diff-tar.js';
import { readTreeXattrs, xattrKey, type TreeXattrs } from './xattrs.js';

/** Names under which overlayfs (rootful, rootless) and fuse-overlayfs mark a directory opaque. */
const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque', 'user.fuseoverlayfs.opaque'];
const OVERLAY_XATTR = /^(trusted|user)\.(overlay|fuseoverlayfs)\./;
const WHITEOUT_PREFIX = Buffer.from(PREFIX);
const OPAQUE = Buffer.from(OPAQUE_MARKER);

function isOpaque(xattrs: Map<string, Buffer> | undefined): boolean {
  return OPAQUE_XATTRS.some((n) => xattrs?.get(n)?.toString('latin1') === 'y');
}

function kept(xattrs: Map<string, Buffer> | undefined): Map<string, Buffer> | undefined {
  if (!xattrs) return undefined;
  return new Map([...xattrs].filter(([k]) => !OVERLAY_XATTR.test(k)));
}

const UPPER = Symbol('carrier.overlayUpper');

/**
 * The upper directory `upper` as an uncompressed layer tar. The stream names its directory (overlayUpperOf), so a
 * commit can leave it unread and archive the directory in one native pass instead (src/layer/diff-layer.ts), which
 * writes the same bytes; nothing is read before the stream is.
 */
export function overlayDiffStream(upper: string): Readable {
  return Object.assign(Readable.from(overlayDiffChunks(upper), { objectMode: false }), { [UPPER]: upper });
}

/** The upper directory an {@link overlayDiffStream} archives; undefined for any other stream. */
export function overlayUpperOf(tar: Readable): string | undefined {
  return (tar as Readable & { [UPPER]?: string })[UPPER];
}

async function* overlayDiffChunks(upper: string): AsyncGenerator<Buffer> {
  const xattrs = await readTreeXattrs(upper);
  const writer = new DiffTarWriter();
  yield* walk(Buffer.from(upper), undefined, xattrs, writer);
  yield END_OF_ARCHIVE;
}

async function* walk(root: Buffer, rel: Buffer | undefined, xattrs: TreeXattrs, writer: DiffTarWriter): AsyncGenerator<Buffer> {
  const dir = rel ? joinRel(root, rel) : root;
  const names = (await readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare);
  // fuse-overlayfs may mark a deletion or an opaque directory both ways (a device or xattr and a `.wh.` file):
  // the `.wh.` file is archived as it is, and the other marker left out so no name appears twice.
  const aufs = new Set(names.filter((n) => n.subarray(0, WHITEOUT_PREFIX.length).equals(WHITEOUT_PREFIX)).map((n) => n.toString('latin1')));
  for (const name of names) {
    const childRel = joinRel(rel, name);
    const full = joinRel(root, childRel);
    const st = await lstatOrUndefined(full);
    if (!st) continue;
    if (st.isCharacterDevice() && st.rdev === 0n) {
      if (aufs.has(`.wh.${name.toString('latin1')}`)) continue;
      yield writer.whiteout(rel, name, { uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeMs / 1000n) });
      continue;
    }
    const own = xattrs.get(xattrKey(childRel));
    yield* writer.entry(full, childRel, st, kept(own));
    if (st.isDirectory()) {
      if (isOpaque(own) && !(await lstatOrUndefined(joinRel(full, OPAQUE)))) yield writer.opaque(childRel, st);
      yield* walk(root, childRel, xattrs, writer);
    }
  }
}

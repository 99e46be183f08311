import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { NativeFailure } from './errors.js';
import { addonFile, openAddon } from './addon-file.cjs';

// The result types of the native jobs live here, beside the binding that produces them; the wrappers
// (layer/apply, fs/clone, fs/merge) re-export them.

export interface SkippedEntry {
  /** Path inside the layer. */
  path: string;
  reason: string;
}

export interface AppliedLayer {
  /** `sha256:<hex>` of the bytes as received. */
  compressedDigest: string;
  compressedSize: number;
  /** `sha256:<hex>` of the uncompressed tar: the layer's DiffID. */
  diffDigest: string;
  /** Length of the whole uncompressed tar, padding and end blocks included. */
  diffSize: number;
  /** The compression that was found (or given). */
  compression: 'gzip' | 'zstd' | 'none';
  /** Sorted distinct owner ids seen in the tar headers. */
  uidset: number[];
  gidset: number[];
  /** Number of tar entries (not counting PAX/GNU meta headers). */
  entries: number;
  /** Entries not created, and why (device nodes when rootless, forbidden xattrs, entries naming the root). */
  skipped: SkippedEntry[];
}

export interface CloneResult {
  /** Regular files created (or, in `hardlink` mode, linked to the source), one per source inode. */
  files: number;
  /** Directories created below the destination root. */
  dirs: number;
  symlinks: number;
  /** Further names of a file already copied, linked to its copy so hard-link identity is kept. */
  hardlinks: number;
  /** Fifos and character/block devices created (whiteouts, 0/0 character devices, included). */
  specials: number;
  /** Sockets, and devices the caller may not create (unprivileged, anything but a 0/0 whiteout). */
  skippedSpecials: number;
  /** Xattrs the destination refused for lack of privilege or support (`trusted.*` when unprivileged...). */
  skippedXattrs: number;
  /** Logical bytes of files cloned with FICLONE (shared extents, no data written). */
  bytesCloned: number;
  /** Data bytes copied with copy_file_range or read/write (holes are not counted and stay holes). */
  bytesCopied: number;
  /** Bytes of the files hard-linked in `hardlink` mode. */
  bytesHardlinked: number;
  /**
   * The one data path every file with data took, or `mixed`. With no data to move: `hardlink` in hardlink mode,
   * `reflink` in reflink mode, else `copy`.
   */
  method: 'reflink' | 'copy_file_range' | 'copy' | 'hardlink' | 'mixed';
}

export interface MergeResult extends Omit<CloneResult, 'bytesHardlinked' | 'method'> {
  bytesHardlinked: number;
  method: 'reflink' | 'copy_file_range' | 'copy' | 'mixed';
  /** Layers merged. */
  layers: number;
  /** Whiteouts met (0/0 character devices and aufs `.wh.` files); none of them is copied. */
  whiteouts: number;
  /** Opaque directories met (overlay xattr or aufs marker). */
  opaqueDirs: number;
  /** Entries of a lower layer removed because an upper layer replaced or deleted them. */
  replaced: number;
}

/** Options as the native layer job reads them; filled in with defaults by applyLayer. */
export interface NativeApplyOptions {
  compression: 'auto' | 'gzip' | 'zstd' | 'none';
  whiteouts: 'overlay' | 'aufs';
  rootless: boolean;
  expectedDigest?: string;
  expectedSize?: number;
  expectedDiffID?: string;
  tarSplit?: string;
  maxUncompressedBytes: number;
  maxEntries: number;
  teeFd?: number;
  /** Tar name, store file, tar name, store file, …: files made as reflinks (ApplyLayerOptions.cloneFrom). */
  clones?: string[];
  /** Hard-link a clone source whose owner, mode, mtime and xattrs are the entry's (ApplyLayerOptions.hardlinkClones). */
  hardlinkClones?: boolean;
  budget?: NativeImageBudget;
  /** Start each file's writeback once written (ApplyLayerOptions.writeback). */
  writeback?: boolean;
  /** A partial pull: the tar is rebuilt from this plan on a native thread; pushed chunks are the remote frames. */
  rebuild?: NativeRebuildPlan;
}

/**
 * A partial pull's tar as the native apply rebuilds it (native/partial_rebuild.h): steps in tar order, each a raw
 * segment (file -1, `bytes` long, taken in order from `segments`) or the content of a file of the list. A file is read
 * from the store file at its path, or (path '') decoded from the zstd frames pushed to the job, and hashed against its
 * digest. names, paths and digests are joined by NUL.
 */
export interface NativeRebuildPlan {
  /** The layer's blob digest (messages). */
  layer: string;
  segments: Uint8Array;
  /** (file index or -1, bytes) pairs. */
  steps: Float64Array;
  names: string;
  paths: string;
  digests: string;
  sizes: Float64Array;
  /** 1 where the store file is known by an unverified claim (a mismatch is then CARRIER_STALE_INDEX). */
  claimed: Uint8Array;
}

/** Bytes of file content the layers applied under it may write to disk, shared across their threads. */
export interface NativeImageBudget {
  readonly limit: number;
  /** Bytes charged so far (holes for runs of zeros are free). */
  readonly used: number;
}

/** The native job reports exactly the public result shape. */
export type NativeAppliedLayer = AppliedLayer;

export type ApplyEvent =
  | { type: 'drain' }
  | { type: 'done'; result: NativeAppliedLayer }
  | { type: 'error'; error: NativeFailure };

export interface NativeApplyJob {
  /**
   * Queue a chunk of the compressed blob, or a list of chunks, read in place by the job's thread (they are referenced
   * until it is done with them and must not change meanwhile); false means wait for a 'drain' event before pushing
   * more.
   */
  push(chunk: Uint8Array | Uint8Array[]): boolean;
  /** No more chunks: the blob is complete. */
  end(): void;
  /** Stop as soon as possible, empty the directory, and report ABORT_ERR. */
  abort(): void;
}

export type AssembleEvent =
  | { type: 'data'; chunk: Buffer }
  | { type: 'end' }
  | { type: 'error'; error: NativeFailure };

export interface NativeAssembleJob {
  /** Give the producer credit for `n` more chunks. */
  ack(n: number): void;
  abort(): void;
}

export type DecompressEvent =
  | { type: 'drain' }
  | { type: 'data'; chunk: Buffer }
  | { type: 'end' }
  | { type: 'error'; error: NativeFailure };

export interface NativeDecompressJob {
  /** Queue a chunk of compressed bytes; false means wait for a 'drain' event before pushing more. */
  push(chunk: Uint8Array | Uint8Array[]): boolean;
  /** No more chunks: finish the stream ('end', or 'error' when it stops in the middle of a frame). */
  end(): void;
  /** Give the decoder credit for `n` more 'data' chunks. */
  ack(n: number): void;
  /** Stop as soon as possible and report ABORT_ERR. */
  abort(): void;
}

/** Options as the native layer compressor reads them; filled in with defaults by compressLayer. */
export interface NativeCompressOptions {
  compression: 'gzip' | 'zstd' | 'none';
  level: number;
  /** Compressing threads; the output does not depend on how many. */
  threads: number;
  /** gzip through ISA-L's deflate at this level (1–3) instead of zlib's at `level`, when libisal loads. */
  isalLevel?: number;
  /** Rebuild the tar on the job's own thread from this tar-split and layer directory (nothing is pushed). */
  sourceTarSplit?: string;
  sourceDir?: string;
  /** Write the layer's tar-split (gzip of JSON lines) to this path. */
  tarSplit?: string;
}

export interface NativeCompressedLayer {
  /** `sha256:<hex>` of the uncompressed tar. */
  diffID: string;
  /** `sha256:<hex>` of the compressed stream. */
  digest: string;
  /** Length of the compressed stream. */
  size: number;
  /** Length of the tar. */
  uncompressedSize: number;
  /** Tar entries (not counting PAX/GNU meta headers). */
  entries: number;
}

/** What a native compress job reports: credit to push more, a compressed chunk, its result, or its failure. */
export type CompressJobEvent<R> =
  | { type: 'drain' }
  | { type: 'data'; chunk: Buffer; /** The tar's bytes taken in so far (a plain CompressJob's). */ tarBytes?: number }
  | { type: 'done'; result: R }
  | { type: 'error'; error: NativeFailure };

export type CompressEvent = CompressJobEvent<NativeCompressedLayer>;

export interface NativeChunkedLayer extends NativeCompressedLayer {
  /** `sha256:<hex>` of the compressed TOC: the manifest-checksum annotation. */
  tocDigest: string;
  /** `offset:length:uncompressedLength:1` of the TOC: the manifest-position annotation. */
  manifestPosition: string;
  /** `offset:length:uncompressedLength` of the tar-split: the tarsplit-position annotation. */
  tarSplitPosition: string;
}

export type ChunkedCompressEvent = CompressJobEvent<NativeChunkedLayer>;

export interface NativeCompressJob {
  /** Queue a chunk of the tar; false means wait for a 'drain' event before pushing more. */
  push(chunk: Uint8Array | Uint8Array[]): boolean;
  /** No more chunks: the tar is complete. */
  end(): void;
  /** Give the compressor credit for `n` more 'data' chunks. */
  ack(n: number): void;
  /** Stop as soon as possible, remove the partial tar-split, and report ABORT_ERR. */
  abort(): void;
}

/** Options as the native overlay diff reads them; filled in with defaults by diffLayerToFile. */
export interface NativeDiffOptions {
  /** The blob file to write (created or truncated). */
  out: string;
  compression: 'gzip' | 'zstd' | 'none';
  level: number;
  threads: number;
  /** fsync the blob before the job settles. */
  sync: boolean;
  /**
   * Make `out` a FIFO (it must not exist) and stream the uncompressed tar to whoever opens it; nothing is stored, and
   * nothing hashed (the result's diffID and digest are empty: the reader hashes what it reads).
   */
  fifo?: boolean;
  /** Start writeback of each file's dirty pages once it is read (asynchronous; a file-system sync follows). */
  writeback?: boolean;
}

export interface NativeDiffJob {
  /** Resolves with the digests and sizes; rejects with a NativeFailure (ABORT_ERR after abort()). */
  promise: Promise<NativeCompressedLayer>;
  /** Stop between entries or read chunks. */
  abort(): void;
  /** With `fifo`: resolves once the FIFO exists (a reader may open it); rejects if it could not be made. */
  ready?: Promise<void>;
}

/** Options as the native tree copier reads them; filled in with defaults by cloneTree. */
export interface NativeCloneOptions {
  mode: 'auto' | 'reflink' | 'copy' | 'hardlink';
  preserveOwnership: boolean;
}

/** The native copier reports exactly the public result shape. */
export type NativeCloneResult = CloneResult;

export interface NativeCloneJob {
  /** Resolves with the counts; rejects with a NativeFailure (ABORT_ERR after abort()). */
  promise: Promise<NativeCloneResult>;
  /** Stop between files or copy chunks; the destination is then removed (or emptied, if it existed). */
  abort(): void;
}

/** Options as the native layer merger reads them; filled in with defaults by mergeLayers. */
export interface NativeMergeOptions {
  mode: 'auto' | 'reflink' | 'copy';
  preserveOwnership: boolean;
}

export interface NativeMergeJob {
  promise: Promise<MergeResult>;
  abort(): void;
}

export interface NativeBinding {
  /** The core's version and those of the libraries it was built with (a getter: naming isa-l's loads it). */
  readonly version: string;
  ApplyJob: new (
    dir: string,
    sourcePath: string | null,
    options: NativeApplyOptions,
    onEvent: (event: ApplyEvent) => void,
  ) => NativeApplyJob;
  AssembleJob: new (tarSplitPath: string, diffDir: string, onEvent: (event: AssembleEvent) => void) => NativeAssembleJob;
  /** A streaming decoder on a thread of its own ('auto' detects gzip/zstd/none by magic number). */
  DecompressJob: new (compression: 'auto' | 'gzip' | 'zstd' | 'none', onEvent: (event: DecompressEvent) => void) => NativeDecompressJob;
  /** A layer's tar in; its compressed stream, digests and tar-split out, on native threads. */
  CompressJob: new (options: NativeCompressOptions, onEvent: (event: CompressEvent) => void) => NativeCompressJob;
  /** A layer's tar in; the same tar as a zstd:chunked blob out (src/chunked/compress.ts), on a native thread. */
  ChunkedCompressJob: new (options: { level: number }, onEvent: (event: ChunkedCompressEvent) => void) => NativeCompressJob;
  /** An overlay upper directory archived as a layer tar, compressed as asked and hashed twice, into a file, on native threads. */
  diffLayer(upper: string, options: NativeDiffOptions): NativeDiffJob;
  /**
   * `sha256:<hex>` of each named regular file inside `root` (resolved within it, never following the last component),
   * on a worker thread; '' for a name that is missing, not a regular file, or not of its size. Rejects with a
   * NativeFailure when `root` cannot be opened.
   */
  hashFiles(root: string, names: string[], sizes: number[]): Promise<string[]>;
  /** fcntl OFD lock on the whole file; resolves false only when `wait` is false and another holder has it. Rejects with a NativeFailure. */
  lockFile(fd: number, exclusive: boolean, wait: boolean): Promise<boolean>;
  /** Drops the lock held through this fd; returns the failure instead of throwing. */
  unlockFile(fd: number): NativeFailure | undefined;
  /** syncfs(2) on a worker thread. Rejects with a NativeFailure. */
  syncFs(fd: number): Promise<void>;
  /** A whole file, read by one pool job; rejects with a NativeFailure worded as Node's (syscall: open or read). */
  readFile(path: string): Promise<Buffer>;
  /** Several whole files, read one after another by one pool job: each its bytes or the NativeFailure its read met. */
  readFiles(paths: string[]): Promise<(Buffer | NativeFailure)[]>;
  /**
   * A regular file mapped read-only, as a latin1 string (`text`) or a Buffer, with fstat's size, mtimeMs and inode of
   * the descriptor mapped; undefined when it cannot be (src/cli/bin.cts then reads it). Never for a file that may be
   * rewritten in place while mapped.
   */
  mapFile<T extends boolean>(path: string, text: T): MappedFile<T extends true ? string : Buffer> | undefined;
  /** Small file-system steps in order, by one pool job (src/fs/batch.ts); rejects with a NativeFailure and `step`. */
  fsBatch(steps: ({ op: string; path: string } & Record<string, unknown>)[]): Promise<void>;
  /**
   * mkdir parent/name where ext4 places a top-level directory (src/fs/spread-dir.ts), on a worker thread; resolves
   * false where the file system cannot (then a plain mkdir). Rejects with a NativeFailure (EEXIST when it exists).
   */
  makeSpreadDir(parent: string, name: string, mode: number): Promise<boolean>;
  /** A file replaced as src/store/atomic.ts describes, every step in one pool job. Rejects with a NativeFailure. */
  writeFileAtomic(spec: NativeAtomicWrite): Promise<void>;
  /**
   * `rm -rf` of an absolute path on a worker thread, never following a link, granting the owner write on directories
   * whose entries it may not remove; a missing path is no failure. Rejects with a NativeFailure.
   */
  removeTree(path: string): Promise<void>;
  /** Copies a directory tree on a thread of its own (FICLONE, copy_file_range, read/write, or linkat). */
  cloneTree(src: string, dst: string, options: NativeCloneOptions): NativeCloneJob;
  /** Flattens overlay layer directories (base first) into one new tree, on a thread of its own. */
  mergeLayers(layers: string[], dst: string, options: NativeMergeOptions): NativeMergeJob;
  /** Mounts an overlay (new mount API or mount(2)) on a thread of its own. Rejects with a NativeFailure. */
  overlayMount(spec: NativeOverlayMount): Promise<void>;
  /** umount2(target, UMOUNT_NOFOLLOW [| MNT_DETACH]) on a thread of its own. Rejects with a NativeFailure. */
  overlayUnmount(target: string, lazy: boolean): Promise<void>;
  /** Which overlay parameters the kernel knows, asked of a throwaway fsopen context (null: fsopen not permitted). */
  overlayProbe(): Promise<NativeOverlayProbe>;
  /** Gives `dir` a project of its own (inherited below it) limited to `bytes` (0: no limit). Rejects with a NativeFailure. */
  setDirQuota(dir: string, bytes: number, minProjectId: number): Promise<NativeDirQuota>;
  /** The directory's project id and that project's limit and usage (projectId 0: none). Rejects with a NativeFailure. */
  getDirQuota(dir: string): Promise<NativeDirQuota>;
  /**
   * Drops the end-of-file markers pending on a terminal in canonical mode (they read as NUL bytes once a runtime
   * makes it raw); text waiting stays. Returns how many were dropped. Never blocks.
   */
  discardTerminalEof(fd: number): number;
  ImageBudget: new (limitBytes: number) => NativeImageBudget;
  /**
   * How this process resolves paths inside a layer, decided once at load: `openat2`, or `walk` (a userspace
   * component walk with the same results) where openat2 is denied or missing, or CARRIER_NO_OPENAT2=1 is set.
   */
  pathResolver(): 'openat2' | 'walk';
}

/** One file's atomic replacement, as the native job reads it (native/store_ops.cc). */
export interface NativeAtomicWrite {
  /** The target's directory; `temp` and `name` are names in it. */
  dir: string;
  temp: string;
  name: string;
  data: string | Uint8Array;
  mode: number;
  /** 0: no flush; 1: the contents (fdatasync) before the rename; 2: and the directory (fsync) after it. */
  durable: 0 | 1 | 2;
  /** A lock file whose last-writer token is written at offset 0 once the new name is in place, before the directory flush. */
  lockFd?: number;
  token?: Uint8Array;
  lockPath?: string;
  /** 'contents': only write (and flush) the temp file; 'rename': only what follows an earlier 'contents'. */
  step?: 'all' | 'contents' | 'rename';
}

export interface NativeDirQuota {
  projectId: number;
  limit: number;
  used: number;
  /** False when the project has no quota record (nothing charged, no limit). */
  hasRecord: boolean;
}

/** An overlay mount as the native side performs it; built by mountOverlay (src/drivers/mount.ts). */
export interface NativeOverlayMount {
  /** fsopen: the new mount API; mount: mount(2) with one option string (must fit in a page). */
  method: 'fsopen' | 'mount';
  /** fsopen only: one `lowerdir+` per layer (Linux 6.8), else a single `lowerdir` string of at most 255 bytes. */
  lowerdirPlus?: boolean;
  /** Topmost first. Relative paths resolve against `cwd`. */
  lowerdirs: string[];
  upperdir?: string;
  workdir?: string;
  target: string;
  /** mount only: the directory relative paths are resolved in; entered by the mounting thread alone (unshare(CLONE_FS)). */
  cwd?: string;
  userxattr: boolean;
  readOnly: boolean;
  /** Mount attributes (ro, nodev, nosuid, noexec, noatime, ...) or overlay parameters (`key=value` or a flag). */
  options: string[];
}

export interface MappedFile<T> {
  data: T;
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface NativeOverlayProbe {
  fsopen: boolean;
  /** The errno name fsopen("overlay") failed with, or null. */
  fsopenErrno: string | null;
  lowerdirPlus: boolean | null;
  userxattr: boolean | null;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The addon the CLI's bin opened, a parameter of the CLI's bundle (scripts/bundle-cli.mjs); undeclared elsewhere. */
declare const __carrierAddon: NativeBinding | undefined;

/**
 * The compiled core: a local build when present, else the prebuild for this platform, as node-gyp-build finds them
 * (src/addon-file.cts finds its usual answers without it: loading node-gyp-build cost every short command ~3-5 ms,
 * issue 21); anything else is node-gyp-build's to decide. Inside the CLI's bundle, the addon the bin opened already
 * (to map the bundle with it) is passed in as `__carrierAddon`.
 */
function loadNative(): NativeBinding {
  if (typeof __carrierAddon !== 'undefined' && __carrierAddon !== undefined) return __carrierAddon;
  const file = addonFile(packageRoot);
  if (file !== undefined) return openAddon<NativeBinding>(file);
  return createRequire(import.meta.url)('node-gyp-build')(packageRoot) as NativeBinding;
}

export const native: NativeBinding = loadNative();

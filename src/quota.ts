// Directory size limits with filesystem project quotas, as podman's overlay driver applies `--storage-opt size=` to
// a container's upper directory: the directory gets a project id of its own (inherited by everything created below
// it) and the project gets a block limit, so writes past the limit fail with EDQUOT/ENOSPC.
//
// Needs XFS mounted with `prjquota` (or ext4 formatted with `-O project,quota` and mounted with `prjquota`) and
// CAP_SYS_ADMIN. Elsewhere the call fails with CARRIER_UNSUPPORTED, carrying the errno the kernel gave when there was
// one. Limits apply to what is written after the call: give the limit to a new, empty directory.
import { resolve } from 'node:path';
import { CarrierError, fromNative, type NativeFailure } from './errors.js';
import { native } from './native.js';

export interface DirQuota {
  /** The directory's project id (0: none of its own). */
  projectId: number;
  /** Block limit of the project in bytes (0: none). */
  limit: number;
  /** Bytes charged to the project. */
  used: number;
}

export interface SetDirQuotaOptions {
  /**
   * Lowest project id to hand out. Default: one above the parent directory's project id, and at least 1. Ids that
   * already have usage or a limit on the filesystem are never reused for another directory.
   */
  minProjectId?: number;
}

function nativeError(f: unknown, dir: string): CarrierError {
  const err = fromNative(f as NativeFailure);
  if (err.path === undefined) {
    return new CarrierError(err.code, err.message, {
      path: dir,
      ...(err.errno !== undefined ? { errno: err.errno } : {}),
      ...(err.syscall !== undefined ? { syscall: err.syscall } : {}),
    });
  }
  return err;
}

/**
 * Limits `dir` (and everything that will be created below it) to `bytes` (rounded up to 512-byte blocks; 0 removes
 * the limit). A directory that already has a project of its own keeps it and gets the new limit.
 */
export async function setDirQuota(dir: string, bytes: number, options: SetDirQuotaOptions = {}): Promise<DirQuota> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `quota size must be a whole number of bytes >= 0 (got ${bytes})`);
  }
  const min = options.minProjectId ?? 1;
  if (!Number.isInteger(min) || min < 1 || min > 0xfffffffe) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `minProjectId must be between 1 and 4294967294 (got ${min})`);
  }
  const abs = resolve(dir);
  try {
    const q = await native.setDirQuota(abs, bytes, min);
    return { projectId: q.projectId, limit: q.limit, used: q.used };
  } catch (f) {
    throw nativeError(f, abs);
  }
}

/** The directory's project id and that project's limit and usage; projectId 0 when it has no project. */
export async function getDirQuota(dir: string): Promise<DirQuota> {
  const abs = resolve(dir);
  try {
    const q = await native.getDirQuota(abs);
    return { projectId: q.projectId, limit: q.limit, used: q.used };
  } catch (f) {
    throw nativeError(f, abs);
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A size as podman's `--storage-opt size=` and storage.conf take it (binary units, as go-units' RAMInBytes):
 * "1073741824", "512k", "10M", "1.5G", "2GiB", "2gb". Throws CARRIER_INVALID_ARGUMENT otherwise.
 */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid size '${text}' (expected e.g. 512M, 10G, 1073741824)`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new CarrierError('CARRIER_INVALID_ARGUMENT', `size '${text}' is too large`);
  return bytes;
}

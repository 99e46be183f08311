/**
 * A real filesystem of a chosen kind for the length of one callback: a sparse image file, mkfs, a loop device, a
 * mount; always unmounted and detached afterwards, whatever the callback did. Needs root (losetup, mount).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export type LoopFsKind = 'xfs' | 'btrfs' | 'ext4';

const MKFS: Record<LoopFsKind, { tool: string; args: string[]; debianPackage: string }> = {
  // xfsprogs >= 5.1 formats with reflink=1 by default (Debian 12 ships 6.1); asked for explicitly all the same.
  xfs: { tool: 'mkfs.xfs', args: ['-q', '-m', 'reflink=1'], debianPackage: 'xfsprogs' },
  btrfs: { tool: 'mkfs.btrfs', args: ['-q'], debianPackage: 'btrfs-progs' },
  ext4: { tool: 'mkfs.ext4', args: ['-q'], debianPackage: 'e2fsprogs' },
};

function which(tool: string): string | undefined {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, tool);
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

/** Used and total bytes of the filesystem holding `dir`, as df counts them (after a syncfs). */
export function usage(dir: string): { used: number; size: number } {
  run('sync', ['-f', dir]);
  const st = fs.statfsSync(dir);
  return { used: (st.blocks - st.bfree) * st.bsize, size: st.blocks * st.bsize };
}

/** True when the XFS mounted at `dir` was formatted with reflink support. */
export function xfsHasReflink(dir: string): boolean {
  return /reflink=1/.test(run(which('xfs_info') ?? 'xfs_info', [dir]));
}

export interface LoopFsOptions {
  /** Mount options, e.g. ['prjquota'] (passed as `-o a,b`). */
  mountOptions?: string[];
  /** Extra mkfs arguments, e.g. ['-O', 'quota,project'] for ext4. */
  mkfsArgs?: string[];
}

/**
 * Makes a `sizeMiB` filesystem of `kind` on a loop device, mounts it on a fresh directory and runs `fn` with that
 * directory. The image lives in the OS temp dir and is sparse, so it costs only what is written.
 */
export async function withLoopFs<T>(
  kind: LoopFsKind,
  sizeMiB: number,
  fn: (mountDir: string) => Promise<T>,
  options: LoopFsOptions = {},
): Promise<T> {
  const mkfs = MKFS[kind];
  const tool = which(mkfs.tool);
  if (!tool) {
    throw new Error(`${mkfs.tool} not found: apt-get install xfsprogs btrfs-progs (Debian package '${mkfs.debianPackage}')`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `carrier-${kind}-`));
  const image = path.join(work, 'fs.img');
  const mountDir = path.join(work, 'mnt');
  fs.mkdirSync(mountDir);
  let device: string | undefined;
  let mounted = false;
  try {
    fs.closeSync(fs.openSync(image, 'w'));
    fs.truncateSync(image, sizeMiB * 1024 * 1024);
    run(tool, [...mkfs.args, ...(options.mkfsArgs ?? []), image]);
    device = run('losetup', ['--find', '--show', image]).trim();
    const mountOptions = options.mountOptions ?? [];
    run('mount', [...(mountOptions.length > 0 ? ['-o', mountOptions.join(',')] : []), device, mountDir]);
    mounted = true;
    return await fn(mountDir);
  } finally {
    if (mounted) {
      try {
        run('umount', [mountDir]);
      } catch {
        run('umount', ['-l', mountDir]);
      }
    }
    if (device) {
      try {
        run('losetup', ['-d', device]);
      } catch {
        // Already detached by umount (autoclear).
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Whether a `kind` filesystem can be mounted with `options` here (e.g. XFS with prjquota needs a kernel built with
 * CONFIG_XFS_QUOTA); the reason (mount's error, or dmesg's) when not.
 */
export async function loopFsMountable(kind: LoopFsKind, sizeMiB: number, options: LoopFsOptions): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await withLoopFs(kind, sizeMiB, async () => {}, options);
    return { ok: true };
  } catch (err) {
    let reason = err instanceof Error ? err.message : String(err);
    try {
      const tail = run('dmesg', []).trim().split('\n').slice(-3).join(' | ');
      reason += ` (kernel log: ${tail})`;
    } catch {
      // dmesg not readable
    }
    return { ok: false, reason };
  }
}

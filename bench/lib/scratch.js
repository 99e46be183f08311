// Fresh file systems for benchmark outputs: every run writes into its own new ext4, made in a sparse image file in
// bench/work/scratch/, attached to a loop device with direct I/O, and thrown away (unmount, detach, delete the one
// image file) right after the run.
//
// Why: on the host's ext4 without a journal, inode allocation skips every inode freed in the last minutes and pays a
// buffer-cache lookup for each (recently_deleted() in fs/ext4/ialloc.c), so extracting right after deleting the
// previous run's tree was 3-10× slower and very noisy. The harness used to keep every output until the end of a suite
// and wait 370 s after each mass delete, which made the full run long and needed ~62 GiB of disk. Deleting one image
// file frees one inode, so none of that is needed any more, and each run sees the same empty file system (no run
// writes next to an earlier run's tree). Direct I/O on the loop device keeps its writes from being cached twice (once
// for the inner file system, once for the image file). The inner file system is a default `mkfs.ext4` (journal on,
// as most machines have it); `-E lazy_itable_init=0,lazy_journal_init=0` so no kernel thread initialises inode tables
// in the background during a timed run. Needs root (losetup, mount).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const GiB = 1024 ** 3;
export const SCRATCH_MKFS = ['mkfs.ext4', '-q', '-F', '-m', '0', '-E', 'lazy_itable_init=0,lazy_journal_init=0,nodiscard'];
// XFS (reflink on by default since xfsprogs 5.1) for the checkout suite, where reflinks are the point
export const SCRATCH_MKFS_XFS = ['mkfs.xfs', '-q', '-f', '-K'];

let seq = 0;
const live = new Set();

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Mount points at or below `dir`, deepest first. */
export function mountsBelow(dir) {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

/**
 * Makes a fresh ext4 (or `fsType` 'xfs') of `bytes` (sparse: only what is written takes disk space) and mounts it at
 * `<workDir>/scratch/<n>`. Returns { dir, image, device, destroy() }; destroy() unmounts everything below it too.
 */
export function createScratch(workDir, bytes, { fsType = 'ext4' } = {}) {
  const base = path.join(workDir, 'scratch');
  fs.mkdirSync(base, { recursive: true });
  const n = `${process.pid}-${seq++}`;
  const image = path.join(base, `${n}.img`);
  const dir = path.join(base, n);
  fs.rmSync(image, { force: true });
  fs.closeSync(fs.openSync(image, 'w'));
  fs.truncateSync(image, Math.max(1 * GiB, Math.ceil(bytes / 4096) * 4096));
  const mkfs = fsType === 'xfs' ? SCRATCH_MKFS_XFS : SCRATCH_MKFS;
  sh(mkfs[0], [...mkfs.slice(1), image]);
  const device = sh('losetup', ['--find', '--show', '--direct-io=on', image]);
  fs.mkdirSync(dir, { recursive: true });
  try {
    sh('mount', [device, dir]);
  } catch (e) {
    sh('losetup', ['-d', device]);
    throw e;
  }
  const s = {
    dir,
    image,
    device,
    destroy() {
      if (!live.has(s)) return;
      live.delete(s);
      for (const m of mountsBelow(dir)) {
        try {
          sh('umount', [m]);
        } catch {
          sh('umount', ['-l', m]);
        }
      }
      try {
        sh('losetup', ['-d', device]);
      } catch {}
      fs.rmSync(image, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(s);
  return s;
}

/** Runs fn(dir) on a fresh scratch file system and destroys it afterwards, whatever happens. */
export async function withScratch(workDir, bytes, fn, options) {
  const s = createScratch(workDir, bytes, options);
  try {
    return await fn(s.dir, s);
  } finally {
    s.destroy();
  }
}

/**
 * Leftovers of an earlier benchmark process that was killed: unmount, detach and delete them. Scratch file systems
 * of a benchmark process still running (their names start with its pid) are left alone.
 */
export function sweepScratch(workDir) {
  const base = path.join(workDir, 'scratch');
  if (!fs.existsSync(base)) return;
  const alive = (name) => {
    const pid = Number(name.split('-')[0]);
    return pid > 0 && pid !== process.pid && fs.existsSync(`/proc/${pid}`);
  };
  const stale = fs.readdirSync(base).filter((n) => !alive(n)).map((n) => path.join(base, n));
  const isStale = (m) => stale.some((s) => m === s || m.startsWith(s + '/'));
  for (const m of mountsBelow(base).filter(isStale)) {
    try {
      sh('umount', ['-l', m]);
    } catch {}
  }
  let loops = '';
  try {
    loops = sh('losetup', ['-n', '-O', 'NAME,BACK-FILE', '-l']);
  } catch {}
  for (const line of loops.split('\n')) {
    const [dev, file] = line.trim().split(/\s+/);
    if (file?.startsWith(base + '/') && stale.includes(file)) {
      try {
        sh('losetup', ['-d', dev]);
      } catch {}
    }
  }
  for (const s of stale) fs.rmSync(s, { recursive: true, force: true });
}

// a benchmark stopped by a signal or an exception leaves nothing mounted
process.once('exit', () => {
  for (const s of [...live]) {
    try {
      s.destroy();
    } catch {}
  }
});

export const scratchMethod =
  'Every run writes into a fresh ext4 of its own: a sparse image file in bench/work/scratch/ made with `' +
  SCRATCH_MKFS.join(' ') +
  '`, attached with `losetup --direct-io=on` and mounted; after the run (outside the timed region) it is unmounted, ' +
  'detached and the image file deleted. No run creates files next to an earlier run’s tree or right after a mass ' +
  'delete (on the host’s journal-less ext4, inode allocation after a delete is slow for minutes: `recently_deleted()` ' +
  'in fs/ext4/ialloc.c), so no cooldown is needed and only one run’s output takes disk space at a time.';

// Directory quotas (src/quota.ts, native/quota.cc) on real loop-mounted filesystems: XFS without prjquota and ext4
// without the quota feature give the clear CARRIER_UNSUPPORTED error and leave the directory as it was. Needs root
// (losetup, mount, quotactl).
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { setDirQuota, getDirQuota, parseByteSize } from '../src/quota.js';
import { CarrierError } from '../src/errors.js';
import { withLoopFs, loopFsMountable } from './support/loopfs.js';

const MiB = 1024 * 1024;

/** Writes `bytes` of zeros into `file` in 1 MiB writes, then fsyncs; the error code that stopped it, if any. */
function fill(file: string, bytes: number): { written: number; code?: string } {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(MiB, 0x5a);
  let written = 0;
  try {
    while (written < bytes) written += fs.writeSync(fd, chunk, 0, Math.min(MiB, bytes - written));
    fs.fsyncSync(fd);
    return { written };
  } catch (err) {
    return { written, code: (err as NodeJS.ErrnoException).code ?? 'unknown' };
  } finally {
    fs.closeSync(fd);
  }
}

/** The project id as lsattr -p shows it (an independent reader of FS_IOC_FSGETXATTR). */
function lsattrProject(dir: string): number {
  return Number(execFileSync('lsattr', ['-pd', dir]).toString().trim().split(/\s+/)[0]);
}

// The enforcement proof (a 10 MiB limit stops a 20 MiB write) needs a kernel with project quotas: this machine's is
// built without CONFIG_XFS_QUOTA and CONFIG_QFMT_V2, so XFS refuses `-o prjquota` and ext4 refuses its quota feature.
// It is not kept here as a skipped test; see the issue note. What this machine can show is the refusal below.

describe('setDirQuota without project quota support', () => {
  it('XFS mounted without prjquota: CARRIER_UNSUPPORTED naming prjquota, directory untouched', async () => {
    await withLoopFs('xfs', 512, async (mnt) => {
      const dir = path.join(mnt, 'c');
      fs.mkdirSync(dir);
      const err = await setDirQuota(dir, 10 * MiB).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CarrierError);
      expect((err as CarrierError).code).toBe('CARRIER_UNSUPPORTED');
      expect((err as CarrierError).message).toMatch(/prjquota/);
      expect((err as CarrierError).path).toBe(dir);
      expect(lsattrProject(dir)).toBe(0);
      expect(await getDirQuota(dir)).toEqual({ projectId: 0, limit: 0, used: 0 });
      // And writing is not limited.
      expect(fill(path.join(dir, 'big'), 20 * MiB)).toEqual({ written: 20 * MiB });
    });
  });

  it('ext4 without the quota feature: CARRIER_UNSUPPORTED with the kernel errno', async () => {
    await withLoopFs('ext4', 256, async (mnt) => {
      const dir = path.join(mnt, 'c');
      fs.mkdirSync(dir);
      const err = (await setDirQuota(dir, 10 * MiB).catch((e: unknown) => e)) as CarrierError;
      expect(err).toBeInstanceOf(CarrierError);
      expect(err.code).toBe('CARRIER_UNSUPPORTED');
      expect(err.message).toMatch(/project quota/);
      expect(err.syscall ?? '').toMatch(/quotactl/);
      expect(typeof err.errno).toBe('number');
      expect(lsattrProject(dir)).toBe(0);
    });
  });

  it('rejects bad arguments and a missing directory', async () => {
    await expect(setDirQuota('/tmp', -1)).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    await expect(setDirQuota('/tmp', 1.5)).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    await expect(setDirQuota('/tmp', 1, { minProjectId: 0 })).rejects.toMatchObject({ code: 'CARRIER_INVALID_ARGUMENT' });
    await expect(getDirQuota('/nonexistent/carrier-quota')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('parseByteSize', () => {
  it('reads sizes as podman does (binary units)', () => {
    expect(parseByteSize('1073741824')).toBe(1073741824);
    expect(parseByteSize('10M')).toBe(10 * MiB);
    expect(parseByteSize('10m')).toBe(10 * MiB);
    expect(parseByteSize('1.5G')).toBe(1.5 * 1024 * MiB);
    expect(parseByteSize('2GiB')).toBe(2 * 1024 * MiB);
    expect(parseByteSize('2gb')).toBe(2 * 1024 * MiB);
    expect(parseByteSize('512k')).toBe(512 * 1024);
    for (const bad of ['', 'ten', '10X', '-1', '1..2G']) expect(() => parseByteSize(bad)).toThrow(/invalid size/);
  });
});

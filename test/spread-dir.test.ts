// makeSpreadDir (src/fs/spread-dir.ts): a layer's directory placed where ext4 places a top-level directory, so that
// ext4 without a journal does not scan the recently deleted inodes of its parent's block group for every file.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { makeSpreadDir } from '../src/fs/spread-dir.js';
import { withLoopFs } from './support/loopfs.js';

const inodesPerGroup = (device: string): number =>
  Number(/Inodes per group:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', device], { stdio: ['ignore', 'pipe', 'ignore'] }).toString())![1]);
const deviceOf = (dir: string): string => execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--target', dir]).toString().trim();
const attrs = (dir: string): string => execFileSync('lsattr', ['-d', dir]).toString().split(/\s+/)[0]!;

describe('makeSpreadDir', () => {
  it('on ext4 without a journal, puts the new directories outside their parent\'s block group and leaves the parent\'s flags as they were', async () => {
    await withLoopFs('ext4', 2048, async (mnt) => {
      const perGroup = inodesPerGroup(deviceOf(mnt));
      const layer = path.join(mnt, 'storage', 'overlay', 'layer');
      fs.mkdirSync(layer, { recursive: true });
      const before = attrs(layer);
      const group = (p: string): number => Math.floor((fs.statSync(p).ino - 1) / perGroup);
      const names = ['diff', 'a', 'b', 'c', 'd', 'e', 'f', 'g'];
      for (const n of names) await makeSpreadDir(layer, n, 0o755);
      // A group picked by a random name: all eight in the parent's group by chance is about (1/16)^8.
      expect(names.some((n) => group(path.join(layer, n)) !== group(layer))).toBe(true);
      for (const n of names) expect(fs.statSync(path.join(layer, n)).mode & 0o777).toBe(0o755 & ~process.umask());
      expect(fs.readdirSync(layer).sort()).toEqual([...names].sort());
      expect(attrs(layer)).toBe(before);
    }, { mkfsArgs: ['-O', '^has_journal'] });
  });

  it('fails with EEXIST on a name that exists, and leaves nothing behind', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-spread-'));
    try {
      await makeSpreadDir(dir, 'diff', 0o755);
      fs.writeFileSync(path.join(dir, 'diff', 'kept'), 'x');
      await expect(makeSpreadDir(dir, 'diff', 0o755)).rejects.toMatchObject({ code: 'EEXIST' });
      expect(fs.readdirSync(dir)).toEqual(['diff']);
      expect(fs.readdirSync(path.join(dir, 'diff'))).toEqual(['kept']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is a plain mkdir on a file system without the flag (tmpfs)', async () => {
    const dir = fs.mkdtempSync(path.join('/dev/shm', 'carrier-spread-'));
    try {
      await makeSpreadDir(dir, 'diff', 0o700);
      expect(fs.statSync(path.join(dir, 'diff')).isDirectory()).toBe(true);
      expect(fs.readdirSync(dir)).toEqual(['diff']);
      await expect(makeSpreadDir(path.join(dir, 'missing'), 'diff', 0o700)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Space a layer's own directory takes, counted as containers/storage counts it: every inode once (hard links are
// not counted twice), with the data bytes of its regular files.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverUsage } from './driver.js';

export async function treeUsage(root: string): Promise<DriverUsage> {
  const seen = new Set<string>();
  const usage: DriverUsage = { bytes: 0, inodes: 0 };
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      const st = await lstat(p, { bigint: true });
      const key = `${st.dev}:${st.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        usage.inodes++;
        if (st.isFile()) usage.bytes += Number(st.size);
      }
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return usage;
}

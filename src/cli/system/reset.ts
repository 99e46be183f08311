// `carrier system reset`: every image, container, layer and the blob cache, after podman's confirmation.
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { removeTree, systemDf } from '../../index.js';
import type { Context } from '../command.js';
import { confirm } from '../confirm.js';
import { ExitError } from '../errors.js';
import { openStore } from '../open-store.js';

interface StoreDirs {
  graphroot: string;
  runroot: string;
  blobCache: string;
}

export async function resetSystem(ctx: Context): Promise<number> {
  const store = await openStore(ctx.globals);
  let dirs: StoreDirs;
  try {
    dirs = { graphroot: store.graphroot, runroot: store.runroot, blobCache: store.config.blobCache };
    const mounted = (await systemDf(store)).containerDetails.filter((c) => c.active);
    if (mounted.length > 0) {
      throw new ExitError(`${mounted.length} container(s) are mounted (${mounted.map((c) => c.id.slice(0, 12)).join(', ')}): stop them first`, 125);
    }
  } finally {
    await store.close();
  }
  for (const d of Object.values(dirs)) checkResettable(d);
  if (!ctx.flags.bool('force')) {
    const prompt =
      'WARNING! This will remove:\n' +
      '        - all containers\n' +
      '        - all images\n' +
      '        - all layers\n' +
      `        - the blob cache directory: "${dirs.blobCache}"\n` +
      `        - the graphRoot directory: "${dirs.graphroot}"\n` +
      `        - the runRoot directory: "${dirs.runroot}"\n` +
      'Are you sure you want to continue? [y/N] ';
    if (!(await confirm(prompt))) return 0;
  }
  await emptyStore(dirs);
  return 0;
}

/**
 * The reset itself: empties the store's directories once the store is closed. No lock is held meanwhile; this is
 * the one place to switch to the library's `store.reset()`, which does the same under the store's locks.
 */
async function emptyStore(dirs: StoreDirs): Promise<void> {
  await emptyDir(dirs.graphroot);
  await emptyDir(dirs.runroot);
  await emptyDir(dirs.blobCache);
}

/** Refuses directories whose contents must never be emptied wholesale, whatever the configuration says. */
function checkResettable(dir: string): void {
  const abs = resolve(dir);
  const forbidden = new Set(['/', resolve(homedir()), '/home', '/root', '/tmp', '/var', '/var/lib', '/usr', '/etc', '/run']);
  if (forbidden.has(abs)) throw new ExitError(`refusing to empty ${abs}: it is not a store directory`, 125);
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) await removeTree(join(dir, name));
}

// `carrier system reset`: every image, container, layer and the blob cache, after podman's confirmation. The
// library does the removal under the store's locks (Store.reset); the blob cache is emptied after it.
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { pruneBlobCache, systemDf } from '../../index.js';
import type { Context } from '../command.js';
import { confirm } from '../confirm.js';
import { ExitError } from '../errors.js';
import { openStore } from '../open-store.js';

export async function resetSystem(ctx: Context): Promise<number> {
  const store = await openStore(ctx.globals);
  try {
    const dirs = { graphroot: store.graphroot, runroot: store.runroot, blobCache: store.config.blobCache };
    const mounted = (await systemDf(store)).containerDetails.filter((c) => c.active);
    if (mounted.length > 0) {
      throw new ExitError(`${mounted.length} container(s) are mounted (${mounted.map((c) => c.id.slice(0, 12)).join(', ')}): stop them first`, 125);
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
    await store.reset();
    await pruneBlobCache(store, { minAge: 0 });
    return 0;
  } finally {
    await store.close();
  }
}

/** Refuses directories whose contents must never be emptied wholesale, whatever the configuration says. */
function checkResettable(dir: string): void {
  const abs = resolve(dir);
  const forbidden = new Set(['/', resolve(homedir()), '/home', '/root', '/tmp', '/var', '/var/lib', '/usr', '/etc', '/run']);
  if (forbidden.has(abs)) throw new ExitError(`refusing to empty ${abs}: it is not a store directory`, 125);
}

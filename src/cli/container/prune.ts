// `carrier container prune`: removes the stopped containers Carrier made (podman's are left to podman).
import { needsUserNamespace, pruneContainers } from '../../index.js';
import type { Context } from '../command.js';
import { confirm } from '../confirm.js';
import { withStore } from '../open-store.js';
import { reexecInNamespace } from '../namespace.js';

export async function prune(ctx: Context): Promise<number> {
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  if (!ctx.flags.bool('force')) {
    if (!(await confirm('WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] '))) return 0;
  }
  return withStore(ctx.globals, async (store) => {
    for (const id of await pruneContainers(store)) process.stdout.write(`${id}\n`);
    return 0;
  });
}

// `carrier image prune`: dangling images (-a: every image no container uses), after podman's confirmation.
import type { Context } from '../command.js';
import { confirm } from '../confirm.js';
import { withStore } from '../open-store.js';

export async function pruneImages(ctx: Context): Promise<number> {
  const all = ctx.flags.bool('all');
  if (!ctx.flags.bool('force')) {
    const what = all ? 'all images without at least one container associated with them' : 'all dangling images';
    if (!(await confirm(`WARNING! This command removes ${what}.\nAre you sure you want to continue? [y/N] `))) return 0;
  }
  return withStore(ctx.globals, async (store) => {
    for (const r of await store.pruneImages({ all })) process.stdout.write(`${r.id}\n`);
    return 0;
  });
}

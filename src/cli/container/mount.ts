// `carrier mount` and `umount`: container root file systems, reference counted as podman counts them. Rootless, a
// mount exists only inside the namespace that made it: use it from within `carrier unshare`.
import { CarrierError, mountContainer, needsUserNamespace, unmountContainer } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';
import { reexecInNamespace } from '../namespace.js';
import { warn } from './run.js';

export async function mount(ctx: Context): Promise<number> {
  if (needsUserNamespace()) {
    warn("rootless: the mount exists only inside Carrier's user namespace; use it from 'carrier unshare'");
    return reexecInNamespace(ctx);
  }
  return withStore(ctx.globals, async (store) => {
    for (const q of ctx.args) {
      try {
        process.stdout.write(`${await mountContainer(store, q)}\n`);
      } catch (err) {
        if (err instanceof CarrierError) throw new ExitError(err.message, 125);
        throw err;
      }
    }
    return 0;
  });
}

export async function umount(ctx: Context): Promise<number> {
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  const force = ctx.flags.bool('force');
  return withStore(ctx.globals, async (store) => {
    for (const q of ctx.args) {
      try {
        await unmountContainer(store, q, { force });
        process.stdout.write(`${q}\n`);
      } catch (err) {
        if (err instanceof CarrierError) throw new ExitError(err.message, 125);
        throw err;
      }
    }
    return 0;
  });
}

// `carrier mount` and `umount`: container root file systems, reference counted as podman counts them. Rootless, a
// mount exists only inside the namespace that made it: `mount` works only within `carrier unshare`.
import { CarrierError, mountContainer, needsUserNamespace, unmountContainer } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';
import { reexecInNamespace } from '../namespace.js';
import { writeOut } from '../output.js';

export async function mount(ctx: Context): Promise<number> {
  // Rootless, a mount made in a namespace of its own would be gone (and its directory empty) when the command
  // returned: refuse, as podman does, and point at the namespace where it lasts.
  if (needsUserNamespace()) throw new ExitError('cannot run command "carrier mount" in rootless mode, must execute `carrier unshare` first', 125);
  return withStore(ctx.globals, async (store) => {
    for (const q of ctx.args) {
      try {
        writeOut(`${await mountContainer(store, q)}\n`);
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
        writeOut(`${q}\n`);
      } catch (err) {
        if (err instanceof CarrierError) throw new ExitError(err.message, 125);
        throw err;
      }
    }
    return 0;
  });
}

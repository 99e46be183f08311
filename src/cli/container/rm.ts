// `carrier rm` (container rm): exit 1 when a container is not known, 2 when one is running without -f, as podman.
import { CarrierError, needsUserNamespace, removeContainer } from '../../index.js';
import type { Context } from '../command.js';
import { withStore } from '../open-store.js';
import { reexecInNamespace } from '../namespace.js';
import { writeOut } from '../output.js';

export async function removeContainers(ctx: Context): Promise<number> {
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  const force = ctx.flags.bool('force');
  const volumes = ctx.flags.bool('volumes');
  return withStore(ctx.globals, async (store) => {
    let code = 0;
    for (const q of ctx.args) {
      try {
        await removeContainer(store, q, { force, volumes });
        writeOut(`${q}\n`);
      } catch (err) {
        if (!(err instanceof CarrierError)) throw err;
        if (err.code === 'CARRIER_NOT_FOUND') {
          process.stderr.write(`Error: no container with name or ID "${q}" found: no such container\n`);
          code = code || 1;
        } else if (err.code === 'CARRIER_IN_USE') {
          process.stderr.write(`Error: ${err.message}\n`);
          code = code || 2;
        } else {
          process.stderr.write(`Error: ${err.message}\n`);
          code = 125;
        }
      }
    }
    return code;
  });
}

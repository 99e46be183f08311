// `carrier unshare`: a command (default: the user's shell) in Carrier's user + mount namespace, as podman unshare.
import type { Context } from '../command.js';
import { runUnshared } from '../namespace.js';

export async function unshare(ctx: Context): Promise<number> {
  const command = ctx.args.length > 0 ? [...ctx.args] : [process.env.SHELL || '/bin/sh'];
  return runUnshared(ctx.globals, command);
}

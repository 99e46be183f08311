// `carrier tag`, `untag` and `image exists`: names on local images, with podman's exit codes.
import { normalizeLocalName } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { knownImage } from '../not-known.js';
import { withStore } from '../open-store.js';

export async function tag(ctx: Context): Promise<number> {
  const [query, ...names] = ctx.args as [string, ...string[]];
  const full = names.map((n) => normalizeLocalName(n));
  return withStore(ctx.globals, async (store) => {
    const img = await knownImage(store, query);
    await store.tag(img.id, full);
    return 0;
  });
}

export async function untag(ctx: Context): Promise<number> {
  const [query, ...names] = ctx.args as [string, ...string[]];
  const full = names.map((n) => normalizeLocalName(n));
  return withStore(ctx.globals, async (store) => {
    const img = await knownImage(store, query);
    if (full.length === 0) {
      await store.untag(img.id);
      return 0;
    }
    for (const n of full) {
      if (!img.names.includes(n)) throw new ExitError(`${n}: tag not known`, 125);
    }
    await store.untag(img.id, full);
    return 0;
  });
}

/** podman image exists: 0 when the image is there, 1 when not, nothing printed. */
export async function exists(ctx: Context): Promise<number> {
  return withStore(ctx.globals, async (store) => ((await store.image(ctx.args[0]!)) ? 0 : 1));
}

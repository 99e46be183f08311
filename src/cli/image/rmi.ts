// `carrier rmi` (image rm): podman 4.3.1's untag-or-delete rules and exit codes (1 image not known, 2 in use).
import { CarrierError, normalizeLocalName, normalizePullName, type ImageInfo } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';

function isNotFound(err: unknown): boolean {
  return err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND';
}

/** The stored name that `query` designates on `img` (podman's lookup order: exact, localhost/, docker.io/, suffix). */
function matchedName(img: ImageInfo, query: string): string | undefined {
  if (img.names.includes(query)) return query;
  for (const normalise of [normalizeLocalName, normalizePullName]) {
    try {
      const n = normalise(query);
      if (img.names.includes(n)) return n;
    } catch {
      /* not a name */
    }
  }
  const withTag = /:[^:/]*$/.test(query) ? query : `${query}:latest`;
  return img.names.find((n) => n.endsWith(`/${withTag}`));
}

export async function removeImages(ctx: Context): Promise<number> {
  const force = ctx.flags.bool('force');
  const all = ctx.flags.bool('all');
  if (all && ctx.args.length > 0) throw new UsageError('when using the --all switch, you may not pass any images names or IDs');
  if (!all && ctx.args.length === 0) throw new UsageError('image name or ID must be specified');
  return withStore(ctx.globals, async (store) => {
    const untagged: string[] = [];
    const deleted: string[] = [];
    const errors: { message: string; code: number }[] = [];
    const remove = async (img: ImageInfo): Promise<void> => {
      if (!force) {
        const user = (await store.containers()).find((c) => c.image === img.id);
        if (user) {
          errors.push({ message: `image used by ${user.id}: image is in use by a container: consider listing external containers and force-removing image`, code: 2 });
          return;
        }
      }
      try {
        const res = await store.removeImage(img.id, { force });
        untagged.push(...res.untagged);
        deleted.push(res.id);
      } catch (err) {
        if (err instanceof CarrierError && err.code === 'CARRIER_IN_USE') errors.push({ message: err.message, code: 2 });
        else if (isNotFound(err)) errors.push({ message: `${img.id}: image not known`, code: 1 });
        else errors.push({ message: err instanceof Error ? err.message : String(err), code: 125 });
      }
    };
    if (all) {
      for (const img of await store.images()) if (!img.readOnly) await remove(img);
    } else {
      for (const query of ctx.args) {
        const img = await store.image(query);
        if (!img) {
          errors.push({ message: `${query}: image not known`, code: 1 });
          continue;
        }
        if (img.names.length > 1) {
          const byId = /^[0-9a-f]+$/.test(query) && img.id.startsWith(query);
          const byDigest = query.startsWith('sha256:');
          if (!force && (byId || byDigest)) {
            errors.push({
              message: `unable to delete image "${img.id}" by ${byId ? 'ID' : 'digest'} with more than one tag ([${img.names.join(' ')}]): please force removal`,
              code: 125,
            });
            continue;
          }
          if (!byId && !byDigest) {
            const name = matchedName(img, query);
            if (name !== undefined) {
              await store.untag(img.id, [name]);
              untagged.push(name);
              continue;
            }
          }
        }
        await remove(img);
      }
    }
    for (const n of untagged) process.stdout.write(`Untagged: ${n}\n`);
    for (const id of deleted) process.stdout.write(`Deleted: ${id}\n`);
    if (errors.length === 0) return 0;
    for (const e of errors.slice(0, -1)) process.stderr.write(`Error: ${e.message}\n`);
    const last = errors[errors.length - 1]!;
    throw new ExitError(last.message, last.code);
  });
}

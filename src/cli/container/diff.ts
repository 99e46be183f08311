// `carrier diff` / `carrier container diff`: a container's (or an image's top layer's) changes, as podman diff prints
// them — `A /path`, `C /path`, `D /path` lines in podman's order, or with --format json its object of lists.
import { diff, type Change } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { goJson } from '../format.js';
import { notKnown } from '../not-known.js';
import { withStore } from '../open-store.js';

/** podman's JSON: the paths grouped by kind, empty groups left out, indented by five spaces. */
function changesJson(changes: Change[]): string {
  const group = (kind: Change['kind']): string[] => changes.filter((c) => c.kind === kind).map((c) => c.path);
  const body: Record<string, string[]> = {};
  for (const [key, kind] of [['changed', 'C'], ['added', 'A'], ['deleted', 'D']] as const) {
    const paths = group(kind);
    if (paths.length > 0) body[key] = paths;
  }
  return goJson(body, 5) + '\n';
}

export async function diffCli(ctx: Context, type: 'all' | 'container'): Promise<number> {
  const query = ctx.args[0]!;
  const format = ctx.flags.string('format') ?? '';
  if (format !== '' && format.toLowerCase() !== 'json') throw new ExitError("only supported value for '--format' is 'json'", 125);
  return withStore(ctx.globals, async (store) => {
    const result = await diff(store, query, { type }).catch((err: unknown) => notKnown(err, type === 'all' ? 'image or container' : 'container', query));
    process.stdout.write(format === '' ? result.changes.map((c) => `${c.kind} ${c.path}\n`).join('') : changesJson(result.changes));
    return 0;
  });
}

// `carrier volume …`: named volumes in <graphroot>/volumes/<name>/_data, where podman keeps its own.
import { CarrierError, createVolume, inspectVolume, listVolumes, needsUserNamespace, pruneVolumes, removeVolume, volumeUsers, type VolumeInfo } from '../../index.js';
import type { Context } from '../command.js';
import { reexecInNamespace } from '../namespace.js';
import { ExitError } from '../errors.js';
import { goJson, renderTable, renderTemplate } from '../format.js';
import { withStore } from '../open-store.js';

function volumeJson(v: VolumeInfo, users: string[] = []): Record<string, unknown> {
  return {
    Name: v.name,
    Driver: v.driver,
    Mountpoint: v.mountpoint,
    CreatedAt: v.createdAt,
    Labels: v.labels,
    Scope: 'local',
    Options: {},
    Anonymous: v.anonymous,
    Origin: v.origin,
    Containers: users,
  };
}

export async function create(ctx: Context): Promise<number> {
  const labels: Record<string, string> = {};
  for (const kv of ctx.flags.list('label')) {
    const eq = kv.indexOf('=');
    labels[eq === -1 ? kv : kv.slice(0, eq)] = eq === -1 ? '' : kv.slice(eq + 1);
  }
  return withStore(ctx.globals, async (store) => {
    try {
      const v = await createVolume(store, ctx.args[0], { labels });
      process.stdout.write(`${v.name}\n`);
      return 0;
    } catch (err) {
      if (err instanceof CarrierError) throw new ExitError(err.message, 125);
      throw err;
    }
  });
}

export async function list(ctx: Context): Promise<number> {
  const format = ctx.flags.string('format');
  return withStore(ctx.globals, async (store) => {
    const vols = await listVolumes(store);
    const users = await volumeUsers(store);
    if (ctx.flags.bool('quiet')) for (const v of vols) process.stdout.write(`${v.name}\n`);
    else if (format === 'json') process.stdout.write(goJson(vols.map((v) => volumeJson(v, users.get(v.name))), 4) + '\n');
    else if (format !== undefined) for (const v of vols) process.stdout.write(renderTemplate(format, volumeJson(v, users.get(v.name))) + '\n');
    else if (vols.length > 0) process.stdout.write(renderTable([['DRIVER', 'VOLUME NAME'], ...vols.map((v) => [v.driver, v.name])]));
    return 0;
  });
}

export async function inspect(ctx: Context): Promise<number> {
  const format = ctx.flags.string('format');
  return withStore(ctx.globals, async (store) => {
    const users = await volumeUsers(store);
    const out: Record<string, unknown>[] = [];
    for (const n of ctx.args) {
      try {
        out.push(volumeJson(await inspectVolume(store, n), users.get(n)));
      } catch (err) {
        if (err instanceof CarrierError) throw new ExitError(`${err.message}: no such volume`, 125);
        throw err;
      }
    }
    if (format !== undefined && format !== 'json') for (const o of out) process.stdout.write(renderTemplate(format, o) + '\n');
    else process.stdout.write(goJson(out, 5) + '\n');
    return 0;
  });
}

export async function remove(ctx: Context): Promise<number> {
  // Rootless, a volume's files may belong to the user's subordinate ids: remove them from inside the namespace.
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  const force = ctx.flags.bool('force');
  return withStore(ctx.globals, async (store) => {
    let code = 0;
    for (const n of ctx.args) {
      try {
        await removeVolume(store, n, { force });
        process.stdout.write(`${n}\n`);
      } catch (err) {
        if (!(err instanceof CarrierError)) throw err;
        process.stderr.write(`Error: ${err.message}\n`);
        code = err.code === 'CARRIER_NOT_FOUND' ? code || 1 : err.code === 'CARRIER_IN_USE' ? code || 2 : 125;
      }
    }
    return code;
  });
}

export async function prune(ctx: Context): Promise<number> {
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  return withStore(ctx.globals, async (store) => {
    for (const n of await pruneVolumes(store)) process.stdout.write(`${n}\n`);
    return 0;
  });
}

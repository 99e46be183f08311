// `carrier container inspect`: container details as JSON — state, configuration, mounts, the overlay directories.
import { CarrierError, inspectContainer, type ContainerDetails } from '../../index.js';
import type { Context } from '../command.js';
import { ExitError } from '../errors.js';
import { goJson, renderTemplate } from '../format.js';
import { withStore } from '../open-store.js';
import { writeOut } from '../output.js';

function inspectJson(c: ContainerDetails, driver: string): Record<string, unknown> {
  const cfg = c.config;
  return {
    Id: c.id,
    Created: c.created,
    Path: c.command[0] ?? '',
    Args: c.command.slice(1),
    State: {
      Status: c.origin === 'external' ? 'storage' : c.state.status,
      Running: c.state.status === 'running',
      ExitCode: c.state.exitCode ?? 0,
      Pid: c.state.status === 'running' ? c.state.pid ?? 0 : 0,
      StartedAt: c.state.startedAt ?? '',
      FinishedAt: c.state.finishedAt ?? '',
      Error: c.state.error ?? '',
      Runtime: c.state.runtime ?? cfg?.runtime ?? '',
    },
    Image: c.image,
    ImageName: c.imageName,
    Name: c.name,
    Names: c.names,
    External: c.origin === 'external',
    Mounts: (cfg?.volumes ?? []).map((v) => ({
      Type: v.source?.startsWith('/') ? 'bind' : 'volume',
      ...(v.source !== undefined && !v.source.startsWith('/') ? { Name: v.source } : {}),
      Source: v.source ?? '',
      Destination: v.destination,
      RW: !v.readOnly,
    })),
    Config: cfg
      ? {
          Cmd: cfg.cmd ?? null,
          Entrypoint: cfg.entrypoint ?? null,
          Env: cfg.env,
          WorkingDir: cfg.workdir ?? '',
          User: cfg.user ?? '',
          Tty: cfg.tty,
          OpenStdin: cfg.interactive,
          Tmpfs: cfg.tmpfs,
          AutoRemove: cfg.autoRemove,
        }
      : null,
    GraphDriver: driver === 'vfs' ? { Name: 'vfs', Data: { Dir: c.upperDir } } : { Name: 'overlay', Data: { UpperDir: c.upperDir, WorkDir: c.upperDir.replace(/\/diff$/, '/work'), MergedDir: c.upperDir.replace(/\/diff$/, '/merged') } },
    StorageLayer: c.layer,
  };
}

export async function inspectContainers(ctx: Context): Promise<number> {
  const format = ctx.flags.string('format');
  return withStore(ctx.globals, async (store) => {
    const out: Record<string, unknown>[] = [];
    let missing: string | undefined;
    for (const q of ctx.args) {
      try {
        out.push(inspectJson(await inspectContainer(store, q), store.driverName));
      } catch (err) {
        if (err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND') missing ??= q;
        else throw err;
      }
    }
    if (format !== undefined && format !== 'json') for (const o of out) writeOut(renderTemplate(format, o) + '\n');
    else writeOut(goJson(out, 4) + '\n');
    if (missing !== undefined) throw new ExitError(`no such container ${missing}`, 125);
    return 0;
  });
}

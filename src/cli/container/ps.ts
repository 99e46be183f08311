// `carrier ps` (container ls): podman's table, JSON and Go-template output. Containers made by other tools on the
// same store (podman's) are listed with -a, with status "Storage".
import { listContainers, type ContainerDetails } from '../../index.js';
import type { Context } from '../command.js';
import { goJson, humanDuration, renderTable, renderTemplate, timeAgo } from '../format.js';
import { withStore } from '../open-store.js';
import { writeOut } from '../output.js';

function statusText(c: ContainerDetails, now = Date.now()): string {
  const s = c.state;
  if (c.origin === 'external') return 'Storage';
  switch (s.status) {
    case 'running':
      return `Up ${humanDuration(Math.max(0, now - Date.parse(s.startedAt ?? c.created)))}`;
    case 'exited':
      return s.finishedAt === undefined ? 'Exited' : `Exited (${s.exitCode ?? 0}) ${timeAgo(s.finishedAt, now)}`;
    case 'created':
      return 'Created';
    default:
      return 'Unknown';
  }
}

function unix(t: string | undefined): number {
  const v = t ? Date.parse(t) : NaN;
  return Number.isNaN(v) ? 0 : Math.floor(v / 1000);
}

/** Orders ISO timestamps by code point: localeCompare would load ICU's collator, ~6 ms of a short command's start-up. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function psJson(c: ContainerDetails): Record<string, unknown> {
  return {
    AutoRemove: c.config?.autoRemove ?? false,
    Command: c.command.length > 0 ? c.command : null,
    CreatedAt: timeAgo(c.created),
    Exited: c.state.status === 'exited',
    ExitedAt: unix(c.state.finishedAt),
    ExitCode: c.state.exitCode ?? 0,
    Id: c.id,
    Image: c.imageName,
    ImageID: c.image,
    Labels: null,
    Mounts: (c.config?.volumes ?? []).map((v) => v.destination),
    Names: c.names,
    Pid: c.state.status === 'running' ? c.state.pid ?? 0 : 0,
    StartedAt: unix(c.state.startedAt),
    State: c.origin === 'external' ? 'storage' : c.state.status,
    Status: statusText(c),
    Created: unix(c.created),
    External: c.origin === 'external',
  };
}

export async function listContainersCli(ctx: Context): Promise<number> {
  const all = ctx.flags.bool('all');
  const quiet = ctx.flags.bool('quiet');
  const noTrunc = ctx.flags.bool('no-trunc');
  const format = ctx.flags.string('format');
  return withStore(ctx.globals, async (store) => {
    const list = (await listContainers(store))
      .filter((c) => all || c.state.status === 'running')
      .sort((a, b) => unix(b.created) - unix(a.created) || byCodePoint(b.created, a.created));
    if (quiet) {
      for (const c of list) writeOut(`${noTrunc ? c.id : c.id.slice(0, 12)}\n`);
      return 0;
    }
    if (format === 'json') {
      writeOut(goJson(list.map(psJson), 4) + '\n');
      return 0;
    }
    if (format !== undefined) {
      for (const c of list) writeOut(renderTemplate(format, { ...psJson(c), ID: c.id.slice(0, 12), Names: c.names.join(',') }) + '\n');
      return 0;
    }
    const cmdText = (c: ContainerDetails): string => {
      const s = c.command.join(' ');
      return noTrunc || s.length <= 20 ? s : `${s.slice(0, 17)}...`;
    };
    const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
    for (const c of list) {
      rows.push([noTrunc ? c.id : c.id.slice(0, 12), c.imageName, cmdText(c), timeAgo(c.created), statusText(c), '', c.names.join(',')]);
    }
    writeOut(renderTable(rows));
    return 0;
  });
}

// --help for every command, rendered from its definition in one layout (podman's sections): the summary, a
// description, the usage line, aliases, the subcommands of a group, and the flags table.
import type { CommandDef, FlagDef } from './command.js';
import { flagsOf } from './parse.js';

export function renderHelp(def: CommandDef, path: readonly string[]): string {
  const name = ['carrier', ...path].join(' ');
  let out = `${def.summary}\n\n`;
  if (def.description !== undefined) out += `Description:\n${indent(def.description)}\n\n`;
  out += `Usage:\n  ${name} ${def.usage}\n\n`;
  if (def.aliases !== undefined && def.aliases.length > 0) out += `Aliases:\n  ${[def.name, ...def.aliases].join(', ')}\n\n`;
  if (def.subcommands !== undefined) {
    const width = Math.max(...def.subcommands.map((c) => c.name.length)) + 2;
    out += 'Available Commands:\n';
    for (const c of [...def.subcommands].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) out += `  ${c.name.padEnd(width)}${c.summary}\n`;
    out += '\n';
  }
  out += `${path.length === 0 ? 'Global options' : 'Options'}:\n${flagTable(flagsOf(def))}`;
  if (def.subcommands !== undefined) out += `\nRun '${name} COMMAND --help' for a command's options.\n`;
  return out;
}

function flagTable(flags: FlagDef[]): string {
  const left = flags.map((f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.type === 'bool' ? '' : ` ${f.value ?? 'VALUE'}`}`);
  const width = Math.max(...left.map((l) => l.length)) + 3;
  return flags
    .map((f, i) => {
      const more = f.default !== undefined && f.default !== false ? ` (default: ${String(f.default)})` : f.type === 'list' ? ' (repeatable)' : '';
      return `  ${left[i]!.padEnd(width)}${f.help}${more}\n`;
    })
    .join('');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? '' : `  ${l}`))
    .join('\n');
}

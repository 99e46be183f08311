// What a CLI command is: one definition (name, usage, summary, flags, positional arity, run) that the dispatcher
// parses, checks and documents the same way for every command. Definitions load none of the library: `run` imports
// the command's implementation when the command actually runs.
import type { GlobalOptions } from './errors.js';

/** A command line mistake: printed with a pointer to the command's --help, exit code 125 (podman's). */
export class UsageError extends Error {}

export interface FlagDef {
  /** The long name without dashes: `force` for `--force`. */
  name: string;
  /** A one-letter short form: `f` for `-f`. */
  short?: string;
  /** `bool` takes no value (`--x=false` sets it false); `string` takes one; `list` may be given several times. */
  type: 'bool' | 'string' | 'list';
  /** What the value is, for the help: `FILE`, `SIZE`. */
  value?: string;
  default?: string | boolean;
  help: string;
}

export interface Arity {
  min: number;
  /** No maximum when absent. */
  max?: number;
}

export interface CommandDef {
  name: string;
  /** Other names at the same place: `ls` and `list`. */
  aliases?: string[];
  /** What follows the command's path in the usage line: `[options] IMAGE [IMAGE...]`. */
  usage: string;
  /** One line: what the command does. */
  summary: string;
  /** More lines for --help, when the summary is not enough. */
  description?: string;
  flags?: FlagDef[];
  /** How many positional arguments the command takes (default: none). */
  args?: Arity;
  /** Flags end at the first positional argument: what follows belongs to another program (run's COMMAND). */
  flagsBeforeArgs?: boolean;
  /** A group (`image`, `system`) has subcommands instead of `run`. */
  subcommands?: CommandDef[];
  run?: (ctx: Context) => Promise<number>;
}

export interface Context {
  readonly globals: GlobalOptions;
  /** The command's canonical path: `['image', 'rm']`. */
  readonly path: readonly string[];
  /** Everything after the global options, as typed: to run the same command again elsewhere. */
  readonly argv: readonly string[];
  readonly args: readonly string[];
  readonly flags: Flags;
  /** The whole table, for `carrier help`. */
  readonly root: CommandDef;
}

export type FlagValue = string | boolean | string[];

/** The parsed flags of one command. Asking for a flag the command does not define is a bug, and throws. */
export class Flags {
  constructor(
    private readonly defs: readonly FlagDef[],
    private readonly values: ReadonlyMap<string, FlagValue>,
  ) {}

  /** True when the flag was given on the command line (whatever its value). */
  given(name: string): boolean {
    this.def(name);
    return this.values.has(name);
  }

  /** True when the command defines the flag (commands that share code may define different sets). */
  defines(name: string): boolean {
    return this.defs.some((f) => f.name === name);
  }

  bool(name: string): boolean {
    const d = this.def(name, 'bool');
    const v = this.values.get(name);
    return typeof v === 'boolean' ? v : d.default === true;
  }

  string(name: string): string | undefined {
    const d = this.def(name, 'string');
    const v = this.values.get(name);
    return typeof v === 'string' ? v : typeof d.default === 'string' ? d.default : undefined;
  }

  list(name: string): string[] {
    this.def(name, 'list');
    const v = this.values.get(name);
    return Array.isArray(v) ? v : [];
  }

  private def(name: string, type?: FlagDef['type']): FlagDef {
    const d = this.defs.find((f) => f.name === name);
    if (d === undefined || (type !== undefined && d.type !== type)) throw new Error(`the command defines no ${type ?? ''} flag --${name}`);
    return d;
  }
}

/** The same command under another name and place: `carrier images` is `carrier image ls`. */
export function shortcut(def: CommandDef, name: string, aliases: string[] = []): CommandDef {
  return { ...def, name, aliases };
}

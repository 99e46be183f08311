// Reading a command line against the table: which command it names, its flags (every unknown one refused, as
// podman's cobra refuses them) and its positional arguments, all before anything runs.
import { Flags, UsageError, type CommandDef, type FlagDef, type FlagValue } from './command.js';

/** Every command takes -h / --help. */
export const HELP_FLAG: FlagDef = { name: 'help', short: 'h', type: 'bool', help: 'show this help' };

/** A command line mistake found while resolving `path`: the message names the flag or word at fault. */
export class CommandLineError extends UsageError {
  constructor(
    message: string,
    readonly path: readonly string[],
    /** `flag`: podman adds "See '… --help'"; `command`: an unknown subcommand, "Try '… --help' …". */
    readonly kind: 'flag' | 'command',
  ) {
    super(message);
  }
}

export interface Resolved {
  def: CommandDef;
  path: string[];
  flags: Flags;
  args: string[];
  help: boolean;
  /** The root's own flags (podman's global options, before the command). */
  globals: Flags;
  /** The command line from the command's first word on. */
  argv: string[];
  /** A group named without one of its subcommands. */
  missing: boolean;
}

export function flagsOf(def: CommandDef): FlagDef[] {
  return [...(def.flags ?? []), HELP_FLAG];
}

/** Walks from `root` down the words of `argv` to the command they name, parsing each level's flags. */
export function resolve(root: CommandDef, argv: string[]): Resolved {
  let def = root;
  const path: string[] = [];
  let rest = argv;
  let globals: Flags | undefined;
  let commandArgv: string[] | undefined;
  for (;;) {
    const group = def.subcommands !== undefined;
    const parsed = parseFlags(def, rest, group || def.flagsBeforeArgs === true, path);
    globals ??= parsed.flags;
    const help = parsed.flags.bool('help');
    const word = group && !help ? parsed.args[0] : undefined;
    if (word === undefined) {
      if (!group && !help) checkArity(def, parsed.args, path);
      return { def, path, flags: parsed.flags, args: parsed.args, help, globals, argv: commandArgv ?? [], missing: group && !help };
    }
    const sub = def.subcommands!.find((c) => c.name === word || c.aliases?.includes(word));
    if (sub === undefined) throw new CommandLineError(`unrecognized command \`${['carrier', ...path, word].join(' ')}\``, path, 'command');
    commandArgv ??= parsed.args;
    path.push(sub.name);
    def = sub;
    rest = parsed.args.slice(1);
  }
}

interface Parsed {
  flags: Flags;
  args: string[];
}

/** `--name`, `--name=value`, `--name value`, `-x`, `-xy` (booleans together), `-xVALUE`, `-x VALUE`, `--`. */
export function parseFlags(def: CommandDef, argv: readonly string[], stopAtArg: boolean, path: readonly string[]): Parsed {
  const defs = flagsOf(def);
  const values = new Map<string, FlagValue>();
  const args: string[] = [];
  const fail = (message: string): never => {
    throw new CommandLineError(message, path, 'flag');
  };
  const set = (d: FlagDef, value: string | boolean): void => {
    if (d.type === 'list') values.set(d.name, [...((values.get(d.name) as string[] | undefined) ?? []), String(value)]);
    else values.set(d.name, value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (stopAtArg) {
        args.push(...argv.slice(i));
        break;
      }
      args.push(arg);
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const d = defs.find((f) => f.name === name);
      if (d === undefined) fail(`unknown flag: --${name}`);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      if (d!.type === 'bool') {
        set(d!, inline === undefined ? true : parseBool(inline, d!, fail));
      } else {
        const value = inline ?? argv[++i];
        if (value === undefined) fail(`flag needs an argument: --${name}`);
        set(d!, value!);
      }
      continue;
    }
    // One or more short flags: booleans may share the dash; a valued one takes the rest of the word or the next.
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j]!;
      const d = defs.find((f) => f.short === c);
      if (d === undefined) fail(`unknown shorthand flag: '${c}' in ${arg}`);
      if (d!.type === 'bool') {
        if (arg[j + 1] === '=') {
          set(d!, parseBool(arg.slice(j + 2), d!, fail));
          break;
        }
        set(d!, true);
        continue;
      }
      const attached = arg.slice(j + 1).replace(/^=/, '');
      const value = attached !== '' ? attached : argv[++i];
      if (value === undefined) fail(`flag needs an argument: '${c}' in ${arg}`);
      set(d!, value!);
      break;
    }
  }
  return { flags: new Flags(defs, values), args };
}

function parseBool(text: string, d: FlagDef, fail: (m: string) => never): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false;
  return fail(`invalid argument "${text}" for "${d.short ? `-${d.short}, ` : ''}--${d.name}" flag: a boolean is true or false`);
}

/** cobra's wording for a wrong number of positional arguments. */
function checkArity(def: CommandDef, args: readonly string[], path: readonly string[]): void {
  const { min, max } = def.args ?? { min: 0, max: 0 };
  const n = args.length;
  let message: string | undefined;
  if (max === 0 && n > 0) message = `${['carrier', ...path].join(' ')} takes no arguments, received ${n}`;
  else if (min === max && n !== min) message = `accepts ${min} arg(s), received ${n}`;
  else if (n < min) message = `requires at least ${min} arg(s), only received ${n}`;
  else if (max !== undefined && n > max) message = `accepts at most ${max} arg(s), received ${n}`;
  if (message !== undefined) throw new CommandLineError(message, path, 'flag');
}

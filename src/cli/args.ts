// A small argument parser for the CLI: `--flag`, `--flag=value`, `--flag value`, and positionals.

export class UsageError extends Error {}

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positionals: string[];
}

/**
 * `valued` names the flags that take a value; every other `--flag` is a boolean. With `booleans`, those are the only
 * booleans taken and any other flag is refused (`unknown flag: X`), so a misspelt flag cannot pass unnoticed.
 */
export function parseArgs(argv: string[], valued: readonly string[], booleans?: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (valued.includes(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      flags.set(name, value);
    } else {
      if (booleans && !booleans.includes(name)) throw new UsageError(`unknown flag: ${name}`);
      if (eq !== -1) throw new UsageError(`${name} takes no value`);
      flags.set(name, true);
    }
  }
  return { flags, positionals };
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

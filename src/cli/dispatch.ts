// The thin `carrier` CLI: finds the command in the table, refuses what it does not define, then runs it. All
// terminal output lives in src/cli/. Command implementations (and the library) load only when a command runs, so
// --help and a refused flag cost no more than reading the table.
import { UsageError, type Context } from './command.js';
import { ExitError, type GlobalOptions } from './errors.js';
import { renderHelp } from './help.js';
import { CommandLineError, resolve, type Resolved } from './parse.js';
import { root } from './table.js';
import { writeOut } from './output.js';

function globalOptions(r: Resolved): GlobalOptions {
  const g: GlobalOptions = {};
  const names = { root: 'root', runroot: 'runroot', driver: 'storage-driver', blobCache: 'blob-cache' } as const;
  for (const [key, flag] of Object.entries(names) as [keyof GlobalOptions, string][]) {
    const v = r.globals.string(flag);
    if (v === '') throw new CommandLineError(`flag needs an argument: --${flag}`, [], 'flag');
    if (v !== undefined) g[key] = v;
  }
  return g;
}

/** The command line's command path (`image ls`), once resolved: what runCli returns. */
let command: string | undefined;

async function main(argv: string[]): Promise<number> {
  let r: Resolved;
  let ctx: Context;
  try {
    r = resolve(root, argv);
    ctx = { globals: globalOptions(r), path: r.path, argv: r.argv, args: r.args, flags: r.flags, root };
  } catch (err) {
    return usageFailure(err);
  }
  command = r.help ? '--help' : r.path.join(' ');
  if (r.def === root && r.globals.bool('version') && !r.help) return root.subcommands!.find((c) => c.name === 'version')!.run!(ctx);
  if (r.help || (r.missing && r.def === root)) {
    writeOut(renderHelp(r.def, r.path));
    return 0;
  }
  if (r.missing) {
    writeOut(renderHelp(r.def, r.path));
    process.stderr.write(`Error: missing command '${['carrier', ...r.path].join(' ')} COMMAND'\n`);
    return 125;
  }
  try {
    return await r.def.run!(ctx);
  } catch (err) {
    if (err instanceof UsageError) return usageFailure(new CommandLineError(err.message, r.path, 'flag'));
    throw err;
  }
}

/** podman's two shapes: a flag or argument mistake points at the command's --help; an unknown command says "Try". */
function usageFailure(err: unknown): number {
  if (!(err instanceof CommandLineError)) throw err;
  const name = ['carrier', ...err.path].join(' ');
  if (err.kind === 'command') process.stderr.write(`Error: ${err.message}\nTry '${name} --help' for more information\n`);
  else process.stderr.write(`Error: ${err.message}\nSee '${name} --help'\n`);
  return 125;
}

/**
 * Runs the command line `argv` (without node and the script) and sets the process's exit code. Returns the command
 * that ran (`image ls`; undefined when the command line was refused), for the bin's code cache.
 */
export async function runCli(argv: string[]): Promise<string | undefined> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (err instanceof ExitError) {
      process.stderr.write(`Error: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return command;
    }
    // The library is loaded when a command ran far enough to fail inside it; if it cannot load, that is the error.
    const api = await import('../index.js').catch(() => undefined);
    if (api !== undefined && err instanceof api.CarrierError) {
      process.stderr.write(`Error: ${err.message}${err.path ? ` (at ${err.path})` : ''} [${err.code}]\n`);
    } else {
      process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 125;
  }
  return command;
}

// `carrier run`, `create` and `start`. Exit codes (podman's): `run` and `start` return the container's own exit
// code; 125 when Carrier itself fails (unknown image, bad flags, no runtime), 126 when the command cannot be invoked
// (not executable, or the OCI runtime failed to start it), 127 when the command is not found.
import { CarrierError, SignalRelay, createContainer, needsUserNamespace, runContainer, startContainer, type CreateContainerOptions } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';
import { reexecInNamespace } from '../namespace.js';

/** The container options run and create take from their flags; the first argument is the image, the rest its command. */
function containerOptions(ctx: Context): CreateContainerOptions {
  const { flags } = ctx;
  if (flags.bool('detach')) throw new UsageError('detached containers are not supported yet: Carrier runs containers in the foreground');
  const o: CreateContainerOptions = {};
  const str = (name: string, set: (v: string) => void): void => {
    const v = flags.string(name);
    if (v !== undefined) set(v);
  };
  str('workdir', (v) => (o.workdir = v));
  str('user', (v) => (o.user = v));
  str('name', (v) => (o.name = v));
  str('runtime', (v) => (o.runtime = v));
  str('entrypoint', (v) => (o.entrypoint = v.startsWith('[') ? parseJsonArray(v) : v === '' ? [] : [v]));
  if (flags.bool('interactive')) o.interactive = true;
  if (flags.bool('tty')) o.tty = true;
  const cmd = ctx.args.slice(1);
  if (cmd.length > 0) o.cmd = cmd;
  if (flags.list('env').length > 0) o.env = flags.list('env');
  if (flags.list('volume').length > 0) o.volumes = flags.list('volume');
  if (flags.list('tmpfs').length > 0) o.tmpfs = flags.list('tmpfs');
  return o;
}

function parseJsonArray(s: string): string[] {
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* below */
  }
  throw new UsageError(`--entrypoint: "${s}" is not a JSON array of strings`);
}

export function warn(message: string): void {
  process.stderr.write(`WARN[0000] ${message}\n`);
}

/** Turns a Carrier error into podman's exit code 125 with its message; a missing image reads like podman's. */
function failRun(err: unknown): never {
  if (err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && /^image not known: /.test(err.message)) {
    throw new ExitError(`${err.message.replace(/^image not known: /, '')}: image not known`, 125);
  }
  if (err instanceof CarrierError) throw new ExitError(err.message, 125);
  throw err;
}

export async function run(ctx: Context): Promise<number> {
  const options = containerOptions(ctx);
  if (ctx.flags.bool('rm')) options.autoRemove = true;
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  if (options.tty && !process.stdin.isTTY) {
    warn('the input device is not a TTY: running without a terminal (-t ignored)');
    delete options.tty;
  }
  const signals = new SignalRelay();
  if (process.stdin.isTTY) process.on('SIGINT', () => {}); // the runtime gets a terminal's Ctrl-C itself
  return withStore(ctx.globals, async (store) => {
    let result;
    try {
      result = await runContainer(store, ctx.args[0]!, options, { onWarning: warn, signals });
    } catch (err) {
      failRun(err);
    } finally {
      signals.dispose();
    }
    if (result.runtimeError !== undefined) {
      const why =
        result.failure === 'not-found'
          ? 'OCI runtime attempted to invoke a command that was not found'
          : result.failure === 'cannot-invoke'
            ? 'OCI permission denied'
            : 'OCI runtime error';
      process.stderr.write(`Error: ${result.runtime}: ${result.runtimeError.replace(/^\S+ (run|create) failed: /, '')}: ${why}\n`);
    }
    return result.exitCode;
  });
}

export async function create(ctx: Context): Promise<number> {
  const options = containerOptions(ctx);
  return withStore(ctx.globals, async (store) => {
    try {
      const c = await createContainer(store, ctx.args[0]!, options);
      process.stdout.write(`${c.id}\n`);
      return 0;
    } catch (err) {
      failRun(err);
    }
  });
}

export async function start(ctx: Context): Promise<number> {
  if (needsUserNamespace()) return reexecInNamespace(ctx);
  const signals = new SignalRelay();
  return withStore(ctx.globals, async (store) => {
    try {
      const r = await startContainer(store, ctx.args[0]!, { onWarning: warn, signals });
      if (r.runtimeError !== undefined) process.stderr.write(`Error: ${r.runtime}: ${r.runtimeError}\n`);
      return r.exitCode;
    } catch (err) {
      if (err instanceof CarrierError) throw new ExitError(err.message, 125);
      throw err;
    }
  });
}

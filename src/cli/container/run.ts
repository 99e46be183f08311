// `carrier run`, `create` and `start`. Exit codes (podman's): `run` and `start` return the container's own exit
// code; 125 when Carrier itself fails (unknown image, bad flags, no runtime), 126 when the command cannot be invoked
// (not executable, or the OCI runtime failed to start it), 127 when the command is not found.
import { CarrierError, SignalRelay, createContainer, needsUserNamespace, runContainer, startContainer, type CreateContainerOptions, type Store } from '../../index.js';
import { readFile } from 'node:fs/promises';
import { UsageError, type Context } from '../command.js';
import { ExitError } from '../errors.js';
import { withStore } from '../open-store.js';
import { reexecInNamespace } from '../namespace.js';
import { writeOut } from '../output.js';

/**
 * `--env-file FILE`: one variable a line, `K=V`, or `K` alone for the value in Carrier's environment; blank lines and
 * lines starting with `#` are skipped (podman's format). Files come first, `--env` after them, so `--env` wins.
 */
async function envFiles(files: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ExitError(`--env-file ${file}: ${(err as Error).message}`, 125);
    }
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\r$/, '').trimStart();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('=')) throw new ExitError(`--env-file ${file}: variable name is empty in "${line}"`, 125);
      out.push(line);
    }
  }
  return out;
}

/** The container options run and create take from their flags; the first argument is the image, the rest its command. */
async function containerOptions(ctx: Context): Promise<CreateContainerOptions> {
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
  const env = [...(await envFiles(flags.list('env-file'))), ...flags.list('env')];
  if (env.length > 0) o.env = env;
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

/** The failure of a lookup that found no such image (and not, say, a bind mount's missing source). */
function imageNotKnown(err: unknown): err is CarrierError {
  return err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && /^image not known: /.test(err.message);
}

/** Turns a Carrier error into podman's exit code 125 with its message; a missing image reads like podman's. */
function failRun(err: unknown): never {
  if (imageNotKnown(err)) {
    throw new ExitError(`${err.message.replace(/^image not known: /, '')}: image not known`, 125);
  }
  if (err instanceof CarrierError) throw new ExitError(err.message, 125);
  throw err;
}

type PullPolicy = 'missing' | 'always' | 'never' | 'newer';
const POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never', 'newer'];

function pullPolicy(ctx: Context): PullPolicy {
  const v = ctx.flags.string('pull') ?? 'missing';
  if (!(POLICIES as readonly string[]).includes(v)) throw new UsageError(`invalid pull policy "${v}": use ${POLICIES.join(', ')}`);
  return v as PullPolicy;
}

/**
 * The image of run/create, pulled as `--pull` says (podman's policies). Done before a rootless command re-runs
 * itself in Carrier's user namespace, so the pull sees the user's own uid (auth files) and the re-run needs none.
 */
async function ensureImage(ctx: Context, policy: PullPolicy): Promise<void> {
  if (policy !== 'never') await withStore(ctx.globals, (store) => ensureImageIn(store, ctx, policy));
}

/** ensureImage in a store already open. The pull's CLI code loads only when a pull is needed. */
async function ensureImageIn(store: Store, ctx: Context, policy: PullPolicy): Promise<void> {
  if (policy === 'never') return;
  const reference = ctx.args[0]!;
  const local = await store.image(reference);
  if (local !== undefined && policy === 'missing') return;
  const quiet = ctx.flags.bool('quiet');
  if (!quiet) process.stderr.write(`Trying to pull ${reference}...\n`);
  try {
    const { pullWithFlags } = await import('../image/pull.js');
    await pullWithFlags(store, reference, ctx.flags, { quiet });
  } catch (err) {
    // newer: a registry that cannot be asked leaves the stored image in use, as podman does.
    if (policy === 'newer' && local !== undefined && err instanceof CarrierError && err.code !== 'ABORT_ERR') {
      warn(`cannot check ${reference} for a newer image (${err.message}); using the stored one`);
      return;
    }
    failRun(err);
  }
}

/** The same command with `--pull=never` as its last flag (before the image): for the re-run in the namespace. */
function withoutPull(ctx: Context): Context {
  const at = ctx.argv.length - ctx.args.length;
  const before = ctx.argv[at - 1] === '--' ? at - 1 : at;
  return { ...ctx, argv: [...ctx.argv.slice(0, before), '--pull=never', ...ctx.argv.slice(before)] };
}

export async function run(ctx: Context): Promise<number> {
  const options = await containerOptions(ctx);
  if (ctx.flags.bool('rm')) options.autoRemove = true;
  await ensureImage(ctx, pullPolicy(ctx));
  if (needsUserNamespace()) return reexecInNamespace(withoutPull(ctx));
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
  const options = await containerOptions(ctx);
  const policy = pullPolicy(ctx);
  return withStore(ctx.globals, async (store) => {
    // --pull=missing (the default): the create looks the image up itself, and only an image it did not find is
    // pulled before the create is made again; a lookup of its own first cost every create one more round of locks
    if (policy !== 'missing') await ensureImageIn(store, ctx, policy);
    try {
      const make = (): ReturnType<typeof createContainer> => createContainer(store, ctx.args[0]!, options);
      const c = await make().catch(async (err: unknown) => {
        if (policy !== 'missing' || !imageNotKnown(err)) throw err;
        await ensureImageIn(store, ctx, policy);
        return make();
      });
      writeOut(`${c.id}\n`);
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

// Running a bundle with an OCI runtime (runc, or crun where it works) in the foreground: stdio attached, signals
// forwarded, the container's exit status returned, and the runtime's own failures told apart from the container's
// (podman's exit codes: 126 the command cannot be invoked, 127 it was not found).
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { CarrierError } from '../errors.js';
import { native } from '../native.js';

export type RuntimeName = 'runc' | 'crun';

export interface OciRuntime {
  name: RuntimeName;
  path: string;
}

/** The first executable named `name` on PATH. */
export { findOnPath } from '../fs/paths.js';
import { findOnPath } from '../fs/paths.js';
import { makeDirs } from '../fs/batch.js';

/**
 * The runtime to use: the one asked for, else runc, else crun. (podman prefers crun; Carrier prefers runc because
 * crun refuses hybrid cgroup v1/v2 hosts, and a crun refusal is caught at run time anyway.)
 */
export async function findRuntime(name?: string): Promise<OciRuntime> {
  if (name !== undefined && name !== 'runc' && name !== 'crun') {
    if (name.includes('/')) {
      const base = name.split('/').pop()!;
      return { name: base.includes('crun') ? 'crun' : 'runc', path: name };
    }
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `unknown OCI runtime "${name}" (runc or crun)`);
  }
  const order: RuntimeName[] = name !== undefined ? [name] : ['runc', 'crun'];
  for (const n of order) {
    const p = await findOnPath(n);
    if (p) return { name: n, path: p };
  }
  throw new CarrierError('CARRIER_NOT_FOUND', `OCI runtime ${name !== undefined ? `"${name}"` : 'runc or crun'} not found on PATH (install Debian's 'runc')`);
}

/**
 * Catches the signals meant for the container from the moment Carrier starts working on a run, so a SIGTERM that
 * arrives while the store is still being prepared is not lost (nor kills Carrier half-way, leaving a mount behind):
 * before the container exists it cancels the run; afterwards it is passed on.
 */
export class SignalRelay {
  readonly received: NodeJS.Signals[] = [];
  private target: ((sig: NodeJS.Signals) => void) | undefined;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();

  constructor(signals: NodeJS.Signals[] = defaultForwardedSignals()) {
    for (const sig of signals) {
      const h = (): void => {
        this.received.push(sig);
        this.target?.(sig);
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
  }

  /** A signal arrived before the container could start. */
  get cancelled(): NodeJS.Signals | undefined {
    return this.target === undefined ? this.received[0] : undefined;
  }

  attach(target: (sig: NodeJS.Signals) => void): void {
    this.target = target;
  }

  detach(): void {
    this.target = undefined;
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.handlers.clear();
  }
}

/**
 * SIGTERM/SIGHUP always; SIGINT/SIGQUIT only when stdin is not a terminal. With a terminal the runtime shares our
 * process group, so a Ctrl-C reaches it directly and it passes the signal on itself; Carrier then only has to stay
 * alive (it ignores SIGINT) instead of forwarding a second one.
 */
export function defaultForwardedSignals(): NodeJS.Signals[] {
  return process.stdin.isTTY ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
}

export interface RunBundleOptions {
  /** Signals to pass on (default: a relay made for this call). */
  signals?: SignalRelay;
  runtime: OciRuntime;
  /** The bundle directory (holds config.json). */
  bundle: string;
  /** The runtime's container id. */
  id: string;
  /** The runtime's state directory (`--root`). */
  stateRoot: string;
  /** Allocate a terminal: the runtime proxies the pty to our stdio. */
  tty?: boolean;
  /** Attach stdin (else the container reads /dev/null). */
  interactive?: boolean;
  /** Where the runtime's stdout/stderr go (default: ours). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Called once the runtime process is spawned. */
  onSpawn?: (pid: number) => void;
}

export interface RunBundleResult {
  /** The container's exit code, or podman's 126/127 when the runtime could not start the command. */
  exitCode: number;
  /** The runtime's own error when it failed (the container never ran, or ran and the runtime failed). */
  runtimeError?: string;
  /** How the runtime's failure was classified. */
  failure?: 'not-found' | 'cannot-invoke' | 'cgroups' | 'runtime';
  signal?: NodeJS.Signals;
}

/** Reads the runtime's JSON log (`--log-format json`): the last error message, if any. */
async function runtimeError(logFile: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    return undefined;
  }
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === 'error' || entry.level === 'fatal') && entry.msg) last = entry.msg;
    } catch {
      if (/error/i.test(line)) last = line.trim();
    }
  }
  return last;
}

/**
 * Sorts a runtime failure into podman's buckets. The texts are runc's and crun's exec errors: "executable file not
 * found in $PATH", "stat /x: no such file or directory" → not found; "permission denied", "exec format error",
 * "is a directory" → cannot invoke.
 */
export function classifyRuntimeError(message: string): NonNullable<RunBundleResult['failure']> {
  const m = message.toLowerCase();
  const execRelated = /\bexec\b|executable|exec:/.test(m);
  if (/executable file not found|not found in \$path/.test(m)) return 'not-found';
  if (execRelated && /no such file or directory/.test(m)) return 'not-found';
  if (execRelated && /permission denied|exec format error|is a directory|not a directory/.test(m)) return 'cannot-invoke';
  if (/cgroup/.test(m)) return 'cgroups';
  return 'runtime';
}

const FAILURE_EXIT: Record<NonNullable<RunBundleResult['failure']>, number> = {
  'not-found': 127,
  'cannot-invoke': 126,
  cgroups: 126,
  runtime: 126,
};

/**
 * `<runtime> run --bundle B ID` in the foreground. With a terminal the runtime gets our stdio as it is (it puts a
 * tty stdin into raw mode and proxies the pty); without one the container's stdout/stderr are the runtime's and
 * stdin is /dev/null unless `interactive`.
 *
 * Signals: SIGTERM/SIGHUP (and SIGINT/SIGQUIT when stdin is not a terminal) that reach Carrier are passed on with
 * `<runtime> kill`. When stdin is a terminal, the runtime shares our process group, so a Ctrl-C from the terminal
 * reaches it directly and it forwards the signal itself; Carrier then does not forward SIGINT a second time.
 */
export async function runBundle(options: RunBundleOptions): Promise<RunBundleResult> {
  const { runtime, bundle, id, stateRoot } = options;
  await makeDirs(stateRoot, 0o700);
  const logFile = join(bundle, `${runtime.name}.log.json`);
  await rm(logFile, { force: true });
  const global = ['--root', stateRoot, '--log', logFile, '--log-format', 'json'];
  const stdinTty = process.stdin.isTTY === true;
  const sameGroup = options.tty === true || (options.interactive === true && stdinTty);
  // The runtime makes a terminal stdin raw: an end-of-file already waiting in it (Ctrl-D typed early, or `script`
  // whose own input ended) would then reach the container as a NUL byte, echoed before the command's output.
  if (options.tty === true && stdinTty) native.discardTerminalEof(0);
  const child = spawn(runtime.path, [...global, 'run', '--bundle', bundle, id], {
    stdio: [options.interactive || options.tty ? 'inherit' : 'ignore', options.stdout ? 'pipe' : 'inherit', 'pipe'],
    detached: !sameGroup,
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  if (options.stdout && child.stdout) child.stdout.pipe(options.stdout, { end: false });
  // The runtime prints its own failure ("runc run failed: …") on stderr as well as in the log; Carrier reports it
  // once, in its own words, so that line is held back. Everything else (the container's stderr) passes through.
  const errOut = options.stderr ?? process.stderr;
  const ownPrefix = new RegExp(`^(${runtime.name} (run|create) failed|${runtime.name}: )`);
  child.stderr?.on('data', (chunk: Buffer) => {
    if (ownPrefix.test(chunk.toString('utf8', 0, 64))) return;
    errOut.write(chunk);
  });

  const relay = options.signals ?? new SignalRelay();
  const ignoreInt = (): void => {};
  if (sameGroup && stdinTty) process.on('SIGINT', ignoreInt);
  let exited = false;
  child.once('close', () => {
    exited = true;
  });
  // The runtime may not have created the container yet when a signal comes: retry until it has, or has exited.
  relay.attach((sig) => {
    const attempt = (left: number): void => {
      if (exited) return;
      const k = spawn(runtime.path, ['--root', stateRoot, 'kill', id, sig.replace(/^SIG/, '')], { stdio: 'ignore' });
      k.once('error', () => {});
      k.once('close', (code) => {
        if (code !== 0 && left > 0) setTimeout(() => attempt(left - 1), 50);
      });
    };
    attempt(100);
  });
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    });
    const err = await runtimeError(logFile);
    if (signal) return { exitCode: 128 + (signalNumber(signal) ?? 15), signal };
    const exitCode = code ?? 125;
    if (exitCode !== 0 && err !== undefined) {
      const failure = classifyRuntimeError(err);
      return { exitCode: FAILURE_EXIT[failure], runtimeError: err, failure };
    }
    return { exitCode };
  } catch (err) {
    throw new CarrierError('CARRIER_RUNTIME_ERROR', `cannot run ${runtime.path}: ${(err as Error).message}`, { cause: err });
  } finally {
    relay.detach();
    if (!options.signals) relay.dispose();
    process.off('SIGINT', ignoreInt);
  }
}

/** Removes the runtime's state for `id` (after a crash or a kill), ignoring "does not exist". */
export async function deleteRuntimeState(runtime: OciRuntime, stateRoot: string, id: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const p = spawn(runtime.path, ['--root', stateRoot, 'delete', '--force', id], { stdio: 'ignore' });
    p.once('error', () => resolve());
    p.once('close', () => resolve());
  });
}

/** `<runtime> state ID` → its status ("created", "running", "stopped"), or undefined when it has no such container. */
export async function runtimeState(runtime: OciRuntime, stateRoot: string, id: string): Promise<{ status: string; pid?: number } | undefined> {
  return new Promise((resolve) => {
    const p = spawn(runtime.path, ['--root', stateRoot, 'state', id], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    p.once('error', () => resolve(undefined));
    p.once('close', (code) => {
      if (code !== 0) return resolve(undefined);
      try {
        const s = JSON.parse(out) as { status: string; pid?: number };
        resolve({ status: s.status, ...(s.pid ? { pid: s.pid } : {}) });
      } catch {
        resolve(undefined);
      }
    });
  });
}

export function signalNumber(sig: NodeJS.Signals): number | undefined {
  return osConstants.signals[sig];
}

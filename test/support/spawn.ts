// Running a build or test program with its output captured and a kill deadline (the fuzz and sanitizer suites).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs `cmd` (cwd: the repository unless given), stdout and stderr interleaved; SIGKILL after `killAfterMs`. */
export function runCaptured(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; killAfterMs: number }): Promise<Run> {
  return new Promise<Run>((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

/** The last `lines` lines of a program's output, for error messages. */
export function tail(s: string, lines: number): string {
  return s.split('\n').slice(-lines).join('\n');
}

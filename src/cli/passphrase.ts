// Asking for a passphrase on the terminal, without echo, as podman asks for a sigstore key's ("Key Passphrase: ").
// The prompt goes to stderr: stdout carries the command's output.
import { CarrierError } from '../index.js';

/** Reads one line from the terminal on stdin with echo off. Ctrl-C cancels (ABORT_ERR); Ctrl-D ends the line. */
export function askPassphrase(prompt: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let typed: string[] = [];
    const finish = (err?: Error): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed.join(''));
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new CarrierError('ABORT_ERR', 'cancelled at the passphrase prompt'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed.push(ch);
      }
    };
    const onEnd = (): void => finish();
    // Echo goes off before the prompt shows: nothing typed after it is echoed.
    input.setRawMode(true);
    input.on('data', onData);
    input.once('end', onEnd);
    input.resume();
    process.stderr.write(prompt);
  });
}

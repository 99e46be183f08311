// The confirmation prune and reset ask for without -f, as podman asks: only "y" or "Y" goes ahead; anything else,
// or the end of input, is a no. Scripts pass -f.
import { createInterface } from 'node:readline';

/** Prints `prompt` and reads one line of standard input; true only for "y" or "Y". */
export async function confirm(prompt: string): Promise<boolean> {
  process.stdout.write(prompt);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    const line = await new Promise<string | undefined>((resolveLine) => {
      rl.once('line', (l) => resolveLine(l));
      rl.once('close', () => resolveLine(undefined));
    });
    return line !== undefined && /^[yY]$/.test(line.trim());
  } finally {
    rl.close();
    process.stdin.pause();
  }
}

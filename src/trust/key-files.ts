// The key files a signature requirement of policy.json names: `keyPath`, or `keyPaths` (containers-policy.json(5)).
import { readFile } from 'node:fs/promises';
import { SignatureRejected } from './payload.js';

/** The files `keyPath` or `keyPaths` name, in order (none when the requirement carries `keyData`). */
export function keyFiles(req: { keyPath?: string; keyPaths?: string[] }): string[] {
  return req.keyPath !== undefined ? [req.keyPath] : (req.keyPaths ?? []);
}

/**
 * Reads the key files the requirement names, one at a time (the caller parses each before the next is read); one that
 * cannot be read rejects the signature, naming `what` it is.
 */
export async function* readKeyFiles(req: { keyPath?: string; keyPaths?: string[] }, what: string): AsyncGenerator<{ file: string; data: Buffer }> {
  for (const file of keyFiles(req)) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      throw new SignatureRejected(`cannot read the ${what} file ${file} named by the policy: ${(err as Error).message}`);
    }
    yield { file, data };
  }
}

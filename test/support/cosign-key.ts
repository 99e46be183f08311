// cosign's encrypted private key file, written the way sigstore's cryptoutils writes it (go-securesystemslib's
// `encrypted` package): a PEM block whose bytes are JSON naming scrypt's parameters and salt and the secretbox nonce,
// with the secretbox (XSalsa20-Poly1305) of the key's PKCS#8 DER as the ciphertext. The tests make these files
// themselves: no cosign here, and Debian's skopeo is built without sigstore.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { secretboxSeal } from '../../src/trust/secretbox.js';

export interface CosignKeyOptions {
  /** The PEM type: cosign 2 writes ENCRYPTED SIGSTORE PRIVATE KEY, older cosign ENCRYPTED COSIGN PRIVATE KEY. */
  pemType?: 'ENCRYPTED SIGSTORE PRIVATE KEY' | 'ENCRYPTED COSIGN PRIVATE KEY';
  /** scrypt's N (cosign writes 2^16). */
  N?: number;
}

function scrypt(passphrase: string, salt: Buffer, N: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    crypto.scrypt(passphrase, salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** The document inside the PEM block: salt and nonce fresh, the key's PKCS#8 DER sealed under scrypt(passphrase). */
export async function encryptedKeyDocument(privateKey: crypto.KeyObject, passphrase: string, N = 65536): Promise<Record<string, unknown>> {
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const salt = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(24);
  const key = await scrypt(passphrase, salt, N);
  return {
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: secretboxSeal(der, nonce, key).toString('base64'),
  };
}

/** A PEM block as Go's encoding/pem writes one: base64 in lines of 64. */
export function pemBlock(type: string, bytes: Buffer): string {
  const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

export async function writeCosignKey(file: string, privateKey: crypto.KeyObject, passphrase: string, opts: CosignKeyOptions = {}): Promise<void> {
  const doc = await encryptedKeyDocument(privateKey, passphrase, opts.N);
  fs.writeFileSync(file, pemBlock(opts.pemType ?? 'ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(JSON.stringify(doc))), { mode: 0o600 });
}

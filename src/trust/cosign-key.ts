/**
 * cosign's encrypted private keys, as `podman push --sign-by-sigstore-private-key` and skopeo read them (through
 * sigstore's cryptoutils and go-securesystemslib's `encrypted` package). The PEM block is
 * `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign since 2.0, skopeo generate-sigstore-key) or `ENCRYPTED COSIGN PRIVATE KEY`
 * (older cosign); its bytes are a JSON document:
 *
 *   { "kdf":    { "name": "scrypt", "params": { "N": 65536, "r": 8, "p": 1 }, "salt": base64 (32 bytes) },
 *     "cipher": { "name": "nacl/secretbox", "nonce": base64 (24 bytes) },
 *     "ciphertext": base64 }
 *
 * The key is scrypt(passphrase, salt, N, r, p) of 32 bytes; the ciphertext is NaCl secretbox (XSalsa20-Poly1305,
 * tag first) of the private key's PKCS#8 DER. Only the scrypt parameters go-securesystemslib accepts are accepted
 * (N = 2^15, 2^16 or 2^17 with r = 8, p = 1), which also bounds the memory a hostile file can ask scrypt for.
 */
import { scrypt, type ScryptOptions } from 'node:crypto';
import { CarrierError } from '../errors.js';
import { SECRETBOX_NONCE_BYTES, secretboxOpen } from './secretbox.js';

export const ENCRYPTED_SIGSTORE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const ENCRYPTED_COSIGN_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

export interface EncryptedKeyParams {
  N: number;
  r: number;
  p: number;
}

/** go-securesystemslib's three parameter sets (legacy, standard — what cosign writes —, OWASP). */
export const ACCEPTED_SCRYPT_PARAMS: readonly EncryptedKeyParams[] = [32768, 65536, 131072].map((N) => ({ N, r: 8, p: 1 }));

/** scrypt on libuv's thread pool (never scryptSync on the event loop): 32 bytes, the secretbox key. */
function deriveKey(passphrase: Uint8Array, salt: Buffer, params: EncryptedKeyParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) => scrypt(passphrase, salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function bad(where: string, why: string): CarrierError {
  return new CarrierError('CARRIER_SIGNING_FAILED', `${where} is not a valid encrypted sigstore private key: ${why}`);
}

function base64Field(value: unknown, where: string, field: string): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw bad(where, `${field} is not base64`);
  return Buffer.from(value, 'base64');
}

/** The PEM block's type and bytes, or undefined when `pem` holds no PEM block. */
export function readPemBlock(pem: string): { type: string; bytes: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) return undefined;
  const body = m[2]!
    .split(/\r?\n/)
    .filter((line) => line.length > 0 && !line.includes(':'))
    .join('');
  return { type: m[1]!, bytes: Buffer.from(body, 'base64') };
}

/**
 * Decrypts the bytes of an `ENCRYPTED SIGSTORE PRIVATE KEY` block to the private key's PKCS#8 DER. A wrong
 * passphrase, like a tampered file, fails the secretbox tag: CARRIER_SIGNING_FAILED either way.
 */
export async function decryptSigstoreKey(encrypted: Buffer, passphrase: Uint8Array, where: string): Promise<Buffer> {
  let doc: { kdf?: { name?: unknown; params?: Record<string, unknown>; salt?: unknown }; cipher?: { name?: unknown; nonce?: unknown }; ciphertext?: unknown };
  try {
    doc = JSON.parse(encrypted.toString('utf8')) as typeof doc;
  } catch {
    throw bad(where, 'its contents are not JSON');
  }
  if (typeof doc !== 'object' || doc === null || typeof doc.kdf !== 'object' || typeof doc.cipher !== 'object') throw bad(where, 'no kdf or cipher');
  if (doc.kdf.name !== 'scrypt') throw bad(where, `key derivation ${JSON.stringify(doc.kdf.name)} is not supported (scrypt is)`);
  if (doc.cipher.name !== 'nacl/secretbox') throw bad(where, `cipher ${JSON.stringify(doc.cipher.name)} is not supported (nacl/secretbox is)`);
  const p = doc.kdf.params ?? {};
  const params = { N: p.N, r: p.r, p: p.p };
  const accepted = ACCEPTED_SCRYPT_PARAMS.find((a) => a.N === params.N && a.r === params.r && a.p === params.p);
  if (!accepted) throw bad(where, `unsupported scrypt parameters ${JSON.stringify(params)}`);
  const salt = base64Field(doc.kdf.salt, where, 'the salt');
  const nonce = base64Field(doc.cipher.nonce, where, 'the nonce');
  if (nonce.length !== SECRETBOX_NONCE_BYTES) throw bad(where, `the nonce is ${nonce.length} bytes, not ${SECRETBOX_NONCE_BYTES}`);
  const ciphertext = base64Field(doc.ciphertext, where, 'the ciphertext');
  const key = await deriveKey(passphrase, salt, accepted);
  const der = secretboxOpen(ciphertext, nonce, key);
  if (!der) throw new CarrierError('CARRIER_SIGNING_FAILED', `cannot decrypt the private key in ${where}: wrong passphrase, or the file was altered`);
  return der;
}

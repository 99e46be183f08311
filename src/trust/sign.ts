/**
 * Making signatures of a manifest, as `podman push --sign-by` and `--sign-by-sigstore-private-key` make them.
 *
 * Simple signing: the payload is signed by the `gpg` binary with the user's keyring (GNUPGHOME), exactly as
 * containers/image does it through gpgme — `gpg --sign` makes an OpenPGP *signed message* (not a detached
 * signature), the key's passphrase comes from gpg-agent or `--passphrase-file`. Using gpg keeps the secret key where
 * it is (no export of secret material into this process) and makes the very bytes podman makes.
 *
 * sigstore: the payload is signed with SHA-256 by a private key file (ECDSA, RSA PKCS#1 v1.5 or Ed25519), by
 * node:crypto. The key is cosign's own `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY` (scrypt and
 * NaCl secretbox, opened by cosign-key.ts) as podman takes it, or a PEM node:crypto reads (`PRIVATE KEY`,
 * `ENCRYPTED PRIVATE KEY` with the passphrase, `EC PRIVATE KEY`, `RSA PRIVATE KEY`).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { CarrierError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { ENCRYPTED_COSIGN_KEY_PEM, ENCRYPTED_SIGSTORE_KEY_PEM, decryptSigstoreKey, readPemBlock } from './cosign-key.js';
import { SIGSTORE_PAYLOAD_TYPE, SIMPLE_SIGNING_TYPE } from './payload.js';
import { SIGSTORE_SIGNATURE_ANNOTATION, SIGSTORE_SIGNATURE_MEDIA_TYPE, type UntrustedSignature } from './signatures.js';

/** Makes one signature of a manifest for a docker reference (`host/repo:tag` or `host/repo@digest`). */
export type ManifestSigner = (manifest: Buffer, dockerReference: string) => Promise<UntrustedSignature>;

/**
 * The payload both formats sign, as containers/image marshals it (Go maps: keys sorted): the manifest's digest, the
 * reference it is signed for, and who made it when.
 */
export function signaturePayload(type: string, manifestDigest: string, dockerReference: string, now = new Date()): Buffer {
  const critical = { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type };
  const optional = { creator: 'carrier', timestamp: Math.floor(now.getTime() / 1000) };
  return Buffer.from(JSON.stringify({ critical, optional }));
}

function identityOk(ref: string): void {
  if (!/[:@]/.test(ref.slice(ref.lastIndexOf('/') + 1))) {
    throw new CarrierError('CARRIER_INVALID_ARGUMENT', `reference ${ref} can't be signed, it has neither a tag nor a digest`);
  }
}

export interface GpgSignerOptions {
  /** The key's fingerprint or id, as gpg --local-user takes it. */
  keyId: string;
  /** A file holding the key's passphrase (podman --sign-passphrase-file). */
  passphraseFile?: string;
  /** The keyring's home (default: GNUPGHOME, else gpg's own default). */
  gnupgHome?: string;
  /** The gpg binary (default `gpg`). */
  gpg?: string;
}

/** Simple signing with gpg: `gpg --sign` of the payload, the signed message as gpgme returns it. */
export function gpgSigner(opts: GpgSignerOptions): ManifestSigner {
  return async (manifest, dockerReference) => {
    identityOk(dockerReference);
    const payload = signaturePayload(SIMPLE_SIGNING_TYPE, sha256Digest(manifest), dockerReference);
    const args = ['--batch', '--no-tty', '--yes', '--local-user', opts.keyId];
    if (opts.passphraseFile !== undefined) args.push('--pinentry-mode', 'loopback', '--passphrase-file', opts.passphraseFile);
    args.push('--sign', '--output', '-');
    const env = opts.gnupgHome !== undefined ? { ...process.env, GNUPGHOME: opts.gnupgHome } : process.env;
    const blob = await new Promise<Buffer>((resolve, reject) => {
      const child = execFile(opts.gpg ?? 'gpg', args, { env, encoding: 'buffer', maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        if (err) {
          const why = stderr.toString('utf8').trim() || (err as Error).message;
          reject(new CarrierError('CARRIER_SIGNING_FAILED', `signing with GPG key ${opts.keyId} failed: ${why}`, { cause: err }));
        } else resolve(stdout);
      });
      child.stdin?.end(payload);
    });
    if (blob.length === 0) throw new CarrierError('CARRIER_SIGNING_FAILED', `gpg made no signature with key ${opts.keyId}`);
    return { format: 'simple-signing', blob, from: `a signature by ${opts.keyId}` };
  };
}

/**
 * A passphrase file as podman and skopeo read `--sign-passphrase-file`: its first line, without the newline (as gpg
 * reads its own --passphrase-file).
 */
export async function readPassphraseFile(file: string): Promise<Buffer> {
  let text: Buffer;
  try {
    text = await readFile(file);
  } catch (err) {
    throw new CarrierError('CARRIER_SIGNING_FAILED', `reading the passphrase file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const nl = text.indexOf(0x0a);
  return nl === -1 ? text : text.subarray(0, nl);
}

export interface SigstoreSignerOptions {
  privateKeyFile: string;
  /**
   * The private key's passphrase (podman reads it from --sign-passphrase-file, else asks on the terminal). A cosign
   * key without one is tried with the empty passphrase, as podman does when nothing was typed.
   */
  passphrase?: Buffer;
}

async function loadPrivateKey(opts: SigstoreSignerOptions): Promise<KeyObject> {
  let pem: Buffer;
  try {
    pem = await readFile(opts.privateKeyFile);
  } catch (err) {
    throw new CarrierError('CARRIER_SIGNING_FAILED', `reading private key from ${opts.privateKeyFile}: ${(err as Error).message}`, { cause: err });
  }
  const block = readPemBlock(pem.toString('latin1'));
  if (block && (block.type === ENCRYPTED_SIGSTORE_KEY_PEM || block.type === ENCRYPTED_COSIGN_KEY_PEM)) {
    const der = await decryptSigstoreKey(block.bytes, opts.passphrase ?? Buffer.alloc(0), opts.privateKeyFile);
    try {
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } catch (err) {
      throw new CarrierError('CARRIER_SIGNING_FAILED', `the key decrypted from ${opts.privateKeyFile} is not a PKCS#8 private key: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    return createPrivateKey({ key: pem, ...(opts.passphrase !== undefined ? { passphrase: opts.passphrase } : {}) });
  } catch (err) {
    throw new CarrierError('CARRIER_SIGNING_FAILED', `cannot read the private key in ${opts.privateKeyFile}: ${(err as Error).message}`, { cause: err });
  }
}

const signAsync = promisify(sign);

/** sigstore signing with a private key file: the signature goes in the payload's annotation, base64. */
export function sigstoreSigner(opts: SigstoreSignerOptions): ManifestSigner {
  let key: Promise<KeyObject> | undefined;
  return async (manifest, dockerReference) => {
    identityOk(dockerReference);
    const k = await (key ??= loadPrivateKey(opts));
    const type = k.asymmetricKeyType;
    if (type !== 'ec' && type !== 'rsa' && type !== 'ed25519') {
      throw new CarrierError('CARRIER_UNSUPPORTED', `${opts.privateKeyFile} holds a ${type ?? 'unknown'} key; sigstore signing takes ECDSA, RSA or Ed25519`);
    }
    const payload = signaturePayload(SIGSTORE_PAYLOAD_TYPE, sha256Digest(manifest), dockerReference);
    const signature = (await signAsync(type === 'ed25519' ? null : 'sha256', payload, k)).toString('base64');
    return {
      format: 'sigstore',
      mediaType: SIGSTORE_SIGNATURE_MEDIA_TYPE,
      payload,
      annotations: { [SIGSTORE_SIGNATURE_ANNOTATION]: signature },
      from: `a signature by ${opts.privateKeyFile}`,
    };
  };
}

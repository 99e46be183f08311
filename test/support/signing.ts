// Signing keys made by the tests themselves: GPG keys in a private GNUPGHOME (gpg in batch mode), and sigstore key
// pairs in the encrypted format skopeo and cosign read ("ENCRYPTED COSIGN PRIVATE KEY": scrypt + NaCl secretbox
// around a PKCS#8 key), so that `skopeo copy --sign-by` and `--sign-by-sigstore-private-key` sign for real.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import nacl from 'tweetnacl';

export interface GpgKey {
  fingerprint: string;
  /** The public key, binary (`gpg --export`). */
  publicKeyFile: string;
  /** The public key, ASCII-armored. */
  armoredFile: string;
}

export class GpgHome {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, GNUPGHOME: this.dir, LC_ALL: 'C.UTF-8' };
  }

  gpg(args: string[]): Buffer {
    return execFileSync('gpg', ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** A new RSA signing key without a passphrase; its public half exported next to the home. */
  newKey(name: string): GpgKey {
    this.gpg(['--quick-gen-key', `${name} <${name}@carrier.test>`, 'rsa2048', 'sign', 'never']);
    const colons = this.gpg(['--with-colons', '--list-keys', `${name}@carrier.test`]).toString();
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)![1]!;
    const publicKeyFile = path.join(this.dir, '..', `${name}.gpg`);
    fs.writeFileSync(publicKeyFile, this.gpg(['--export', fingerprint]));
    const armoredFile = path.join(this.dir, '..', `${name}.asc`);
    fs.writeFileSync(armoredFile, this.gpg(['--armor', '--export', fingerprint]));
    return { fingerprint, publicKeyFile, armoredFile };
  }

  /** Stops the gpg-agent this home started. */
  close(): void {
    try {
      execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env: this.env, stdio: 'ignore' });
    } catch {
      /* no agent */
    }
  }
}

export interface SigstoreKey {
  privateKeyFile: string;
  passphraseFile: string;
  publicKeyFile: string;
  publicKeyPem: string;
}

/** An ECDSA P-256 key pair: the private key encrypted as cosign writes it, the public key as PEM (SPKI). */
export function newSigstoreKey(dir: string, name: string, passphrase = 'carrier-test'): SigstoreKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const salt = crypto.randomBytes(32);
  const params = { N: 32768, r: 8, p: 1 };
  const secret = crypto.scryptSync(passphrase, salt, 32, { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 });
  const nonce = crypto.randomBytes(24);
  const box = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(secret));
  const sealed = JSON.stringify({
    kdf: { name: 'scrypt', params, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(box).toString('base64'),
  });
  const b64 = Buffer.from(sealed).toString('base64').replace(/.{64}/g, '$&\n');
  const privateKeyFile = path.join(dir, `${name}.key`);
  fs.writeFileSync(privateKeyFile, `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n${b64}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n`.replace('\n\n', '\n'));
  const passphraseFile = path.join(dir, `${name}.pass`);
  fs.writeFileSync(passphraseFile, passphrase);
  const publicKeyPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const publicKeyFile = path.join(dir, `${name}.pub`);
  fs.writeFileSync(publicKeyFile, publicKeyPem);
  return { privateKeyFile, passphraseFile, publicKeyFile, publicKeyPem };
}

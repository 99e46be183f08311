// GPG signing keys made by the tests themselves, in a private GNUPGHOME (gpg in batch mode), so that
// `skopeo copy --sign-by` signs for real.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

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
    return this.exportKey(name, fingerprint);
  }

  /** A key whose primary key only certifies and whose subkey signs: gpg signs with the subkey. */
  newKeyWithSigningSubkey(name: string): GpgKey {
    this.gpg(['--quick-gen-key', `${name} <${name}@carrier.test>`, 'rsa2048', 'cert', 'never']);
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(this.gpg(['--with-colons', '--list-keys', `${name}@carrier.test`]).toString())![1]!;
    this.gpg(['--quick-add-key', fingerprint, 'rsa2048', 'sign', 'never']);
    return this.exportKey(name, fingerprint);
  }

  private exportKey(name: string, fingerprint: string): GpgKey {
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

// cosign's encrypted private keys and the NaCl secretbox under them. XSalsa20 and Poly1305 are written here from the
// specifications, so they are checked against published answers: NaCl's own test vectors (as libsodium keeps them in
// test/default/core1, core2, stream, stream3, onetimeauth and secretbox), and go-securesystemslib's encrypted-key
// vectors (scrypt + secretbox, made by the Go code cosign and podman use). Then a key file in the format, made here,
// signs as podman's --sign-by-sigstore-private-key would.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { hsalsa20, poly1305, secretboxOpen, secretboxSeal, xsalsa20Stream } from '../src/trust/secretbox.js';
import { decryptSigstoreKey } from '../src/trust/cosign-key.js';
import { readPassphraseFile, sigstoreSigner } from '../src/trust/index.js';
import { CarrierError } from '../src/errors.js';
import { encryptedKeyDocument, pemBlock, writeCosignKey } from './support/cosign-key.js';
import { tempDir } from './support/fixtures.js';
import { removeWorkDir } from './support/images.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// NaCl's test values ("Cryptography in NaCl", §§ 8–10; libsodium test/default).
const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
const firstkey = hex('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389');
const nonce = hex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37');
const message = hex(
  'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705',
);
const box = hex(
  'f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5',
);

describe('XSalsa20-Poly1305 against NaCl’s published answers', () => {
  it('HSalsa20 turns the shared secret into firstkey (core1), and firstkey with the nonce prefix into secondkey (core2)', () => {
    expect(hsalsa20(shared, Buffer.alloc(16)).toString('hex')).toBe(firstkey.toString('hex'));
    expect(hsalsa20(firstkey, nonce.subarray(0, 16)).toString('hex')).toBe('dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4');
  });

  it('the XSalsa20 stream starts with the Poly1305 key NaCl gives (stream3), and 4 MiB of it hash as NaCl’s do (stream)', () => {
    expect(xsalsa20Stream(firstkey, nonce, 32).toString('hex')).toBe('eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880');
    const sum = crypto.createHash('sha256').update(xsalsa20Stream(firstkey, nonce, 4 * 1024 * 1024)).digest('hex');
    expect(sum).toBe('662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2');
  });

  it('Poly1305 tags the 131-byte ciphertext, a partial last block included, as NaCl does (onetimeauth)', () => {
    const rs = hex('eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880');
    expect(poly1305(box.subarray(16), rs).toString('hex')).toBe('f3ffc7703f9400e52a7dfb4b3d3305d9');
  });

  it('secretbox seals NaCl’s message to NaCl’s box and opens it again; one flipped bit anywhere and it does not open', () => {
    expect(secretboxSeal(message, nonce, firstkey).toString('hex')).toBe(box.toString('hex'));
    expect(secretboxOpen(box, nonce, firstkey)?.toString('hex')).toBe(message.toString('hex'));
    for (const at of [0, 15, 16, box.length - 1]) {
      const bad = Buffer.from(box);
      bad[at]! ^= 1;
      expect(secretboxOpen(bad, nonce, firstkey), `bit flipped at ${at}`).toBeUndefined();
    }
    const otherNonce = Buffer.from(nonce);
    otherNonce[23]! ^= 1;
    expect(secretboxOpen(box, otherNonce, firstkey)).toBeUndefined();
    expect(secretboxOpen(box.subarray(0, 15), nonce, firstkey)).toBeUndefined();
  });

  it('round-trips every length around the 64-byte block and 16-byte tag boundaries', () => {
    const key = crypto.randomBytes(32);
    const n = crypto.randomBytes(24);
    for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000]) {
      const m = crypto.randomBytes(len);
      const sealed = secretboxSeal(m, n, key);
      expect(sealed.length).toBe(len + 16);
      expect(secretboxOpen(sealed, n, key)?.equals(m), `length ${len}`).toBe(true);
    }
  });
});

// go-securesystemslib's encrypted_test.go: "reallyimportant" under the passphrase "supersecret" — the first as its
// Decrypt test has it (the bytes themselves), the others, one per scrypt strength it writes, as its Unmarshal tests
// have them (the bytes as a JSON string, base64) — and one with parameters it refuses.
const securesystemslibVectors = [
  '{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}',
  '{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}',
  '{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}',
  '{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}',
];
const unsupportedParams =
  '{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}';

async function failure(p: Promise<unknown>): Promise<CarrierError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CarrierError);
  return err as CarrierError;
}

describe('cosign’s encrypted private key format', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir('trust-cosign-key');
  });
  afterAll(() => removeWorkDir(work));

  it('decrypts what go-securesystemslib encrypted, at every scrypt strength it writes', async () => {
    const [direct, ...marshalled] = securesystemslibVectors;
    expect((await decryptSigstoreKey(Buffer.from(direct!), Buffer.from('supersecret'), 'the vector')).toString()).toBe('reallyimportant');
    for (const v of marshalled) {
      const plain = await decryptSigstoreKey(Buffer.from(v), Buffer.from('supersecret'), 'the vector');
      expect(Buffer.from(JSON.parse(plain.toString()) as string, 'base64').toString()).toBe('reallyimportant');
    }
  });

  it('refuses scrypt parameters go-securesystemslib refuses, other ciphers and key derivations, and a wrong passphrase', async () => {
    expect((await failure(decryptSigstoreKey(Buffer.from(unsupportedParams), Buffer.from('supersecret'), 'k'))).message).toContain('unsupported scrypt parameters');
    const v = JSON.parse(securesystemslibVectors[0]!) as { kdf: { name: string }; cipher: { name: string } };
    const otherCipher = JSON.stringify({ ...v, cipher: { ...v.cipher, name: 'aes-gcm' } });
    expect((await failure(decryptSigstoreKey(Buffer.from(otherCipher), Buffer.from('supersecret'), 'k'))).message).toContain('cipher "aes-gcm" is not supported');
    const otherKdf = JSON.stringify({ ...v, kdf: { ...v.kdf, name: 'pbkdf2' } });
    expect((await failure(decryptSigstoreKey(Buffer.from(otherKdf), Buffer.from('supersecret'), 'k'))).message).toContain('key derivation "pbkdf2" is not supported');
    const wrong = await failure(decryptSigstoreKey(Buffer.from(securesystemslibVectors[0]!), Buffer.from('supersecreT'), 'k.key'));
    expect(wrong.code).toBe('CARRIER_SIGNING_FAILED');
    expect(wrong.message).toBe('cannot decrypt the private key in k.key: wrong passphrase, or the file was altered');
    expect((await failure(decryptSigstoreKey(Buffer.from('{"kdf":'), Buffer.from(''), 'k'))).message).toContain('not JSON');
  });

  it('signs with a key in either PEM type, and the signature verifies with the public key', async () => {
    for (const [type, pemType] of [
      ['ec', 'ENCRYPTED SIGSTORE PRIVATE KEY'],
      ['ed25519', 'ENCRYPTED COSIGN PRIVATE KEY'],
    ] as const) {
      const pair = type === 'ec' ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }) : crypto.generateKeyPairSync('ed25519');
      const file = path.join(work, `${type}.key`);
      await writeCosignKey(file, pair.privateKey, 'correct horse', { pemType });
      expect(fs.readFileSync(file, 'utf8')).toMatch(new RegExp(`^-----BEGIN ${pemType}-----\n`));
      const manifest = Buffer.from('{"schemaVersion":2}');
      const sig = await sigstoreSigner({ privateKeyFile: file, passphrase: Buffer.from('correct horse') })(manifest, 'registry.test/x/y:1');
      if (sig.format !== 'sigstore') throw new Error('not a sigstore signature');
      const signature = Buffer.from(sig.annotations['dev.cosignproject.cosign/signature']!, 'base64');
      expect(crypto.verify(type === 'ec' ? 'sha256' : null, sig.payload, pair.publicKey, signature)).toBe(true);
      const claims = JSON.parse(sig.payload.toString()) as { critical: { image: { 'docker-manifest-digest': string } } };
      expect(claims.critical.image['docker-manifest-digest']).toBe(`sha256:${crypto.createHash('sha256').update(manifest).digest('hex')}`);
    }
  });

  it('refuses a wrong passphrase, an altered file, and a decrypted key that is not PKCS#8, each naming the file', async () => {
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = path.join(work, 'refused.key');
    await writeCosignKey(file, pair.privateKey, 'correct horse');
    const sign = (f: string, passphrase: string): Promise<unknown> => sigstoreSigner({ privateKeyFile: f, passphrase: Buffer.from(passphrase) })(Buffer.from('{}'), 'registry.test/x/y:1');
    expect((await failure(sign(file, 'battery staple'))).message).toBe(`cannot decrypt the private key in ${file}: wrong passphrase, or the file was altered`);
    const doc = (await encryptedKeyDocument(pair.privateKey, 'correct horse')) as { ciphertext: string };
    const altered = Buffer.from(doc.ciphertext, 'base64');
    altered[40]! ^= 0x80;
    const alteredFile = path.join(work, 'altered.key');
    fs.writeFileSync(alteredFile, pemBlock('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(JSON.stringify({ ...doc, ciphertext: altered.toString('base64') }))));
    expect((await failure(sign(alteredFile, 'correct horse'))).message).toContain('wrong passphrase, or the file was altered');
    // go-securesystemslib's vector holds "reallyimportant", not a key.
    const notAKey = path.join(work, 'not-a-key.key');
    fs.writeFileSync(notAKey, pemBlock('ENCRYPTED COSIGN PRIVATE KEY', Buffer.from(securesystemslibVectors[2]!)));
    expect((await failure(sign(notAKey, 'supersecret'))).message).toMatch(new RegExp(`^the key decrypted from ${notAKey} is not a PKCS#8 private key`));
    // The empty passphrase is tried when none is given, as podman does when nothing was typed.
    const empty = path.join(work, 'empty.key');
    await writeCosignKey(empty, pair.privateKey, '');
    await expect(sigstoreSigner({ privateKeyFile: empty })(Buffer.from('{}'), 'registry.test/x/y:1')).resolves.toMatchObject({ format: 'sigstore' });
  });

  it('reads a passphrase file as podman does: its first line, without the newline', async () => {
    const f = path.join(work, 'pass');
    for (const [content, want] of [
      ['correct horse\n', 'correct horse'],
      ['correct horse', 'correct horse'],
      ['correct horse\nsecond line\n', 'correct horse'],
      [' spaced \n', ' spaced '],
      ['\n', ''],
    ] as const) {
      fs.writeFileSync(f, content);
      expect((await readPassphraseFile(f)).toString(), JSON.stringify(content)).toBe(want);
    }
  });
});

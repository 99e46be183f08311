/**
 * NaCl's secretbox (XSalsa20-Poly1305), which cosign's encrypted private keys use and node:crypto lacks (it has
 * ChaCha20-Poly1305, a different cipher). Written from the specifications: Salsa20 and HSalsa20/XSalsa20 as D. J.
 * Bernstein defines them ("Salsa20 specification", "Extending the Salsa20 nonce"), Poly1305 as in "The Poly1305-AES
 * message-authentication code" and RFC 8439 §2.5, and the box as "Cryptography in NaCl" §9: the first 32 bytes of the
 * XSalsa20 stream are the Poly1305 key, the message is XORed with the stream after them, and the box is the 16-byte
 * tag followed by the ciphertext. Checked against NaCl's published test vectors (test/trust-cosign-key.test.ts).
 *
 * Not constant-time beyond the tag comparison: it opens a private key on the machine that holds it.
 */
import { timingSafeEqual } from 'node:crypto';

export const SECRETBOX_KEY_BYTES = 32;
export const SECRETBOX_NONCE_BYTES = 24;
export const SECRETBOX_TAG_BYTES = 16;

/** "expand 32-byte k", the constant words of a 32-byte key. */
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const;

const rotl = (v: number, n: number): number => (v << n) | (v >>> (32 - n));

function quarterRound(x: Uint32Array, a: number, b: number, c: number, d: number): void {
  x[b] = x[b]! ^ rotl((x[a]! + x[d]!) | 0, 7);
  x[c] = x[c]! ^ rotl((x[b]! + x[a]!) | 0, 9);
  x[d] = x[d]! ^ rotl((x[c]! + x[b]!) | 0, 13);
  x[a] = x[a]! ^ rotl((x[d]! + x[c]!) | 0, 18);
}

/** Salsa20/20's ten double rounds (a column round, then a row round), in place. */
function doubleRounds(x: Uint32Array): void {
  for (let i = 0; i < 10; i++) {
    quarterRound(x, 0, 4, 8, 12);
    quarterRound(x, 5, 9, 13, 1);
    quarterRound(x, 10, 14, 2, 6);
    quarterRound(x, 15, 3, 7, 11);
    quarterRound(x, 0, 1, 2, 3);
    quarterRound(x, 5, 6, 7, 4);
    quarterRound(x, 10, 11, 8, 9);
    quarterRound(x, 15, 12, 13, 14);
  }
}

/** The 16-word input: the constants on the diagonal, the key around them, 16 bytes of input in the middle. */
function inputWords(key: Uint8Array, input: Uint8Array): Uint32Array {
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const n = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const x = new Uint32Array(16);
  x[0] = SIGMA[0];
  x[5] = SIGMA[1];
  x[10] = SIGMA[2];
  x[15] = SIGMA[3];
  for (let i = 0; i < 4; i++) {
    x[1 + i] = k.readUInt32LE(4 * i);
    x[11 + i] = k.readUInt32LE(16 + 4 * i);
    x[6 + i] = n.readUInt32LE(4 * i);
  }
  return x;
}

function checkLength(what: string, b: Uint8Array, want: number): void {
  if (b.length !== want) throw new RangeError(`${what} is ${b.length} bytes, not ${want}`);
}

/** HSalsa20: a 32-byte key and a 16-byte input to a 32-byte subkey (words 0, 5, 10, 15, 6, 7, 8, 9 of the rounds). */
export function hsalsa20(key: Uint8Array, input: Uint8Array): Buffer {
  checkLength('the key', key, 32);
  checkLength('the input', input, 16);
  const x = inputWords(key, input);
  doubleRounds(x);
  const out = Buffer.alloc(32);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => out.writeUInt32LE(x[w]!, 4 * i));
  return out;
}

/** `length` bytes of the XSalsa20 stream for a 32-byte key and a 24-byte nonce, from block `counter`. */
export function xsalsa20Stream(key: Uint8Array, nonce: Uint8Array, length: number, counter = 0): Buffer {
  checkLength('the nonce', nonce, 24);
  const subkey = hsalsa20(key, nonce.subarray(0, 16));
  const input = Buffer.alloc(16);
  Buffer.from(nonce.subarray(16, 24)).copy(input, 0);
  const out = Buffer.alloc(length);
  const block = Buffer.alloc(64);
  for (let offset = 0, n = counter; offset < length; offset += 64, n++) {
    input.writeUInt32LE(n >>> 0, 8);
    input.writeUInt32LE(Math.floor(n / 0x100000000) >>> 0, 12);
    const start = inputWords(subkey, input);
    const x = start.slice();
    doubleRounds(x);
    for (let i = 0; i < 16; i++) block.writeUInt32LE((x[i]! + start[i]!) >>> 0, 4 * i);
    block.copy(out, offset, 0, Math.min(64, length - offset));
  }
  return out;
}

const P1305 = (1n << 130n) - 5n;
const CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn;

function littleEndian(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

/** Poly1305 of `message` under a one-time 32-byte key (r, clamped, then s): the 16-byte tag. */
export function poly1305(message: Uint8Array, key: Uint8Array): Buffer {
  checkLength('the key', key, 32);
  const r = littleEndian(key.subarray(0, 16)) & CLAMP;
  const s = littleEndian(key.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const chunk = message.subarray(i, Math.min(i + 16, message.length));
    acc = ((acc + littleEndian(chunk) + (1n << BigInt(8 * chunk.length))) * r) % P1305;
  }
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return out;
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Seals `message`: the Poly1305 tag, then the ciphertext (NaCl's crypto_secretbox_easy layout, as Go's Seal). */
export function secretboxSeal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  checkLength('the key', key, SECRETBOX_KEY_BYTES);
  const stream = xsalsa20Stream(key, nonce, 32 + message.length);
  const ciphertext = xor(message, stream.subarray(32));
  return Buffer.concat([poly1305(ciphertext, stream.subarray(0, 32)), ciphertext]);
}

/** Opens a box made by {@link secretboxSeal}: the message, or undefined when the tag does not verify. */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer | undefined {
  checkLength('the key', key, SECRETBOX_KEY_BYTES);
  if (box.length < SECRETBOX_TAG_BYTES) return undefined;
  const ciphertext = box.subarray(SECRETBOX_TAG_BYTES);
  const stream = xsalsa20Stream(key, nonce, 32 + ciphertext.length);
  const tag = poly1305(ciphertext, stream.subarray(0, 32));
  if (!timingSafeEqual(tag, box.subarray(0, SECRETBOX_TAG_BYTES))) return undefined;
  return xor(ciphertext, stream.subarray(32));
}

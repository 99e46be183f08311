// Identifiers the containers/storage overlay layout uses.
import { createHash, randomBytes as cryptoRandomBytes } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

const HEX64 = /^[0-9a-f]{64}$/;

export function isFullId(s: string): boolean {
  return HEX64.test(s);
}

/** The storage id podman gives a pulled layer: the DiffID hex for a base layer, else sha256(parentID + "+" + diffIDhex). Not the OCI ChainID. */
export function layerIdFor(parentId: string | undefined, diffID: string): string {
  const hex = diffID.startsWith('sha256:') ? diffID.slice(7) : diffID;
  if (!HEX64.test(hex)) throw new Error(`not a sha256 diff id: ${diffID}`);
  if (parentId === undefined) return hex;
  return createHash('sha256').update(`${parentId}+${hex}`).digest('hex');
}

let pool: Buffer | undefined;
let used = 0;

/**
 * `n` bytes from the kernel's random source, as node:crypto's randomBytes gives them, without loading node:crypto:
 * a short command that only needs a container's ids paid ~4 ms for that module (issue 21). Read from /dev/urandom
 * (never blocks once the system has booted) 256 bytes at a time, each byte handed out once; node:crypto where the
 * device cannot be read.
 */
export function randomBytes(n: number): Buffer {
  if (pool === undefined || used + n > pool.length) {
    pool = Buffer.alloc(Math.max(256, n));
    used = 0;
    try {
      const fd = openSync('/dev/urandom', 'r');
      try {
        let got = 0;
        while (got < pool.length) {
          const r = readSync(fd, pool, got, pool.length - got, null);
          if (r <= 0) throw new Error('short read from /dev/urandom');
          got += r;
        }
      } finally {
        closeSync(fd);
      }
    } catch {
      pool = cryptoRandomBytes(pool.length);
    }
  }
  const out = Buffer.from(pool.subarray(used, used + n));
  pool.fill(0, used, used + n);
  used += n;
  return out;
}

/** 32 random bytes in hex: the id of a layer or container made locally. */
export function randomId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    // c/storage avoids ids that are all digits in their 12-char short form (they read as numbers)
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const LINK_ID = /^[A-Z2-7]{26}$/;

/** Whether `s` is a short link name as {@link linkId} makes them (and c/storage does): 26 characters of base32. */
export function isLinkId(s: string): boolean {
  return LINK_ID.test(s);
}

/** The short name of a layer in overlay/l/: 17 random bytes in base32, first 26 characters. */
export function linkId(): string {
  const bytes = randomBytes(17);
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.slice(0, 26);
}

/** File name of a big-data item: keys made only of [a-z0-9.] are their own names, others are "=" + base64 of the key. */
export function bigDataFileName(key: string): string {
  return /^[a-z0-9.]+$/.test(key) && key !== '.' && key !== '..' ? key : '=' + Buffer.from(key, 'utf8').toString('base64');
}

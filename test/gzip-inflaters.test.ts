/**
 * The two gzip inflaters of the native decoder: ISA-L's igzip (libisal.so.2, loaded at run time, the default where it
 * is installed) and zlib (the fallback), chosen with CARRIER_INFLATE. Both must give the same bytes for every valid
 * stream and the same error for every broken one, whatever the chunking of the input. Each inflater runs in a child
 * process of its own (test/support/inflate-child.mjs), since the addon reads CARRIER_INFLATE once per process.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const child = path.join(__dirname, 'support/inflate-child.mjs');

interface Outcome {
  name: string;
  chunk: number;
  inflater?: string;
  inflaterError?: { code: string; message: string };
  sha256?: string;
  bytes: number;
  code?: string;
  message?: string;
}

interface Case {
  name: string;
  data: Buffer;
  /** The bytes a correct decoder produces, or the error code it fails with. */
  want: Buffer | string;
  /** Corruption inside the deflate data: the two inflaters name the fault differently, so only the codes must agree. */
  deflateFault?: boolean;
}

function run(inflater: string | undefined, cases: { name: string; file: string; chunk: number }[]): Outcome[] {
  const env = { ...process.env };
  if (inflater === undefined) delete env.CARRIER_INFLATE;
  else env.CARRIER_INFLATE = inflater;
  const out = execFileSync(process.execPath, [child, JSON.stringify(cases)], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Outcome);
}

/** Data that deflates into dynamic, fixed and stored blocks: numbered text, then incompressible bytes, then text. */
function payload(size: number, seed: number): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  let x = seed;
  while (n < size) {
    const text = Buffer.from(Array.from({ length: 200 }, (_, i) => `line ${seed}.${n + i}: the quick brown fox\n`).join(''));
    const noise = Buffer.alloc(4096);
    for (let i = 0; i < noise.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      noise[i] = x >>> 24;
    }
    parts.push(text, noise);
    n += text.length + noise.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

/** A gzip member built by hand: FEXTRA, FNAME, FCOMMENT and FHCRC in its header (zlib.gzipSync writes none). */
function fullHeaderMember(data: Buffer, opts: { badHeaderCrc?: boolean } = {}): Buffer {
  const extra = Buffer.from('AB\x04\x00wxyz', 'latin1');
  const fixed = Buffer.from([0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 1, 2, 3, 4, 0, 3]);
  const xlen = Buffer.from([extra.length, 0]);
  const head = Buffer.concat([fixed, xlen, extra, Buffer.from('layer.tar\0comment\0', 'latin1')]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE((zlib.crc32(head) & 0xffff) ^ (opts.badHeaderCrc ? 1 : 0));
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([head, hcrc, zlib.deflateRawSync(data), trailer]);
}

const flip = (b: Buffer, at: number, mask = 0xa5, n = 1): Buffer => {
  const c = Buffer.from(b);
  for (let i = at; i < at + n; i++) c[i] = c[i]! ^ mask;
  return c;
};

let work: string;
const cases: Case[] = [];

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-inflaters-'));
  const a = payload(96 * 1024, 1);
  const b = payload(40 * 1024, 2);
  const big = payload(3 * 1024 * 1024 + 123, 3);
  const gzA = zlib.gzipSync(a);
  const gzB = zlib.gzipSync(b, { level: 1 });
  const add = (name: string, data: Buffer, want: Buffer | string, deflateFault = false): void => {
    cases.push({ name, data, want, deflateFault });
  };
  add('one member', gzA, a);
  add('one member, stored blocks (level 0)', zlib.gzipSync(b, { level: 0 }), b);
  add('one member, level 9', zlib.gzipSync(a, { level: 9 }), a);
  add('three members, the middle one empty', Buffer.concat([gzA, zlib.gzipSync(Buffer.alloc(0)), gzB]), Buffer.concat([a, b]));
  add('a header with FEXTRA, FNAME, FCOMMENT and FHCRC', fullHeaderMember(b), b);
  add('an empty stream of one empty member', zlib.gzipSync(Buffer.alloc(0)), Buffer.alloc(0));
  add('a 3 MiB member', zlib.gzipSync(big, { level: 6 }), big);
  add('trailing garbage of one byte (an unfinished header)', Buffer.concat([gzA, Buffer.from('x')]), 'CARRIER_TRUNCATED');
  add('trailing garbage of five bytes', Buffer.concat([gzA, Buffer.from('abcde')]), 'CARRIER_BAD_COMPRESSION');
  add('trailing zeros', Buffer.concat([gzA, Buffer.alloc(12)]), 'CARRIER_BAD_COMPRESSION');
  add('trailing gzip magic alone', Buffer.concat([gzA, Buffer.from([0x1f, 0x8b])]), 'CARRIER_TRUNCATED');
  add('a second member with an unknown method', Buffer.concat([gzA, flip(gzB, 2, 0x0f)]), 'CARRIER_BAD_COMPRESSION');
  add('reserved header flags', flip(gzA, 3, 0x20), 'CARRIER_BAD_COMPRESSION');
  add('a header CRC that does not match', fullHeaderMember(b, { badHeaderCrc: true }), 'CARRIER_BAD_COMPRESSION');
  add('a wrong CRC-32 in the trailer', flip(gzA, gzA.length - 8, 0x01), 'CARRIER_BAD_COMPRESSION');
  add('a wrong ISIZE in the trailer', flip(gzA, gzA.length - 4, 0x01), 'CARRIER_BAD_COMPRESSION');
  add('a wrong CRC-32 in the first of two members', Buffer.concat([flip(gzA, gzA.length - 5, 0x80), gzB]), 'CARRIER_BAD_COMPRESSION');
  add('a wrong ISIZE in the last of two members', Buffer.concat([gzA, flip(gzB, gzB.length - 1, 0x40)]), 'CARRIER_BAD_COMPRESSION');
  for (const cut of [1, 3, 9, 10, 11, Math.floor(gzA.length / 2), gzA.length - 8, gzA.length - 3, gzA.length - 1]) {
    add(`cut short after ${cut} bytes`, gzA.subarray(0, cut), 'CARRIER_TRUNCATED');
  }
  add('cut short in the second member', Buffer.concat([gzA, gzB.subarray(0, 200)]), 'CARRIER_TRUNCATED');
  add('16 bytes flipped in the middle of the deflate data', flip(gzA, Math.floor(gzA.length / 2), 0xa5, 16), 'CARRIER_BAD_COMPRESSION', true);
  for (const at of [10, 11, 12, 14, 20]) {
    add(`a bit flipped in the first deflate block header (byte ${at})`, flip(gzA, at, 0x10), 'CARRIER_BAD_COMPRESSION', true);
  }
  cases.forEach((c, i) => fs.writeFileSync(path.join(work, `${i}.gz`), c.data));
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Every case at a few chunk sizes: a byte at a time (small inputs only), an odd size, and 64 KiB. */
function plan(): { name: string; file: string; chunk: number }[] {
  return cases.flatMap((c, i) =>
    [1, 13, 65536]
      .filter((chunk) => chunk > 1 || c.data.length < 64 * 1024)
      .map((chunk) => ({ name: c.name, file: path.join(work, `${i}.gz`), chunk })),
  );
}

describe('the gzip inflaters', { timeout: 120_000 }, () => {
  it('use igzip by default where libisal.so.2 is installed, and zlib under CARRIER_INFLATE=zlib', () => {
    const one = [{ name: 'x', file: path.join(work, '0.gz'), chunk: 65536 }];
    const [auto] = run(undefined, one);
    expect(auto!.inflaterError, "igzip cannot be loaded: install Debian's libisal2 (apt-get install libisal2; .ci/run installs it)").toBeUndefined();
    expect(auto!.inflater).toBe('isal');
    expect(run('zlib', one)[0]!.inflater).toBe('zlib');
  });

  it('refuse an unknown CARRIER_INFLATE value when a gzip stream starts (CARRIER_INVALID_CONFIG)', () => {
    const out = run('fastest', [{ name: 'x', file: path.join(work, '0.gz'), chunk: 65536 }]);
    expect(out.find((o) => o.name === 'x')!.code).toBe('CARRIER_INVALID_CONFIG');
  });

  it('give the same bytes and the same errors as each other, and the right ones, at every chunking', () => {
    const todo = plan();
    const isal = run('isal', todo);
    const zl = run('zlib', todo);
    expect(isal[0]!.inflaterError, "CARRIER_INFLATE=isal cannot load igzip: install Debian's libisal2 (apt-get install libisal2; .ci/run installs it)").toBeUndefined();
    expect(isal.every((o) => o.inflater === 'isal')).toBe(true);
    expect(zl.every((o) => o.inflater === 'zlib')).toBe(true);
    const mismatches: string[] = [];
    todo.forEach((t, i) => {
      const c = cases.find((x) => x.name === t.name)!;
      const [x, z] = [isal[i]!, zl[i]!];
      const label = `${t.name} (chunks of ${t.chunk})`;
      const want = typeof c.want === 'string'
        ? { code: c.want }
        : { sha256: createHash('sha256').update(c.want).digest('hex'), bytes: c.want.length };
      for (const [who, o] of [['isal', x], ['zlib', z]] as const) {
        const got = typeof c.want === 'string' ? { code: o.code } : { sha256: o.sha256, bytes: o.bytes, code: o.code };
        const expected = typeof c.want === 'string' ? want : { ...want, code: undefined };
        if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches.push(`${label}: ${who} gave ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
      }
      if (c.deflateFault) {
        if (!/^corrupt gzip stream: /.test(x.message ?? '')) mismatches.push(`${label}: isal's message ${x.message}`);
      } else if (x.message !== z.message) {
        mismatches.push(`${label}: isal says ${JSON.stringify(x.message)}, zlib ${JSON.stringify(z.message)}`);
      }
    });
    expect(mismatches).toEqual([]);
  });
});

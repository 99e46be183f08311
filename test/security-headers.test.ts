/**
 * Hostile layers, part 3: the tar parser itself.
 * SECURITY.md classes: header smuggling (PAX size vs GNU 'L', NUL in PAX strings, negative sizes, bad checksums,
 * non-numeric sizes), huge headers (100 MiB PAX record, 10k-deep path), bombs (10 GiB of zeros in ~10 MiB of gzip).
 *
 * Every test: (1) the apply rejects with the stated code, or resolves with the entry neutralised inside the layer;
 * (2) nothing outside the layer root changed (checked by `attack`); (3) on rejection the layer dir is empty.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it, expect } from 'vitest';
import {
  attack,
  base256,
  BLOCK,
  countingGzipStream,
  dir,
  END,
  entry,
  expectApplied,
  expectContained,
  expectRefused,
  file,
  gnuLong,
  gz,
  header,
  pax,
  paxData,
  parents,
  readIn,
  sandboxed,
  tar,
  tree,
  writeGzipMembers,
  writeZstdFrames,
  symlink,
  type Sandbox,
  T,
  MODES,
  PAYLOAD,
  up,
} from './support/hostile.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BAD = 'CARRIER_BAD_TAR';
const LIMIT = 'CARRIER_LIMIT_EXCEEDED';


// ---------------------------------------------------------------------------------------------------------------
describe('header smuggling: a PAX size applies to the next real entry only', () => {
  /**
   * PAX {size=1024}, GNU 'L' "innocent.txt" (13 bytes of data, one block), then the real file header (size 1024)
   * whose content begins with a crafted tar header. A parser that applies the PAX size to the 'L' header swallows
   * the real header as long-name data and then parses the crafted header from the file's content.
   */
  const smuggle = (inner: Buffer): { bytes: Buffer; content: Buffer } => {
    const content = Buffer.concat([inner, Buffer.alloc(BLOCK, 0x41)]);
    const bytes = tar(pax([['size', String(content.length)]]), gnuLong('L', 'innocent.txt'), entry({ name: 'placeholder', size: content.length }, content));
    return { bytes, content };
  };

  for (const m of MODES) {
    it(
      `does not let a PAX size swallow the header after a GNU long name (${m.label})`,
      sandboxed(async (sb) => {
        const { bytes, content } = smuggle(header({ name: `smuggled-${sb.token}`, size: BLOCK }));
        const o = await attack(sb, bytes, { rootless: m.rootless });
        const r = expectApplied(o);
        expect(tree(sb.layer)).toEqual(['innocent.txt']);
        expect(fs.readFileSync(path.join(sb.layer, 'innocent.txt')).equals(content)).toBe(true);
        expect(r.entries).toBe(1);
      }),
      T,
    );
  }

  it(
    'does not smuggle a ../victim/passwd header through a PAX size on a GNU long name',
    sandboxed(async (sb) => {
      const { bytes, content } = smuggle(header({ name: up(sb), size: BLOCK }));
      const o = await attack(sb, bytes, { rootless: true });
      expectApplied(o);
      expect(tree(sb.layer)).toEqual(['innocent.txt']);
      expect(fs.readFileSync(path.join(sb.layer, 'innocent.txt')).equals(content)).toBe(true);
    }),
    T,
  );

  it(
    'does not smuggle a hardlink-to-victim header through a PAX size on a GNU long name (gzip stream)',
    sandboxed(async (sb) => {
      const { bytes, content } = smuggle(header({ name: 'h', typeflag: '1', linkname: up(sb), size: 0 }));
      const o = await attack(sb, { stream: () => Readable.from([gz(bytes)]) }, { rootless: false });
      expectApplied(o);
      expect(tree(sb.layer)).toEqual(['innocent.txt']);
      expect(fs.readFileSync(path.join(sb.layer, 'innocent.txt')).equals(content)).toBe(true);
    }),
    T,
  );
});

/**
 * Parser differentials. A layer id is derived from the DiffID alone, and Carrier shares stores with podman, whose
 * extractor is Go's archive/tar. If the two read the same bytes as different files, the "same" layer has different
 * content depending on who pulled it (and a Go-based scanner sees something other than what Carrier writes).
 * These expect Carrier either to refuse the ambiguous shape (CARRIER_BAD_TAR) or to read it exactly as Go does.
 */
describe("parser differentials with Go's archive/tar (podman)", () => {
  it(
    'reads a PAX path plus a GNU long name on one entry as Go does (GNU name wins) or refuses it',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax([['path', 'pax-name']]), gnuLong('L', 'gnu-name'), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), {
        rootless: true,
      });
      if (o.ok) expect(tree(sb.layer), 'Go archive/tar names this entry gnu-name').toEqual(['gnu-name']);
      else expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'reads a PAX linkpath plus a GNU long link name on one symlink as Go does (GNU target wins) or refuses it',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax([['linkpath', 'pax-target']]), gnuLong('K', 'gnu-target'), entry({ name: 'l', typeflag: '2', linkname: 'x' })), {
        rootless: true,
      });
      if (o.ok) expect(fs.readlinkSync(path.join(sb.layer, 'l')), 'Go archive/tar links l to gnu-target').toBe('gnu-target');
      else expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'reads two PAX headers in a row as Go does (the second replaces the first) or refuses them',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax([['path', 'from-first-pax']]), pax([['comment', 'second']]), entry({ name: 'plain' }, Buffer.from(PAYLOAD))), {
        rootless: true,
      });
      if (o.ok) expect(tree(sb.layer), 'Go archive/tar names this entry plain').toEqual(['plain']);
      else expectRefused(sb, o, BAD);
    }),
    T,
  );
});

describe('entries hidden after a single zero block', () => {
  it(
    'never applies an entry that follows a lone zero block (refused, or ignored as end-of-archive padding)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('visible', 'x'), Buffer.alloc(BLOCK), file('hidden', PAYLOAD), symlink('evil', sb.victim)), {
        rootless: true,
      });
      expectContained(sb, o, () => expect(tree(sb.layer)).toEqual(['visible']));
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('NUL inside PAX strings', () => {
  for (const m of MODES) {
    it(
      `refuses a PAX path with an embedded NUL (innocent\\0../victim/passwd) (${m.label})`,
      sandboxed(async (sb) => {
        const p = Buffer.concat([Buffer.from('innocent'), Buffer.from([0]), Buffer.from(up(sb))]);
        const o = await attack(sb, tar(pax([['path', p]]), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), { rootless: m.rootless });
        expectRefused(sb, o, BAD);
      }),
      T,
    );
  }

  it(
    'refuses a PAX path that starts with NUL',
    sandboxed(async (sb) => {
      const p = Buffer.concat([Buffer.from([0]), Buffer.from('evil')]);
      const o = await attack(sb, tar(file('ok', 'fine'), pax([['path', p]]), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), {
        rootless: true,
      });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX symlink linkpath with an embedded NUL',
    sandboxed(async (sb) => {
      const lp = Buffer.concat([Buffer.from('harmless'), Buffer.from([0]), Buffer.from(sb.victim)]);
      const o = await attack(sb, tar(pax([['linkpath', lp]]), entry({ name: 'l', typeflag: '2', linkname: 'x' })), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX hardlink linkpath with an embedded NUL',
    sandboxed(async (sb) => {
      const lp = Buffer.concat([Buffer.from('f'), Buffer.from([0]), Buffer.from(up(sb))]);
      const o = await attack(sb, tar(file('f', 'x'), pax([['linkpath', lp]]), entry({ name: 'h', typeflag: '1', linkname: 'f' })), {
        rootless: false,
      });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX path with an embedded NUL in a gzip layer',
    sandboxed(async (sb) => {
      const p = Buffer.concat([Buffer.from('a'), Buffer.from([0]), Buffer.from('b')]);
      const o = await attack(sb, gz(tar(pax([['path', p]]), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD)))), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'never creates the part after a NUL in a GNU long name (refused, or cut at the NUL)',
    sandboxed(async (sb) => {
      const p = Buffer.concat([Buffer.from('innocent'), Buffer.from([0]), Buffer.from(up(sb))]);
      const o = await attack(sb, tar(gnuLong('L', p), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), { rootless: true });
      expectContained(sb, o, () => {
        expect(tree(sb.layer)).toEqual(['innocent']);
        expect(readIn(sb, 'innocent')).toBe(PAYLOAD);
      });
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('negative and overflowing sizes', () => {
  for (const m of MODES) {
    it(
      `refuses a file with a negative base-256 size (-512) (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(
          sb,
          Buffer.concat([header({ name: 'neg', size: base256(-512, 12) }), Buffer.alloc(BLOCK, 0x41), file('after', 'x'), END]),
          { rootless: m.rootless },
        );
        expectRefused(sb, o, BAD);
      }),
      T,
    );
  }

  it(
    'refuses a file with a base-256 size of -1',
    sandboxed(async (sb) => {
      const o = await attack(sb, Buffer.concat([file('ok', 'fine'), header({ name: 'neg', size: base256(-1, 12) }), END]), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX header with a negative size',
    sandboxed(async (sb) => {
      const data = paxData([['path', 'x']]);
      const o = await attack(
        sb,
        Buffer.concat([header({ name: 'PaxHeaders.0/x', typeflag: 'x', size: base256(-BLOCK, 12) }), data, Buffer.alloc(BLOCK - data.length), file('y', 'z'), END]),
        { rootless: true },
      );
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a GNU long-name header with a negative size',
    sandboxed(async (sb) => {
      const o = await attack(
        sb,
        Buffer.concat([header({ name: '././@LongLink', typeflag: 'L', size: base256(-BLOCK, 12) }), Buffer.alloc(BLOCK, 0x61), file('y', 'z'), END]),
        { rootless: true },
      );
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX size record of -1',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax([['size', '-1']]), entry({ name: 'neg', size: 0 })), { rootless: false });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a base-256 size of 2^88',
    sandboxed(async (sb) => {
      const o = await attack(sb, Buffer.concat([header({ name: 'huge', size: base256(2n ** 88n, 12) }), Buffer.alloc(4 * BLOCK)]), { rootless: true });
      expectRefused(sb, o, [BAD, LIMIT]);
    }),
    T,
  );

  it(
    'refuses a base-256 size of 2^63',
    sandboxed(async (sb) => {
      const o = await attack(sb, Buffer.concat([header({ name: 'huge', size: base256(2n ** 63n, 12) }), Buffer.alloc(4 * BLOCK)]), { rootless: true });
      expectRefused(sb, o, [BAD, LIMIT]);
    }),
    T,
  );

  it(
    'refuses a PAX size record that overflows 64 bits',
    sandboxed(async (sb) => {
      const o = await attack(sb, Buffer.concat([pax([['size', '99999999999999999999999']]), header({ name: 'huge', size: 0 }), Buffer.alloc(4 * BLOCK)]), {
        rootless: true,
      });
      expectRefused(sb, o, [BAD, LIMIT]);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('checksums and numeric fields', () => {
  it(
    'refuses a header whose checksum is off by one',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(entry({ name: 'f', checksumDelta: 1 }, Buffer.from(PAYLOAD))), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a header whose checksum field is not octal',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(entry({ name: 'f', checksum: Buffer.from('zzzzzz\x00 ', 'latin1') }, Buffer.from(PAYLOAD))), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a header whose checksum field is all NUL',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(entry({ name: 'f', checksum: Buffer.alloc(8) }, Buffer.from(PAYLOAD))), { rootless: false });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a bad checksum on a later entry and removes the entries already written',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('d/'), file('d/ok', 'fine'), entry({ name: 'bad', checksumDelta: -7 }, Buffer.from(PAYLOAD))), {
        rootless: true,
      });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX header with a bad checksum',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax([['path', up(sb)]], { checksumDelta: 3 }), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), {
        rootless: true,
      });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a GNU long-name header with a bad checksum',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(gnuLong('L', 'long-name', { checksumDelta: 1 }), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), {
        rootless: true,
      });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a size field with a trailing non-digit (0000000001x)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(entry({ name: 'f', size: Buffer.from('0000000001x\x00', 'latin1') }, Buffer.from('x'))), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a size field that is text (hello)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('ok', 'fine'), entry({ name: 'f', size: Buffer.from('hello\x00', 'latin1') }, Buffer.from('x'))), {
        rootless: false,
      });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX size record that is not a number (12abc)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax([['size', '12abc']]), entry({ name: 'f', size: 12 }, Buffer.from('123456789012'))), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses a PAX record whose length runs past the header data',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(pax(Buffer.from('999 path=x\n')), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), { rootless: true });
      expectRefused(sb, o, BAD);
    }),
    T,
  );

  it(
    'refuses an archive that ends inside a file and removes the partial file',
    sandboxed(async (sb) => {
      const o = await attack(sb, Buffer.concat([file('ok', 'fine'), header({ name: 'big', size: MiB }), Buffer.alloc(8 * BLOCK, 0x41)]), {
        rootless: true,
      });
      expectRefused(sb, o, ['CARRIER_TRUNCATED', BAD]);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('huge headers', () => {
  /** Parts of a tar whose PAX header carries one `path` record of exactly `total` bytes, then a small file. */
  const hugePaxParts = (total: number, type: 'x' | 'g' = 'x'): { head: Buffer; fill: number; tail: Buffer } => {
    const lead = Buffer.from(`${total} path=`);
    const fill = total - lead.length - 1;
    const head = Buffer.concat([header({ name: 'PaxHeaders.0/huge', typeflag: type, size: total }), lead]);
    const tail = Buffer.concat([Buffer.from('\n'), Buffer.alloc((BLOCK - (total % BLOCK)) % BLOCK), file('after', 'x'), END]);
    return { head, fill, tail };
  };

  it(
    'refuses a 100 MiB PAX record (gzip) quickly',
    sandboxed(async (sb) => {
      const { head, fill, tail } = hugePaxParts(100 * MiB);
      const src = path.join(sb.src, 'huge-pax.tar.gz');
      const size = writeGzipMembers(src, [head, { fill: 0x61, length: fill, chunk: 4 * MiB }, tail]);
      expect(size).toBeLessThan(2 * MiB);
      const o = await attack(sb, { path: src }, { rootless: true });
      expectRefused(sb, o, LIMIT);
    }),
    30_000,
  );

  it(
    'refuses a 100 MiB PAX record (plain tar)',
    sandboxed(async (sb) => {
      const { head, fill, tail } = hugePaxParts(100 * MiB);
      const src = path.join(sb.src, 'huge-pax.tar');
      fs.writeFileSync(src, Buffer.concat([head, Buffer.alloc(fill, 0x61), tail]));
      const o = await attack(sb, { path: src }, { rootless: false });
      expectRefused(sb, o, LIMIT);
    }),
    30_000,
  );

  it(
    'refuses a PAX header just over 1 MiB',
    sandboxed(async (sb) => {
      const { head, fill, tail } = hugePaxParts(MiB + BLOCK);
      const o = await attack(sb, Buffer.concat([head, Buffer.alloc(fill, 0x61), tail]), { rootless: true });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'refuses a 2 MiB PAX global header',
    sandboxed(async (sb) => {
      const { head, fill, tail } = hugePaxParts(2 * MiB, 'g');
      const o = await attack(sb, Buffer.concat([head, Buffer.alloc(fill, 0x61), tail]), { rootless: true });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'refuses a 2 MiB GNU long name',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(gnuLong('L', 'a'.repeat(2 * MiB)), entry({ name: 'placeholder' }, Buffer.from(PAYLOAD))), { rootless: true });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'refuses a 2 MiB GNU long link name',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(gnuLong('K', 'a'.repeat(2 * MiB)), entry({ name: 'l', typeflag: '2', linkname: 'placeholder' })), {
        rootless: false,
      });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'accepts a 900 KiB PAX header (control: the limit is not "no PAX at all")',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('ok', PAYLOAD, { paxExtra: [['comment', 'c'.repeat(900 * 1024)]] })), { rootless: true });
      expectApplied(o);
      expect(readIn(sb, 'ok')).toBe(PAYLOAD);
    }),
    T,
  );

  it(
    'refuses a 10,000-component path (PAX)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('a/'.repeat(9999) + 'x', PAYLOAD, { spelling: 'pax' })), { rootless: true });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'refuses a 10,000-component path (GNU long name)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('b/'.repeat(9999) + 'x', PAYLOAD, { spelling: 'gnu' })), { rootless: false });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'refuses a path of 1025 components even when every parent exists',
    sandboxed(async (sb) => {
      const p = 'd/'.repeat(1024) + 'x';
      const o = await attack(sb, tar(parents(p, { spelling: 'pax' }), file(p, PAYLOAD, { spelling: 'pax' })), { rootless: true });
      expectRefused(sb, o, LIMIT);
    }),
    30_000,
  );

  it(
    'accepts a path of exactly 1024 components (control)',
    sandboxed(async (sb) => {
      const p = 'd/'.repeat(1023) + 'x';
      const o = await attack(sb, tar(parents(p, { spelling: 'pax' }), file(p, PAYLOAD, { spelling: 'pax' })), { rootless: true });
      expectApplied(o);
      expect(readIn(sb, p)).toBe(PAYLOAD);
    }),
    30_000,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('bombs', () => {
  const TEN_GIB = 10 * GiB;

  it(
    'refuses 10 GiB of zeros in ~10 MiB of gzip with maxUncompressedBytes 1 GiB, quickly',
    sandboxed(async (sb) => {
      const head = Buffer.concat([pax([['size', String(TEN_GIB)]]), header({ name: 'bomb', size: 0 })]);
      const src = path.join(sb.src, 'bomb.tar.gz');
      const size = writeGzipMembers(src, [head, { fill: 0, length: TEN_GIB + 2 * BLOCK }]);
      expect(size).toBeLessThan(16 * MiB);
      const o = await attack(sb, { path: src }, { rootless: true, limits: { maxUncompressedBytes: GiB } });
      expectRefused(sb, o, LIMIT);
    }),
    90_000,
  );

  it(
    'stops reading a streamed 40 GiB gzip bomb (base-256 size) at the limit',
    sandboxed(async (sb) => {
      // 40 GiB (~41 MiB of gzip) so that the engine's bounded input queue (a few MiB) is small next to the whole.
      const head = header({ name: 'bomb', size: base256(4 * TEN_GIB, 12) });
      const s = countingGzipStream([head, { fill: 0, length: 4 * TEN_GIB + 2 * BLOCK }]);
      const o = await attack(sb, { stream: () => s.stream }, { rootless: false, limits: { maxUncompressedBytes: 256 * MiB } });
      expectRefused(sb, o, LIMIT);
      expect(s.pulled()).toBeLessThan(s.total() / 2);
    }),
    60_000,
  );

  it(
    'refuses a 10 GiB plain (sparse) tar with maxUncompressedBytes 256 MiB',
    sandboxed(async (sb) => {
      const src = path.join(sb.src, 'bomb.tar');
      const fd = fs.openSync(src, 'w');
      try {
        fs.writeSync(fd, Buffer.concat([pax([['size', String(TEN_GIB)]]), header({ name: 'bomb', size: 0 })]));
        fs.ftruncateSync(fd, 3 * BLOCK + TEN_GIB + 2 * BLOCK);
      } finally {
        fs.closeSync(fd);
      }
      const o = await attack(sb, { path: src }, { rootless: true, compression: 'none', limits: { maxUncompressedBytes: 256 * MiB } });
      expectRefused(sb, o, LIMIT);
    }),
    60_000,
  );

  it(
    'refuses 10 GiB of zeros in ~330 KiB of concatenated zstd frames with maxUncompressedBytes 1 GiB',
    sandboxed(async (sb) => {
      const head = Buffer.concat([pax([['size', String(TEN_GIB)]]), header({ name: 'bomb', size: 0 })]);
      const src = path.join(sb.src, 'bomb.tar.zst');
      const size = writeZstdFrames(src, [head, { fill: 0, length: TEN_GIB + 2 * BLOCK }]);
      expect(size).toBeLessThan(MiB);
      const o = await attack(sb, { path: src }, { rootless: false, limits: { maxUncompressedBytes: GiB } });
      expectRefused(sb, o, LIMIT);
    }),
    90_000,
  );

  it(
    'refuses many small files that together exceed maxUncompressedBytes',
    sandboxed(async (sb) => {
      const chunk = Buffer.alloc(512 * 1024, 0x7a);
      const o = await attack(sb, gz(tar(file('a', chunk), file('b', chunk), file('c', chunk), file('d', chunk))), {
        rootless: true,
        limits: { maxUncompressedBytes: MiB },
      });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );

  it(
    'refuses an entry-count bomb over maxEntries',
    sandboxed(async (sb) => {
      const parts: Buffer[] = [];
      for (let i = 0; i < 300; i++) parts.push(file(`f${i}`));
      const o = await attack(sb, gz(tar(...parts)), { rootless: true, limits: { maxEntries: 100 } });
      expectRefused(sb, o, LIMIT);
    }),
    T,
  );
});

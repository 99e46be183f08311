// zstd:chunked written by Carrier: any zstd reader gets the tar back; every regular file's content is a frame of its
// own at the offsets the TOC gives, hashing to the TOC's digest; the annotations locate the TOC and tar-split.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it, expect, afterAll } from 'vitest';
import { compressChunked } from '../src/chunked/compress.js';
import { chunkedLocation } from '../src/chunked/annotations.js';
import { tempDir, prng } from './support/fixtures.js';

const work = tempDir('chunked-compress');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function zstdDecompress(b: Buffer): Buffer {
  return execFileSync('zstd', ['-dc'], { input: b, maxBuffer: 1 << 30 });
}

describe('compressChunked', () => {
  it('writes a zstd stream of the same tar whose TOC locates each file in a frame of its own', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'hello\n');
    fs.writeFileSync(path.join(src, 'd', 'big'), prng(300_000, 'chunked-big'));
    fs.writeFileSync(path.join(src, 'empty'), '');
    fs.symlinkSync('a.txt', path.join(src, 'l'));
    const tar = execFileSync('tar', ['-cf', '-', '-C', src, '.'], { maxBuffer: 1 << 30 });
    const { stream, result } = compressChunked(Readable.from([tar]));
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    const blob = Buffer.concat(chunks);
    const r = await result;
    expect(zstdDecompress(blob).equals(tar)).toBe(true);
    expect(r.diffID).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    expect(r.digest).toBe(`sha256:${createHash('sha256').update(blob).digest('hex')}`);
    expect(r.size).toBe(blob.length);
    const loc = chunkedLocation(r.annotations, blob.length, r.digest)!;
    const ctoc = blob.subarray(loc.toc.offset, loc.toc.offset + loc.toc.length);
    expect(`sha256:${createHash('sha256').update(ctoc).digest('hex')}`).toBe(loc.tocDigest);
    const toc = JSON.parse(zstdDecompress(ctoc).toString()) as { version: number; entries: { type: string; name: string; size?: number; digest?: string; offset?: number; endOffset?: number; linkName?: string }[]; tarSplitDigest: string };
    expect(toc.version).toBe(1);
    const split = blob.subarray(loc.tarSplit!.offset, loc.tarSplit!.offset + loc.tarSplit!.length);
    expect(`sha256:${createHash('sha256').update(split).digest('hex')}`).toBe(toc.tarSplitDigest);
    expect(zstdDecompress(split).length).toBe(loc.tarSplit!.uncompressedLength);
    const byName = new Map(toc.entries.map((e) => [e.name, e]));
    expect(byName.get('./l')).toMatchObject({ type: 'symlink', linkName: 'a.txt' });
    expect(byName.get('./empty')).toMatchObject({ type: 'reg' });
    expect(byName.get('./empty')!.digest).toBeUndefined();
    for (const name of ['./a.txt', './d/big']) {
      const e = byName.get(name)!;
      const content = zstdDecompress(blob.subarray(e.offset!, e.endOffset!));
      expect(content.length).toBe(e.size);
      expect(e.digest).toBe(`sha256:${createHash('sha256').update(content).digest('hex')}`);
    }
    // The footer: the last 64 bytes of a skippable frame, ending in the magic.
    const footer = blob.subarray(blob.length - 64);
    expect(footer.subarray(56).toString('latin1')).toBe('GNUlInUx');
    expect(Number(footer.readBigUInt64LE(0))).toBe(loc.toc.offset);
    expect(Number(footer.readBigUInt64LE(32))).toBe(loc.tarSplit!.offset);
  });
});

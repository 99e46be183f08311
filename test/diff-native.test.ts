/**
 * The native overlay diff (diffLayerToFile, what commit runs on an overlay container) against the JS walk it replaced
 * (overlayDiffStream, kept as the reference): the same upper directory must give the same tar byte for byte — long,
 * deep, non-ASCII and non-UTF-8 names (PAX), hard links, symlinks, xattrs (overlay's own left out), whiteout devices,
 * opaque directories (both xattr namespaces, and with a marker file already there), fuse-overlayfs' `.wh.` files,
 * fifos, devices, sockets (left out), sparse files, ids and mtimes that need PAX — and the digests it reports must be
 * those of the tar and of the blob it wrote, gzip and zstd included.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { overlayDiffStream } from '../src/drivers/overlay-diff.js';
import { diffLayerToFile, streamLayerTar } from '../src/layer/diff-layer.js';
import * as F from './support/fixtures.js';
import { firstDifference } from './support/layer.js';

let work: string;
let upper: string;
let seq = 0;
const out = (): string => path.join(work, `blob-${seq++}`);

async function jsDiff(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of overlayDiffStream(dir)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function expectSameBytes(actual: Buffer, expected: Buffer): void {
  if (!actual.equals(expected)) {
    throw new Error(`the native tar differs from the JS walk's at byte ${firstDifference(actual, expected)} (lengths ${actual.length} / ${expected.length})`);
  }
}

/** Adds to `root` everything overlay's upper directory can hold beyond a plain tree. */
function addOverlayEntries(root: string): void {
  const P = (rel: string): string => path.join(root, rel);
  const xattr = (rel: string, name: string, value: string): void => void F.run('setfattr', ['-h', '-n', name, '-v', value, P(rel)]);
  // deletions: whiteout devices (one shared inode, as overlayfs links them, and one of its own)
  fs.mkdirSync(P('ov/gone'), { recursive: true });
  F.run('mknod', [P('ov/gone/deleted-a'), 'c', '0', '0']);
  fs.linkSync(P('ov/gone/deleted-a'), P('ov/gone/deleted-b'));
  F.run('mknod', [P('ov/deleted-top'), 'c', '0', '0']);
  // fuse-overlayfs marks a deletion both ways: the `.wh.` file is archived, the device left out
  F.run('mknod', [P('ov/gone/both'), 'c', '0', '0']);
  fs.writeFileSync(P('ov/gone/.wh.both'), '');
  fs.writeFileSync(P('ov/.wh.aufs-only'), '');
  // opaque directories: rootful and rootless xattrs, one with a marker file of its own, one not opaque ("n")
  fs.mkdirSync(P('ov/opaque-trusted/inner'), { recursive: true });
  fs.writeFileSync(P('ov/opaque-trusted/inner/f'), 'x');
  xattr('ov/opaque-trusted', 'trusted.overlay.opaque', 'y');
  xattr('ov/opaque-trusted', 'trusted.overlay.origin', '0xdeadbeef');
  fs.mkdirSync(P('ov/opaque-user'), { mode: 0o2750 });
  fs.chmodSync(P('ov/opaque-user'), 0o2750);
  xattr('ov/opaque-user', 'user.overlay.opaque', 'y');
  xattr('ov/opaque-user', 'user.kept', 'yes');
  fs.mkdirSync(P('ov/opaque-marked'));
  fs.writeFileSync(P('ov/opaque-marked/.wh..wh..opq'), '');
  xattr('ov/opaque-marked', 'trusted.overlay.opaque', 'y');
  fs.mkdirSync(P('ov/not-opaque'));
  xattr('ov/not-opaque', 'trusted.overlay.opaque', 'n');
  xattr('ov/not-opaque', 'user.fuseoverlayfs.origin', 'z');
  // xattrs that are archived: binary, empty, a capability, on a symlink
  fs.writeFileSync(P('ov/caps'), 'cap');
  F.run('setfattr', ['-n', 'security.capability', '-v', F.FILE_CAPS_HEX, P('ov/caps')]);
  F.run('setfattr', ['-n', 'user.bin', '-v', '0x00ff0a3d', P('ov/caps')]);
  F.run('setfattr', ['-n', 'user.empty', P('ov/caps')]);
  F.run('setfattr', ['-n', 'trusted.other', '-v', 'kept', P('ov/caps')]);
  fs.symlinkSync('caps', P('ov/caps-link'));
  xattr('ov/caps-link', 'trusted.sym', 'on-the-link');
  // special files: a socket (left out), a fifo, devices other than 0/0, a hard-linked fifo
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', P('ov/sock')]);
  F.run('mkfifo', [P('ov/fifo')]);
  fs.linkSync(P('ov/fifo'), P('ov/fifo-link'));
  F.run('mknod', [P('ov/null'), 'c', '1', '3']);
  F.run('mknod', [P('ov/loop'), 'b', '7', '200']);
  F.run('mknod', [P('ov/bigdev'), 'c', '4095', '1048575']);
  // sparse files: a hole in the middle, a hole at the end, all hole
  const sparse = fs.openSync(P('ov/sparse'), 'w');
  fs.writeSync(sparse, Buffer.from('head'), 0, 4, 0);
  fs.writeSync(sparse, Buffer.from('tail'), 0, 4, 3 * F.MiB);
  fs.closeSync(sparse);
  fs.writeFileSync(P('ov/sparse-end'), 'x');
  fs.truncateSync(P('ov/sparse-end'), 2 * F.MiB + 7);
  fs.writeFileSync(P('ov/block-512'), Buffer.alloc(512, 1));
  // ids and times PAX must carry: ids past octal, mtimes before 1970 and past 2242
  fs.writeFileSync(P('ov/big-ids'), 'ids');
  fs.lchownSync(P('ov/big-ids'), 3_000_000, 2_500_000);
  fs.writeFileSync(P('ov/old'), 'old');
  F.run('touch', ['-h', '-d', '@-5.5', P('ov/old')]); // Node's utimes takes a negative time as now
  fs.writeFileSync(P('ov/future'), 'future');
  fs.utimesSync(P('ov/future'), 9_000_000_000, 9_000_000_000);
  // names: a component over 100 bytes (no ustar split), a long splittable path, a link target over 100 bytes
  fs.mkdirSync(P('ov/' + 'd'.repeat(90) + '/' + 'e'.repeat(60)), { recursive: true });
  fs.writeFileSync(P('ov/' + 'd'.repeat(90) + '/' + 'e'.repeat(60) + '/f'), 'split');
  fs.writeFileSync(P('ov/' + 'L'.repeat(130)), 'long');
  fs.symlinkSync('t'.repeat(150), P('ov/long-target'));
  fs.symlinkSync('été/☃', P('ov/utf8-target'));
  fs.writeFileSync(Buffer.from(path.join(root, 'ov/latin1-\xe9'), 'latin1'), 'latin1');
  // the whole st_mode: setuid, sticky
  fs.writeFileSync(P('ov/suid'), 'suid');
  fs.chmodSync(P('ov/suid'), 0o4755);
  fs.mkdirSync(P('ov/sticky'));
  fs.chmodSync(P('ov/sticky'), 0o1777);
  // a file of several read chunks, hard-linked across directories
  F.writeBigFile(P('ov/big'), 3 * F.MiB + 100, 'diff-native');
  fs.linkSync(P('ov/big'), P('ov/gone/big-again'));
}

beforeAll(() => {
  work = F.tempDir('diff-native');
  upper = path.join(work, 'upper');
  F.buildSourceTree(upper, { big: false, many: 300 });
  addOverlayEntries(upper);
}, 300_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('native overlay diff', () => {
  it("writes the JS walk's tar byte for byte, and reports its digest, size and entries", async () => {
    const expected = await jsDiff(upper);
    const file = out();
    const r = await diffLayerToFile(upper, { out: file });
    expectSameBytes(fs.readFileSync(file), expected);
    expect(r.diffID).toBe(F.sha256(expected));
    expect(r.digest).toBe(r.diffID);
    expect(r.size).toBe(expected.length);
    expect(r.uncompressedSize).toBe(expected.length);
    // every entry of the tar, PAX meta headers not counted, the socket left out
    const names = F.run('tar', ['-tf', file]).toString('latin1').split('\n').filter(Boolean);
    expect(r.entries).toBe(names.length);
    expect(names).not.toContain('ov/sock');
    expect(names).toEqual(expect.arrayContaining(['ov/.wh.deleted-top', 'ov/gone/.wh.deleted-a', 'ov/gone/.wh.deleted-b', 'ov/gone/.wh.both', 'ov/opaque-trusted/.wh..wh..opq', 'ov/opaque-user/.wh..wh..opq']));
    expect(names.filter((n) => n === 'ov/gone/.wh.both' || n === 'ov/opaque-marked/.wh..wh..opq')).toHaveLength(2);
    expect(names).not.toContain('ov/not-opaque/.wh..wh..opq');
    // what needed PAX is there; overlay's own xattrs are not
    const text = fs.readFileSync(file).toString('latin1');
    for (const record of ['SCHILY.xattr.user.kept=yes', 'SCHILY.xattr.security.capability=', 'SCHILY.xattr.trusted.sym=on-the-link', 'uid=3000000', 'gid=2500000', 'mtime=9000000000', `path=ov/${'L'.repeat(130)}`, `linkpath=${'t'.repeat(150)}`]) {
      expect(text).toContain(record);
    }
    expect(text).toMatch(/\d+ mtime=-\d+\n/);
    expect(text).not.toMatch(/xattr\.(trusted|user)\.(overlay|fuseoverlayfs)\./);
  });

  it('compresses with gzip and zstd: the blob decompresses to the same tar and its digest is the blob’s', async () => {
    const expected = await jsDiff(upper);
    for (const compression of ['gzip', 'zstd'] as const) {
      const file = out();
      const r = await diffLayerToFile(upper, { out: file, compression, threads: 2, sync: true });
      const blob = fs.readFileSync(file);
      const tar = compression === 'gzip' ? zlib.gunzipSync(blob) : F.run('zstd', ['-dc', file]);
      expectSameBytes(tar, expected);
      expect(r.diffID).toBe(F.sha256(expected));
      expect(r.digest).toBe(F.sha256(blob));
      expect(r.size).toBe(blob.length);
    }
  });

  it('archives an empty upper directory as the end-of-archive blocks alone, as the JS walk does', async () => {
    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    const file = out();
    const r = await diffLayerToFile(empty, { out: file });
    expectSameBytes(fs.readFileSync(file), await jsDiff(empty));
    expect(r.entries).toBe(0);
  });

  it('fails with the errno for a missing directory or a blob it cannot write, and with ABORT_ERR when aborted', async () => {
    await expect(diffLayerToFile(path.join(work, 'missing'), { out: out() })).rejects.toMatchObject({ code: 'ENOENT' });
    for (const compression of ['none', 'gzip'] as const) {
      await expect(diffLayerToFile(upper, { out: '/dev/full', compression })).rejects.toMatchObject({ code: 'ENOSPC', syscall: 'write' });
    }
    const abort = new AbortController();
    abort.abort();
    await expect(diffLayerToFile(upper, { out: out(), signal: abort.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    const late = new AbortController();
    const job = diffLayerToFile(upper, { out: out(), compression: 'gzip', signal: late.signal });
    setImmediate(() => late.abort());
    await expect(job).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });

  it('streams the same tar through a FIFO to a reader that opens it by path, and removes the FIFO when closed', async () => {
    const expected = await jsDiff(upper);
    const streamed = await streamLayerTar(upper);
    expect(fs.statSync(streamed.path).isFIFO()).toBe(true);
    expectSameBytes(await fs.promises.readFile(streamed.path), expected);
    expect(await streamed.close()).toBeUndefined();
    expect(fs.existsSync(path.dirname(streamed.path))).toBe(false);
  });

  it('stops a FIFO stream nobody opened, or whose reader went away, without calling it a failure', async () => {
    const unread = await streamLayerTar(upper);
    expect(await unread.close()).toBeUndefined();
    expect(fs.existsSync(unread.path)).toBe(false);
    const dropped = await streamLayerTar(upper);
    const fh = await fs.promises.open(dropped.path, 'r');
    await fh.read(Buffer.alloc(4096), 0, 4096, null);
    await fh.close();
    expect(await dropped.close()).toBeUndefined();
    expect(fs.existsSync(path.dirname(dropped.path))).toBe(false);
  });
});

/**
 * The tar header rules Carrier shares with podman (Go's archive/tar + containers/storage pkg/archive), each stated
 * with the tree it must give, without podman (tar-parity.test.ts checks the same shapes against podman itself).
 * Every layer that is accepted must rebuild byte for byte from its tar-split; every refusal leaves the dir empty.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { applyLayer, CarrierError, type AppliedLayer } from '../src/index.js';
import { expectRoundTrip } from './support/layer.js';
import * as H from './support/hostile.js';

let work: string;
let seq = 0;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-tar-go-rules-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const payload = Buffer.from('payload\n');
const gnu = { magic: H.gnuMagic };

interface Applied {
  dir: string;
  result: AppliedLayer;
}

/** Applies `bytes` (privileged unless told), checks the round trip, returns the layer dir. */
async function applied(bytes: Buffer, rootless = false): Promise<Applied> {
  const n = seq++;
  const tar = path.join(work, `${n}.tar`);
  const dir = path.join(work, `${n}.dir`);
  const split = path.join(work, `${n}.tar-split.gz`);
  fs.writeFileSync(tar, bytes);
  fs.mkdirSync(dir);
  const result = await applyLayer(tar, dir, { compression: 'none', tarSplit: split, rootless });
  await expectRoundTrip(tar, split, dir, result);
  return { dir, result };
}

async function refused(bytes: Buffer, code: string, message?: RegExp): Promise<void> {
  const n = seq++;
  const tar = path.join(work, `${n}.tar`);
  const dir = path.join(work, `${n}.dir`);
  fs.writeFileSync(tar, bytes);
  fs.mkdirSync(dir);
  const err = await applyLayer(tar, dir, { compression: 'none', tarSplit: path.join(work, `${n}.split`) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CarrierError);
  expect((err as CarrierError).code).toBe(code);
  if (message) expect((err as CarrierError).message).toMatch(message);
  expect(fs.readdirSync(dir)).toEqual([]);
  expect(fs.existsSync(path.join(work, `${n}.split`))).toBe(false);
}

const read = (a: Applied, p: string): string => fs.readFileSync(path.join(a.dir, p), 'utf8');

describe('entry types: only what containers/storage extracts', () => {
  for (const type of ['A', 'D', 'N', 'X', 'Z', '7', 'I']) {
    it(`refuses type '${type}' as podman does ("unhandled tar header type"), so no accepted layer lacks its data`, async () => {
      await refused(H.tar(H.file('ok', 'x'), H.entry({ name: `entry-${type}`, typeflag: type }, payload)), 'CARRIER_BAD_TAR', /unhandled tar header type/);
    });
  }

  it('reads type NUL as a directory when the final (PAX) name ends in a slash, as a file otherwise', async () => {
    const a = await applied(H.tar(H.pax([['path', 'paxdir/']]), H.entry({ name: 'x', typeflag: 0, mode: 0o755 }), H.entry({ name: 'plain', typeflag: 0 }, payload)));
    expect(fs.lstatSync(path.join(a.dir, 'paxdir')).isDirectory()).toBe(true);
    expect(read(a, 'plain')).toBe('payload\n');
  });
});

describe('names: the ustar prefix goes by the magic, as in Go', () => {
  for (const version of ['  ', '\0\0', '00']) {
    it(`joins the prefix of a "ustar\\0" header whatever its version field (${JSON.stringify(version)})`, async () => {
      const a = await applied(H.tar(H.entry({ name: 'file', prefix: 'some/dir', magic: Buffer.from(`ustar\0${version}`, 'latin1') }, payload)));
      expect(read(a, 'some/dir/file')).toBe('payload\n');
      expect(fs.readdirSync(a.dir)).toEqual(['some']);
    });
  }

  it('reads a star header\'s 131-byte prefix', async () => {
    const a = await applied(
      H.tar(
        H.entry(
          { name: 'file', prefix: 'star/dir', mutate: (b) => b.write('tar\0', 508, 'latin1') },
          payload,
        ),
      ),
    );
    expect(read(a, 'star/dir/file')).toBe('payload\n');
  });

  it('ignores the prefix field of a v7 header and of a GNU header whose time fields parse', async () => {
    const a = await applied(H.tar(H.entry({ name: 'v7', magic: Buffer.alloc(8), prefix: 'ignored' }, payload), H.entry({ name: 'gnu', ...gnu, prefix: '0000000' }, payload)));
    expect(fs.readdirSync(a.dir).sort()).toEqual(['gnu', 'v7']);
  });

  it('reads the prefix a pre-Go-1.8 writer put in a GNU header (its atime/ctime bytes do not parse)', async () => {
    const a = await applied(H.tar(H.entry({ name: 'foo', ...gnu, prefix: 'aaaa/bbbb' }, payload)));
    expect(read(a, 'aaaa/bbbb/foo')).toBe('payload\n');
  });

  it('puts a rooted name that climbs (/../x) at the root as Go cleans it, and still refuses a relative climb', async () => {
    const a = await applied(H.tar(H.file('t', 'x'), H.entry({ name: '/../../rooted' }, payload), H.entry({ name: 'l', typeflag: '1', linkname: '/../t' })));
    expect(read(a, 'rooted')).toBe('payload\n');
    expect(fs.statSync(path.join(a.dir, 'l')).nlink).toBe(2);
    await refused(H.tar(H.entry({ name: 'a/../../climb' }, payload)), 'CARRIER_UNSAFE_PATH');
  });

  it('gives a GNU long name precedence over a PAX path, and an empty one to neither', async () => {
    const a = await applied(
      H.tar(H.pax([['path', 'from-pax']]), H.gnuLong('L', 'from-gnu'), H.entry({ name: 'from-header' }, payload), H.gnuLong('L', ''), H.entry({ name: 'kept' }, payload)),
    );
    expect(fs.readdirSync(a.dir).sort()).toEqual(['from-gnu', 'kept']);
  });

  it('keeps the ustar name, link target, owner and mtime when their PAX records are empty', async () => {
    const a = await applied(
      H.tar(
        H.dir('bin'),
        H.pax([['path', '']]),
        H.entry({ name: 'bin/evil' }, payload),
        H.file('target', 'x'),
        H.pax([['linkpath', ''], ['uid', ''], ['mtime', '']]),
        H.entry({ name: 'link', typeflag: '2', linkname: 'target', uid: 7, mtime: 1_600_000_000 }),
      ),
    );
    expect(read(a, 'bin/evil')).toBe('payload\n');
    expect(fs.readlinkSync(path.join(a.dir, 'link'))).toBe('target');
    const st = fs.lstatSync(path.join(a.dir, 'link'));
    expect(st.uid).toBe(7);
    expect(st.mtimeMs).toBe(1_600_000_000_000);
  });
});

describe('names no tool could open again are refused at apply', () => {
  // 17 components of 246 bytes: every parent path fits in PATH_MAX, so the entry could be created one component at
  // a time, but its whole path (4,198 bytes) cannot be opened to rebuild the layer (ENAMETOOLONG).
  const component = (i: number, len: number): string => String(i).padStart(3, '0') + 'x'.repeat(len - 3);
  const longPath = (total: number): string => {
    const parts = Array.from({ length: 16 }, (_, i) => component(i, 246));
    const used = parts.join('/').length + 1;
    return [...parts, component(16, total - used)].join('/');
  };

  it('refuses a PAX path of 4,200 bytes, naming it, before anything is written', async () => {
    const name = longPath(4200);
    expect(name.length).toBe(4200);
    await refused(H.tar(H.file('ok', 'x'), H.pax([['path', name]]), H.entry({ name: 'placeholder' }, payload)), 'CARRIER_LIMIT_EXCEEDED', /path of an entry is 4200 bytes.*000x/);
    await refused(H.tar(H.gnuLong('L', longPath(4096)), H.entry({ name: 'placeholder', typeflag: '5' })), 'CARRIER_LIMIT_EXCEEDED', /4096 bytes/);
  });

  it('accepts a path of 4,095 bytes (PATH_MAX less its NUL) and rebuilds it byte for byte', async () => {
    const name = longPath(4095);
    // (the round trip opens it from the layer root; the test's absolute path to it would be too long itself)
    const a = await applied(H.tar(H.pax([['path', name]]), H.entry({ name: 'placeholder' }, payload)));
    expect(a.result.entries).toBe(1);
    execFileSync('rm', ['-rf', a.dir]); // GNU rm walks it with *at() calls; Node's recursive rm would hit ENAMETOOLONG
  });

  it('keeps the ustar name when a PAX path is empty, and refuses D and Z entries that carry data, by name', async () => {
    const a = await applied(H.tar(H.pax([['path', '']]), H.entry({ name: 'ustar-name' }, payload)));
    expect(read(a, 'ustar-name')).toBe('payload\n');
    await refused(H.tar(H.entry({ name: 'dumpdir', typeflag: 'D' }, Buffer.from('Yfile\0\0'))), 'CARRIER_BAD_TAR', /'D' on 'dumpdir'/);
    await refused(H.tar(H.entry({ name: 'zentry', typeflag: 'Z' }, payload)), 'CARRIER_BAD_TAR', /'Z' on 'zentry'/);
  });
});

describe('numbers: as Go parses them', () => {
  it('accepts PAX numbers with leading zeros and a sign (Go\'s pax-pos-size-file.tar)', async () => {
    const a = await applied(
      H.tar(
        H.pax([
          ['size', '000000000000000000000008'],
          ['uid', '0000000000000000000001000'],
          ['gid', '+0000000000000000000001000'],
          ['mtime', '00000000000000000001700000000.5'],
        ]),
        H.entry({ name: 'zeros', size: 8 }, payload),
        H.pax([['mtime', '1700000000.']]),
        H.entry({ name: 'dot' }, payload),
      ),
    );
    const st = fs.statSync(path.join(a.dir, 'zeros'), { bigint: true });
    expect([st.size, st.uid, st.gid, st.mtimeNs]).toEqual([8n, 1000n, 1000n, 1_700_000_000_500_000_000n]);
    expect(fs.statSync(path.join(a.dir, 'dot')).mtimeMs).toBe(1_700_000_000_000);
  });

  it('refuses PAX numbers that overflow 64 bits, and atime/ctime records that do not parse', async () => {
    await refused(H.tar(H.pax([['size', '99999999999999999999']]), H.entry({ name: 'big' }, payload)), 'CARRIER_BAD_TAR');
    await refused(H.tar(H.pax([['atime', 'yesterday']]), H.entry({ name: 'atime' }, payload)), 'CARRIER_BAD_TAR');
  });

  it('reads an octal field up to the first NUL inside it, and refuses a device number that is not octal', async () => {
    const a = await applied(H.tar(H.entry({ name: 'garbage', uid: Buffer.from(' 12\0 34\0', 'latin1') }, payload)));
    expect(fs.statSync(path.join(a.dir, 'garbage')).uid).toBe(0o12);
    await refused(H.tar(H.entry({ name: 'devmajor', devmajor: Buffer.from('zz\0', 'latin1') }, payload)), 'CARRIER_BAD_TAR');
  });

  it('accepts uid 4294967295 (chown leaves the owner, as for podman) and refuses negative ids', async () => {
    const a = await applied(H.tar(H.entry({ name: 'f', uid: 4294967295, gid: 4294967295 }, payload)));
    expect(a.result.uidset).toEqual([4294967295]);
    expect(fs.statSync(path.join(a.dir, 'f')).uid).toBe(process.getuid!());
    await refused(H.tar(H.pax([['uid', '-1']]), H.entry({ name: 'neg' }, payload)), 'CARRIER_BAD_TAR');
  });

  it('accepts a PAX comment holding a NUL byte (only path, linkpath, uname and gname may not)', async () => {
    const a = await applied(H.tar(H.pax([['comment', Buffer.from('a\0b')]]), H.entry({ name: 'comment' }, payload)));
    expect(read(a, 'comment')).toBe('payload\n');
  });
});

describe('extended headers', () => {
  it('reads a PAX header of 80,000 distinct records (under the 1 MiB cap) in one pass', async () => {
    const records: H.PaxRecord[] = Array.from({ length: 80_000 }, (_, i) => [`c${i}`, '']);
    const data = H.paxData(records);
    expect(data.length).toBeLessThan(1 << 20);
    const a = await applied(H.tar(H.pax(data), H.entry({ name: 'after' }, payload)));
    expect(read(a, 'after')).toBe('payload\n');
  });
});

describe('extended headers with nothing after them', () => {
  it('reads a PAX header followed by the end of the archive as an empty layer (Go\'s pax-path-hdr.tar)', async () => {
    const a = await applied(Buffer.concat([H.pax([['path', 'ghost']]), H.END]));
    expect(fs.readdirSync(a.dir)).toEqual([]);
    expect(a.result.entries).toBe(0);
  });

  it('drops a GNU long name the stream ends after', async () => {
    const a = await applied(H.gnuLong('L', 'ghost'));
    expect(fs.readdirSync(a.dir)).toEqual([]);
  });
});

describe('every accepted layer rebuilds byte for byte', () => {
  it('keeps content no file holds (a file naming the root, a whiteout\'s, an aufs metadata file\'s) in the tar-split', async () => {
    const a = await applied(
      H.tar(
        H.entry({ name: './', typeflag: '0' }, payload),
        H.entry({ name: 'dir/.wh.gone' }, Buffer.from('whiteout content')),
        H.entry({ name: 'dir/.wh..wh.meta' }, Buffer.from('aufs metadata content')),
        H.file('dir/kept', 'x'),
      ),
    );
    expect(fs.lstatSync(path.join(a.dir, 'dir/gone')).isCharacterDevice()).toBe(true);
    expect(fs.lstatSync(path.join(a.dir, 'dir/.wh.meta')).isCharacterDevice()).toBe(true);
    expect(read(a, 'dir/kept')).toBe('x');
  });
});

describe('whiteouts as containers/storage converts them for overlay', () => {
  it('turns aufs metadata names into whiteouts too, at the top and nested', async () => {
    const a = await applied(H.tar(H.dir('.wh..wh.plnk'), H.entry({ name: '.wh..wh.plnk/1.2' }, payload), H.dir('n'), H.entry({ name: 'n/.wh..wh.meta' })));
    expect(fs.lstatSync(path.join(a.dir, '.wh.plnk')).isCharacterDevice()).toBe(true);
    expect(fs.lstatSync(path.join(a.dir, 'n/.wh.meta')).isCharacterDevice()).toBe(true);
    expect(read(a, '.wh..wh.plnk/1.2')).toBe('payload\n');
  });

  it('ignores a whiteout under a whited-out name (/.wh.foo, then /foo/.wh.bar, as `rm -rf /foo/bar` layers have)', async () => {
    const a = await applied(H.tar(H.entry({ name: '.wh.foo' }), H.entry({ name: 'foo/.wh.bar' })));
    expect(fs.lstatSync(path.join(a.dir, 'foo')).isCharacterDevice()).toBe(true);
    expect(a.result.skipped.map((s) => s.path)).toEqual(['foo/.wh.bar']);
  });
});

describe('metadata as containers/storage applies it', () => {
  it('drops a security.selinux xattr and keeps the others', async () => {
    const a = await applied(
      H.tar(H.file('labelled', 'x', { paxExtra: [['SCHILY.xattr.security.selinux', 'system_u:object_r:bin_t:s0\0'], ['SCHILY.xattr.user.kept', 'yes']] })),
    );
    expect(a.result.skipped.map((s) => s.reason)).toContain('xattr security.selinux is not taken from layers (as containers/storage)');
    const names = listXattrs(path.join(a.dir, 'labelled'));
    expect(names).toContain('user.kept');
    expect(names).not.toContain('security.selinux');
  });

  it('sets xattrs on symlinks and fifos as podman does: trusted.* applied, user.* refused (skipped rootless)', async () => {
    const a = await applied(H.tar(H.file('t', 'x'), H.symlink('s', 't', { paxExtra: [['SCHILY.xattr.trusted.k', 'v']] })));
    expect(execFileSync('getfattr', ['-h', '-n', 'trusted.k', '--only-values', path.join(a.dir, 's')], { encoding: 'utf8' })).toBe('v');
    const userOnLink = H.tar(H.file('t', 'x'), H.symlink('s', 't', { paxExtra: [['SCHILY.xattr.user.k', 'v']] }));
    await refused(userOnLink, 'EPERM');
    const userOnFifo = H.tar(H.pax([['SCHILY.xattr.user.k', 'v']]), H.entry({ name: 'q', typeflag: '6' }));
    await refused(userOnFifo, 'EPERM');
    const r = await applied(userOnLink, true);
    expect(r.result.skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/xattr user\.k not supported here/)]);
  });

  it('gives the inode a hardlink shares the hardlink header\'s mode, owner and mtime', async () => {
    const a = await applied(
      H.tar(
        H.entry({ name: 'target', mode: 0o600, uid: 1, gid: 1, mtime: 1_500_000_000 }, payload),
        H.entry({ name: 'link', typeflag: '1', linkname: 'target', mode: 0o755, uid: 2, gid: 2, mtime: 1_600_000_000 }),
      ),
    );
    const st = fs.statSync(path.join(a.dir, 'target'));
    expect([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs, st.nlink]).toEqual([0o755, 2, 2, 1_600_000_000_000, 2]);
  });

  it('puts times before 1970 and past 2262 at the epoch, except on symlinks', async () => {
    const a = await applied(
      H.tar(
        H.entry({ name: 'old-file', mtime: -86400 }, payload),
        H.entry({ name: 'old-dir/', typeflag: '5', mode: 0o755, mtime: -86400 }),
        H.entry({ name: 'old-link', typeflag: '2', linkname: 'old-file', mtime: -86400 }),
        H.pax([['mtime', '9999999999999']]),
        H.entry({ name: 'future' }, payload),
      ),
    );
    const mtime = (p: string): number => fs.lstatSync(path.join(a.dir, p)).mtimeMs;
    expect([mtime('old-file'), mtime('old-dir'), mtime('future'), mtime('old-link')]).toEqual([0, 0, 0, -86_400_000]);
  });

  it('creates the parents a PAX global header names, and refuses one that would remove an entry', async () => {
    const a = await applied(H.tar(H.pax([['comment', 'x']], { typeflag: 'g', name: 'deep/er/pax_global_header' }), H.file('f', 'x')));
    expect(fs.readdirSync(path.join(a.dir, 'deep'))).toEqual(['er']);
    await refused(H.tar(H.file('f', 'x'), H.pax([['comment', 'x']], { typeflag: 'g', name: 'f' })), 'CARRIER_BAD_TAR', /global header/);
  });
});

function listXattrs(p: string): string[] {
  return execFileSync('getfattr', ['-d', '-m', '-', '--absolute-names', p], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => l.slice(0, l.indexOf('=')));
}

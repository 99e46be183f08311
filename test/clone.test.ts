/**
 * cloneTree on real filesystems, each a loop-mounted image made for the run (test/support/loopfs.ts): XFS with
 * reflink and btrfs clone (shared extents, proven by the filesystem's own used-space count), ext4 falls back to
 * copying. The trees are compared entry by entry (test/support/tree.ts): types, modes, owners, mtimes, xattrs,
 * symlink targets, device numbers, hard-link groups, contents. Runs as root; one case runs as a real unprivileged
 * user (setpriv).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import net from 'node:net';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { cloneTree, type CloneResult } from '../src/fs/clone.js';
import { CarrierError } from '../src/errors.js';
import { walkTree, compareTrees, sha256FileSync } from './support/tree.js';
import { withLoopFs, usage, xfsHasReflink, type LoopFsKind } from './support/loopfs.js';

const MiB = 1024 * 1024;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Mounts a loop filesystem for the whole describe block (withLoopFs held open until afterAll). */
function mountFor(kind: LoopFsKind, sizeMiB: number): { dir: () => string } {
  let dir = '';
  let release: () => void = () => {};
  let done: Promise<void> = Promise.resolve();
  beforeAll(async () => {
    dir = await new Promise<string>((resolve, reject) => {
      done = withLoopFs(kind, sizeMiB, (mountDir) => {
        resolve(mountDir);
        return new Promise<void>((r) => (release = r));
      }).catch(reject);
    });
  });
  afterAll(async () => {
    release();
    await done;
  });
  return { dir: () => dir };
}

/** 20-byte VFS_CAP_REVISION_2 value: cap_net_raw permitted+effective. */
const CAP_NET_RAW = '0x0100000200200000000000000000000000000000';
const T0 = 1_600_000_000;

function setTimes(p: string | Buffer, offset: number, link = false): void {
  const at = T0 + offset + 0.25;
  const mt = T0 + offset + 0.5;
  if (link) fs.lutimesSync(p, at, mt);
  else fs.utimesSync(p, at, mt);
}

/**
 * Every kind of entry cloneTree handles, with metadata that is easy to lose: owners, setuid/setgid/sticky bits, a
 * 0555 directory with children, hard links across directories (one inside the 0555 directory), symlinks
 * (relative, absolute, dangling; one with a trusted.* xattr), a fifo, a 0/0 whiteout, other devices, a sparse file,
 * a file capability, user/trusted xattrs, a name that is not UTF-8, a socket (skipped).
 */
async function buildFixture(root: string): Promise<{ socket: string }> {
  fs.mkdirSync(root);
  const p = (...parts: string[]): string => path.join(root, ...parts);
  fs.mkdirSync(p('a/b/c'), { recursive: true });
  fs.writeFileSync(p('a/b/c/deep.txt'), 'deep\n');
  fs.writeFileSync(p('a/b/data.bin'), crypto.randomBytes(5 * MiB + 123));
  fs.writeFileSync(p('empty'), '');
  fs.writeFileSync(p('one'), 'x');
  fs.writeFileSync(p('setuid'), '#!/bin/sh\n');
  fs.chownSync(p('setuid'), 1234, 5678);
  fs.chmodSync(p('setuid'), 0o4755);
  fs.writeFileSync(p('setgid'), 'g');
  fs.chownSync(p('setgid'), 0, 5678);
  fs.chmodSync(p('setgid'), 0o2711);
  fs.writeFileSync(p('none'), 'secret');
  fs.chmodSync(p('none'), 0o000);
  fs.writeFileSync(p('cap'), 'cap');
  fs.chmodSync(p('cap'), 0o750);
  execFileSync('setfattr', ['-n', 'security.capability', '-v', CAP_NET_RAW, p('cap')]);
  fs.writeFileSync(p('xattrs'), 'x');
  execFileSync('setfattr', ['-n', 'user.carrier', '-v', 'hello', p('xattrs')]);
  execFileSync('setfattr', ['-n', 'trusted.carrier', '-v', '0x00ff00', p('xattrs')]);
  execFileSync('setfattr', ['-n', 'user.dir', '-v', 'yes', p('a')]);
  fs.writeFileSync(Buffer.from([...Buffer.from(root + '/name-'), 0xff, 0xfe]), 'not utf-8');

  // Sparse: 4 KiB of data at 0 and at 32 MiB in 64 MiB.
  const sparse = fs.openSync(p('sparse'), 'w');
  fs.writeSync(sparse, Buffer.alloc(4096, 1), 0, 4096, 0);
  fs.writeSync(sparse, Buffer.alloc(4096, 2), 0, 4096, 32 * MiB);
  fs.ftruncateSync(sparse, 64 * MiB);
  fs.closeSync(sparse);

  fs.mkdirSync(p('sticky'));
  fs.chmodSync(p('sticky'), 0o1777);
  fs.mkdirSync(p('owned'));
  fs.chownSync(p('owned'), 1000, 1000);
  fs.writeFileSync(p('owned/file'), 'mine');
  fs.chownSync(p('owned/file'), 1000, 1000);

  fs.symlinkSync('a/b/c/deep.txt', p('rel-link'));
  fs.symlinkSync('/etc/passwd', p('abs-link'));
  fs.symlinkSync('nowhere/at/all', p('dangling'));
  fs.lchownSync(p('rel-link'), 1234, 5678);
  execFileSync('setfattr', ['-h', '-n', 'trusted.link', '-v', 'on-a-symlink', p('abs-link')]);

  execFileSync('mkfifo', ['-m', '0640', p('fifo')]);
  execFileSync('mknod', ['-m', '0000', p('whiteout'), 'c', '0', '0']);
  execFileSync('mknod', ['-m', '0666', p('null'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '0660', p('loopdev'), 'b', '7', '200']);
  fs.chownSync(p('loopdev'), 0, 6);

  fs.mkdirSync(p('ro/sub'), { recursive: true });
  fs.writeFileSync(p('ro/sub/inner'), 'inside a read-only dir');
  fs.writeFileSync(p('hl1'), 'linked content');
  fs.linkSync(p('hl1'), p('a/hl2'));
  fs.linkSync(p('hl1'), p('ro/hl3'));
  fs.chmodSync(p('ro/sub'), 0o555);
  fs.chmodSync(p('ro'), 0o555);

  // Node unlinks a socket path on close: listen under another name and move the socket away first.
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(p('sock.tmp'), r));
  fs.renameSync(p('sock.tmp'), p('sock'));
  await new Promise((r) => server.close(r));

  // Times last, deepest first, so creating children does not move them.
  const all = walkTree(root, { hash: false, xattrs: false });
  const entries = [...all.nodes.values()].sort((x, y) => y.path.split('/').length - x.path.split('/').length);
  let i = 0;
  for (const e of entries) setTimes(Buffer.concat([Buffer.from(root + '/'), e.raw]), ++i, e.type === 'symlink');
  fs.chmodSync(root, 0o750);
  setTimes(root, 0);
  return { socket: 'sock' };
}

function expectSameRoot(src: string, dst: string): void {
  const a = fs.lstatSync(src, { bigint: true });
  const b = fs.lstatSync(dst, { bigint: true });
  expect({ mode: b.mode, uid: b.uid, gid: b.gid, mtimeNs: b.mtimeNs }).toEqual({ mode: a.mode, uid: a.uid, gid: a.gid, mtimeNs: a.mtimeNs });
}

function expectSameTree(src: string, dst: string, ignore: (p: string) => boolean = () => false): void {
  expect(compareTrees(walkTree(src), walkTree(dst), { ignore })).toEqual([]);
  expectSameRoot(src, dst);
}

async function expectCode(p: Promise<unknown>, code: string): Promise<CarrierError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeInstanceOf(CarrierError);
  expect((err as CarrierError).code).toBe(code);
  return err as CarrierError;
}

/** `count` files of `each` MiB with distinct random-looking content, written 1 MiB at a time. */
function writeBigTree(root: string, count: number, each: number): number {
  fs.mkdirSync(root, { recursive: true });
  const block = crypto.randomBytes(MiB);
  for (let f = 0; f < count; f++) {
    const dir = path.join(root, `d${f % 4}`);
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(path.join(dir, `f${f}`), 'w');
    for (let m = 0; m < each; m++) {
      block.writeUInt32LE(f * 100_000 + m, 0);
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
  }
  return count * each * MiB;
}

function isTmpfs(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === 0x01021994;
  } catch {
    return false;
  }
}

/** Gaps between the ticks of a 2 ms interval timer, sorted, from start until stop(). */
const tickGaps = (): { stop: () => number[] } => {
  let last = performance.now();
  const gaps: number[] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 2);
  return {
    stop: () => {
      clearInterval(timer);
      gaps.push(performance.now() - last);
      return gaps.sort((a, b) => a - b);
    },
  };
};

beforeAll(() => {
  expect(process.geteuid?.(), 'the clone tests mount loop filesystems and must run as root').toBe(0);
});

for (const kind of ['xfs', 'btrfs'] as const) {
  describe(`cloneTree on ${kind} (reflinks)`, () => {
    const fsMount = mountFor(kind, 1200);

    it('clones every kind of entry with its metadata, sharing all file data', async () => {
      if (kind === 'xfs') expect(xfsHasReflink(fsMount.dir())).toBe(true);
      const src = path.join(fsMount.dir(), 'fixture');
      const { socket } = await buildFixture(src);
      const dst = path.join(fsMount.dir(), 'clone');
      const atime = fs.statSync(path.join(src, 'one')).atimeMs;
      const r = await cloneTree(src, dst);
      expect(fs.statSync(path.join(dst, 'one')).atimeMs).toBe(atime);
      expectSameTree(src, dst, (p) => p === socket);
      expect(fs.existsSync(path.join(dst, socket))).toBe(false);
      expect(r).toMatchObject({ method: 'reflink', bytesCopied: 0, bytesHardlinked: 0, hardlinks: 2, skippedSpecials: 1, skippedXattrs: 0 });
      expect(r.specials).toBe(4);
      expect(r.symlinks).toBe(3);
      expect(r.dirs).toBe(7);
      const logical = [...walkTree(src, { hash: false, xattrs: false }).nodes.values()]
        .filter((n) => n.type === 'file' && !(n.path === 'a/hl2' || n.path === 'ro/hl3'))
        .reduce((s, n) => s + (n.size ?? 0), 0);
      expect(r.bytesCloned).toBe(logical);
    });

    it('cloning a 300 MiB tree twice grows used space by less than 5% of it', async () => {
      const src = path.join(fsMount.dir(), 'big');
      const bytes = writeBigTree(src, 30, 10);
      const before = usage(fsMount.dir());
      const results: CloneResult[] = [];
      for (const n of [1, 2]) results.push(await cloneTree(src, path.join(fsMount.dir(), `big-clone-${n}`), { mode: 'reflink' }));
      const after = usage(fsMount.dir());
      const growth = after.used - before.used;
      console.log(`${kind}: tree ${bytes / MiB} MiB, two clones grew used space by ${(growth / MiB).toFixed(2)} MiB`);
      expect(growth).toBeLessThan(bytes * 0.05);
      for (const r of results) expect(r).toMatchObject({ method: 'reflink', bytesCloned: bytes, bytesCopied: 0, files: 30, dirs: 4 });
      expect(compareTrees(walkTree(src, { hash: false }), walkTree(path.join(fsMount.dir(), 'big-clone-2'), { hash: false }))).toEqual([]);
      expect(sha256FileSync(path.join(fsMount.dir(), 'big-clone-2/d3/f7'))).toBe(sha256FileSync(path.join(src, 'd3/f7')));
      // The clones are independent: writing to one leaves the source as it was.
      fs.writeFileSync(path.join(fsMount.dir(), 'big-clone-1/d0/f0'), 'changed');
      expect(fs.statSync(path.join(src, 'd0/f0')).size).toBe(10 * MiB);
    });

    it("mode 'copy' does not ask for reflinks; mode 'hardlink' links every file to the source", async () => {
      const src = path.join(fsMount.dir(), 'fixture');
      const copied = await cloneTree(src, path.join(fsMount.dir(), 'copied'), { mode: 'copy' });
      expect(copied.bytesCloned).toBe(0);
      expect(['copy_file_range', 'mixed']).toContain(copied.method);
      expectSameTree(src, path.join(fsMount.dir(), 'copied'), (p) => p === 'sock');

      const linked = path.join(fsMount.dir(), 'linked');
      const r = await cloneTree(src, linked, { mode: 'hardlink' });
      expect(r).toMatchObject({ method: 'hardlink', bytesCloned: 0, bytesCopied: 0, hardlinks: 2 });
      expect(r.bytesHardlinked).toBeGreaterThan(5 * MiB);
      for (const f of ['one', 'setuid', 'a/hl2', 'ro/sub/inner']) {
        expect(fs.lstatSync(path.join(linked, f)).ino).toBe(fs.lstatSync(path.join(src, f)).ino);
      }
      expect(fs.lstatSync(path.join(linked, 'a')).ino).not.toBe(fs.lstatSync(path.join(src, 'a')).ino);
      // Shared inodes count their new names: compare everything but the link groups.
      expect(compareTrees(walkTree(src), walkTree(linked), { ignore: (p) => p === 'sock', fields: ['type', 'mode', 'content', 'target', 'rdev', 'owner', 'mtime', 'xattrs'] })).toEqual([]);
    });
  });
}

describe('cloneTree on ext4 (no reflinks)', () => {
  const fsMount = mountFor('ext4', 1600);
  let big = '';

  it('clones every kind of entry by copying, keeping holes', async () => {
    const src = path.join(fsMount.dir(), 'fixture');
    const { socket } = await buildFixture(src);
    const dst = path.join(fsMount.dir(), 'clone');
    const r = await cloneTree(src, dst);
    expectSameTree(src, dst, (p) => p === socket);
    expect(r.bytesCloned).toBe(0);
    expect(r.method).toBe('copy_file_range');
    // The data bytes only: 64 MiB sparse file with 8 KiB in it.
    expect(r.bytesCopied).toBeLessThan(6 * MiB);
    expect(r.bytesCopied).toBeGreaterThan(5 * MiB);
    expect(fs.statSync(path.join(dst, 'sparse')).blocks * 512).toBeLessThan(MiB);
  });

  it.skipIf(!isTmpfs('/dev/shm'))('copies with read/write, holes kept, where copy_file_range cannot cross filesystems (to tmpfs)', async () => {
    const src = path.join(fsMount.dir(), 'fixture');
    const parent = fs.mkdtempSync('/dev/shm/carrier-clone-');
    try {
      const dst = path.join(parent, 'clone');
      const r = await cloneTree(src, dst);
      expect(r).toMatchObject({ method: 'copy', bytesCloned: 0 });
      expectSameTree(src, dst, (p) => p === 'sock');
      expect(fs.statSync(path.join(dst, 'sparse')).blocks * 512).toBeLessThan(MiB);
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  it("mode 'reflink' fails with CARRIER_NO_REFLINK and leaves nothing behind", async () => {
    const dst = path.join(fsMount.dir(), 'must-not-stay');
    const err = await expectCode(cloneTree(path.join(fsMount.dir(), 'fixture'), dst, { mode: 'reflink' }), 'CARRIER_NO_REFLINK');
    expect(err.syscall).toBe('ioctl(FICLONE)');
    expect(err.message).toMatch(/mode 'auto'/);
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('refuses a non-empty destination, fills an empty one, and names a cross-device hard-link request', async () => {
    const src = path.join(fsMount.dir(), 'fixture');
    const full = path.join(fsMount.dir(), 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'keep'), 'x');
    await expectCode(cloneTree(src, full), 'ENOTEMPTY');
    expect(fs.readdirSync(full)).toEqual(['keep']);

    const empty = path.join(fsMount.dir(), 'empty-dst');
    fs.mkdirSync(empty);
    await cloneTree(src, empty, { mode: 'copy' });
    expectSameTree(src, empty, (p) => p === 'sock');

    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-clone-xdev-'));
    try {
      const err = await expectCode(cloneTree(src, path.join(elsewhere, 'linked'), { mode: 'hardlink' }), 'EXDEV');
      expect(err.message).toMatch(/one filesystem/);
      expect(fs.readdirSync(elsewhere)).toEqual([]);
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
    await expectCode(cloneTree(src, path.join(src, 'a', 'inside')), 'CARRIER_INVALID_ARGUMENT');
    expect(fs.existsSync(path.join(src, 'a', 'inside'))).toBe(false);
    await expectCode(cloneTree(path.join(fsMount.dir(), 'no-such-dir'), path.join(fsMount.dir(), 'x')), 'ENOENT');
  });

  it('keeps the event loop ticking during a 512 MiB copy', async () => {
    big = path.join(fsMount.dir(), 'big');
    writeBigTree(big, 1, 512);
    const ticks = tickGaps();
    const started = performance.now();
    const r = await cloneTree(big, path.join(fsMount.dir(), 'big-copy'), { mode: 'copy' });
    const took = performance.now() - started;
    const gaps = ticks.stop();
    const p95 = gaps[Math.floor(gaps.length * 0.95)]!;
    const max = gaps[gaps.length - 1]!;
    console.log(`ext4: 512 MiB copied in ${took.toFixed(0)} ms; ${gaps.length} timer ticks, p95 gap ${p95.toFixed(1)} ms, longest ${max.toFixed(1)} ms`);
    expect(r).toMatchObject({ bytesCopied: 512 * MiB, files: 1 });
    // A copy on the event loop would show as one gap as long as the copy and almost no ticks. No absolute limit (the
    // machine may be busy with other work): the typical and the longest gap are small parts of the copy.
    expect(gaps.length).toBeGreaterThan(10);
    expect(p95).toBeLessThan(took / 10);
    expect(max).toBeLessThan(took / 2);
  });

  it('stops on abort in the middle of a copy with ABORT_ERR and removes the partial tree', async () => {
    const dst = path.join(fsMount.dir(), 'aborted');
    const controller = new AbortController();
    const pending = cloneTree(big, dst, { mode: 'copy', signal: controller.signal });
    // Abort once the file is being written.
    const file = path.join(dst, 'd0/f0');
    for (let i = 0; i < 5000 && !controller.signal.aborted; i++) {
      const size = await fs.promises.stat(file).then((s) => s.size, () => 0);
      if (size > 0) controller.abort();
      else await new Promise((r) => setImmediate(r));
    }
    expect(controller.signal.aborted, 'the copy finished before it could be aborted').toBe(true);
    const err = await expectCode(pending, 'ABORT_ERR');
    expect(err.name).toBe('AbortError');
    expect(fs.existsSync(dst)).toBe(false);
    // An already aborted signal rejects before anything is created.
    await expectCode(cloneTree(big, dst, { signal: AbortSignal.abort() }), 'ABORT_ERR');
    expect(fs.existsSync(dst)).toBe(false);
  });
});

describe('cloneTree as an unprivileged user', () => {
  const fsMount = mountFor('xfs', 320);
  const NOBODY = 65534;

  /** A copy of the package that uid 65534 can load: src/ transpiled, build/ and node_modules/ linked. */
  function runAsNobody(work: string, src: string, dst: string): { ok: boolean; result?: CloneResult; code?: string; message?: string } {
    const pkg = path.join(work, 'pkg');
    for (const f of ['fs/clone.ts', 'errors.ts', 'native.ts']) {
      const out = path.join(pkg, 'src', f.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const js = ts.transpileModule(fs.readFileSync(path.join(repo, 'src', f), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      fs.writeFileSync(out, js);
    }
    // native.ts finds the addon through src/addon-file.cts (CommonJS, shared with the CLI's bin)
    const addonFile = ts.transpileModule(fs.readFileSync(path.join(repo, 'src', 'addon-file.cts'), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    fs.writeFileSync(path.join(pkg, 'src', 'addon-file.cjs'), addonFile);
    fs.copyFileSync(path.join(repo, 'package.json'), path.join(pkg, 'package.json'));
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'node_modules'));
    if (fs.existsSync(path.join(repo, 'build/Release'))) fs.symlinkSync(path.join(repo, 'build'), path.join(pkg, 'build'));
    fs.symlinkSync(path.join(repo, 'prebuilds'), path.join(pkg, 'prebuilds'));
    const script = path.join(pkg, 'run.mjs');
    fs.writeFileSync(
      script,
      `const { cloneTree } = await import('./src/fs/clone.js');
try { process.stdout.write(JSON.stringify({ ok: true, result: await cloneTree(process.argv[2], process.argv[3]) })); }
catch (e) { process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message })); }`,
    );
    execFileSync('chmod', ['-R', 'a+rX', work]);
    const r = spawnSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--', process.execPath, script, src, dst],
      { cwd: pkg, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' } },
    );
    if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  it('fills read-only directories, makes whiteouts, skips other devices and privileged xattrs, owns the copy', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-clone-nobody-'));
    try {
      const root = fsMount.dir();
      for (const d of [path.dirname(root), root]) fs.chmodSync(d, 0o755);
      const src = path.join(root, 'src');
      fs.mkdirSync(path.join(src, 'ro/sub'), { recursive: true });
      fs.writeFileSync(path.join(src, 'ro/sub/file'), 'in a 0555 dir');
      fs.writeFileSync(path.join(src, 'ro/file'), 'x'.repeat(100_000));
      fs.linkSync(path.join(src, 'ro/file'), path.join(src, 'link'));
      fs.writeFileSync(path.join(src, 'cap'), 'cap');
      execFileSync('setfattr', ['-n', 'user.kept', '-v', 'yes', path.join(src, 'cap')]);
      execFileSync('mknod', ['-m', '0644', path.join(src, 'whiteout'), 'c', '0', '0']);
      execFileSync('mknod', ['-m', '0644', path.join(src, 'null'), 'c', '1', '3']);
      execFileSync('mkfifo', ['-m', '0600', path.join(src, 'fifo')]);
      fs.chmodSync(path.join(src, 'ro/sub'), 0o555);
      fs.chmodSync(path.join(src, 'ro'), 0o555);
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, src]);
      // After the chown, which drops file capabilities.
      execFileSync('setfattr', ['-n', 'security.capability', '-v', CAP_NET_RAW, path.join(src, 'cap')]);
      const dstParent = path.join(root, 'nobody');
      fs.mkdirSync(dstParent);
      fs.chownSync(dstParent, NOBODY, NOBODY);

      const out = runAsNobody(work, src, path.join(dstParent, 'clone'));
      expect(out, out.message).toMatchObject({ ok: true });
      expect(out.result).toMatchObject({ method: 'reflink', specials: 2, skippedSpecials: 1, skippedXattrs: 1, hardlinks: 1 });
      const dst = path.join(dstParent, 'clone');
      expect(compareTrees(walkTree(src), walkTree(dst), { ignore: (p) => p === 'null', fields: ['type', 'mode', 'content', 'rdev', 'owner', 'mtime', 'links'] })).toEqual([]);
      expect(fs.existsSync(path.join(dst, 'null'))).toBe(false);
      expect(fs.statSync(path.join(dst, 'ro')).mode & 0o7777).toBe(0o555);
      const xattrs = walkTree(dst).nodes.get('cap')!.xattrs;
      expect(Object.keys(xattrs)).toEqual(['user.kept']);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

// The two native file helpers short commands use: readBytes (a whole file in one pool job) and fsBatch (small steps
// in order in one pool job). Both must fail the way fs/promises fails, so callers that test `code` keep working.
import { mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBytes, readManyBytes, readText } from '../src/fs/read-text.js';
import { fsBatch, type FsStepError } from '../src/fs/batch.js';
import { native } from '../src/native.js';

const dir = mkdtempSync(join(tmpdir(), 'carrier-native-fs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: NodeJS.ErrnoException) => err,
  );
}

describe('readBytes', () => {
  it('reads small, empty and multi-chunk files whole', async () => {
    const small = join(dir, 'small');
    writeFileSync(small, '{"a":1}\n');
    expect(await readText(small)).toBe('{"a":1}\n');
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect((await readBytes(empty)).length).toBe(0);
    const big = join(dir, 'big');
    const bytes = Buffer.alloc(5 * 64 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 255;
    writeFileSync(big, bytes);
    expect((await readBytes(big)).equals(bytes)).toBe(true);
  });

  it('reads files whose size stat cannot tell (procfs), growing its buffer past the first page', async () => {
    expect((await readText('/proc/self/status')).includes('Pid:')).toBe(true);
    // the kernel's symbol table: far more than a page, its size 0 to stat, the same from one read to the next
    const symbols = readFileSync('/proc/kallsyms');
    expect(symbols.length).toBeGreaterThan(4096 * 4);
    expect((await readBytes('/proc/kallsyms')).equals(symbols)).toBe(true);
  });

  it('fails as fs/promises does: code, errno, syscall and path', async () => {
    const missing = join(dir, 'no', 'such');
    const ours = await failure(readBytes(missing));
    const node = await failure(readFile(missing));
    expect({ code: ours.code, errno: ours.errno, syscall: ours.syscall, path: ours.path, message: ours.message }).toEqual({
      code: node.code,
      errno: node.errno,
      syscall: node.syscall,
      path: node.path,
      message: node.message,
    });
    const isDir = await failure(readBytes(dir));
    expect(isDir.code).toBe('EISDIR');
  });
});

describe('readManyBytes', () => {
  it('reads several files by one job: each its bytes, or the error readBytes fails with for it', async () => {
    const a = join(dir, 'many-a');
    const b = join(dir, 'many-b');
    writeFileSync(a, 'first');
    writeFileSync(b, Buffer.alloc(70_000, 7));
    const missing = join(dir, 'many-missing');
    const answers = await readManyBytes([a, missing, b, dir]);
    expect(answers).toHaveLength(4);
    expect((answers[0] as Buffer).toString()).toBe('first');
    expect((answers[2] as Buffer).equals(readFileSync(b))).toBe(true);
    const gone = answers[1] as NodeJS.ErrnoException;
    const node = await failure(readFile(missing));
    expect([gone.code, gone.syscall, gone.path, gone.message]).toEqual([node.code, node.syscall, node.path, node.message]);
    expect((answers[3] as NodeJS.ErrnoException).code).toBe('EISDIR');
    expect(await readManyBytes([])).toEqual([]);
  });
});

describe('mapFile', () => {
  it('maps a whole file as a latin1 string or a Buffer, with what fstat says of it', () => {
    const file = join(dir, 'mapped');
    const bytes = Buffer.from(Array.from({ length: 3 * 4096 + 5 }, (_, i) => 32 + (i % 95)));
    writeFileSync(file, bytes);
    const st = statSync(file);
    const text = native.mapFile(file, true);
    expect(text?.data).toBe(bytes.toString('latin1'));
    expect([text?.size, text?.mtimeMs, text?.ino]).toEqual([st.size, st.mtimeMs, st.ino]);
    const buf = native.mapFile(file, false);
    expect(Buffer.isBuffer(buf?.data) && buf.data.equals(bytes)).toBe(true);
    // a mapping is private: the file replaced by rename leaves what was mapped as it was
    writeFileSync(`${file}.new`, 'other');
    renameSync(`${file}.new`, file);
    expect(buf?.data.equals(bytes)).toBe(true);
  });

  it('answers undefined for what it cannot map: missing, a directory, an empty file', () => {
    const empty = join(dir, 'mapped-empty');
    writeFileSync(empty, '');
    for (const p of [join(dir, 'mapped-missing'), dir, empty]) {
      expect(native.mapFile(p, true)).toBeUndefined();
      expect(native.mapFile(p, false)).toBeUndefined();
    }
  });
});

describe('fsBatch', () => {
  it('runs its steps in order: directories, a spread directory, a link to it, files, modes', async () => {
    const base = join(dir, 'layer');
    await fsBatch([
      { op: 'mkdir', path: base, mode: 0o700 },
      { op: 'spreadDir', path: base, name: 'diff', mode: 0o755 },
      { op: 'symlink', path: join(base, 'to-diff'), target: 'diff' },
      { op: 'write', path: join(base, 'link'), data: 'ABC', mode: 0o644 },
      { op: 'write', path: join(base, 'bytes'), data: Buffer.from([0, 1, 2, 255]), mode: 0o600 },
      { op: 'mkdirp', path: join(base, 'a', 'b', 'c'), mode: 0o700 },
      { op: 'mkdirp', path: join(base, 'a', 'b'), mode: 0o700 },
      { op: 'chmod', path: join(base, 'diff'), mode: 0o555 },
    ]);
    expect(statSync(base).mode & 0o7777).toBe(0o700 & ~process.umask());
    expect(statSync(join(base, 'diff')).mode & 0o7777).toBe(0o555);
    expect(readlinkSync(join(base, 'to-diff'))).toBe('diff');
    expect(readFileSync(join(base, 'link'), 'utf8')).toBe('ABC');
    expect([...readFileSync(join(base, 'bytes'))]).toEqual([0, 1, 2, 255]);
    expect(statSync(join(base, 'a', 'b', 'c')).isDirectory()).toBe(true);
  });

  it('write truncates a file that is there', async () => {
    const f = join(dir, 'trunc');
    writeFileSync(f, 'a much longer text than the new one');
    await fsBatch([{ op: 'write', path: f, data: 'short', mode: 0o644 }]);
    expect(readFileSync(f, 'utf8')).toBe('short');
  });

  it('stops at the first failing step and says which, with the fs error for it', async () => {
    const base = join(dir, 'stops');
    mkdirSync(base);
    const err = (await failure(
      fsBatch([
        { op: 'mkdir', path: join(base, 'one'), mode: 0o700 },
        { op: 'mkdir', path: base, mode: 0o700 },
        { op: 'mkdir', path: join(base, 'never'), mode: 0o700 },
      ]),
    )) as FsStepError;
    expect(err.step).toBe(1);
    expect(err.code).toBe('EEXIST');
    expect(err.syscall).toBe('mkdir');
    expect(err.path).toBe(base);
    expect(existsSync(join(base, 'one'))).toBe(true);
    expect(existsSync(join(base, 'never'))).toBe(false);
    const missing = (await failure(fsBatch([{ op: 'write', path: join(base, 'no', 'file'), data: 'x', mode: 0o644 }]))) as FsStepError;
    expect([missing.step, missing.code, missing.syscall]).toEqual([0, 'ENOENT', 'open']);
  });
});

// writeFileAtomic (src/store/atomic.ts): a file replaced in one native pool job — temp file made O_EXCL beside it,
// written, given its mode, flushed, renamed over it, the lock's last-writer token written, the directory flushed. Any
// failure leaves the old file as it was and no temp file behind (but one made by someone else).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../src/store/atomic.js';
import { StoreLock, TOKEN_SIZE } from '../src/store/lock.js';
import { native } from '../src/native.js';
import { CarrierError } from '../src/errors.js';
import { unprivilegedRunner } from './support/unprivileged.js';

let work: string;
let n = 0;
const freshDir = (): string => fs.mkdtempSync(path.join(work, `d${++n}-`));
const names = (dir: string): string[] => fs.readdirSync(dir).sort();

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-atomic-'));
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file with the bytes given (string or bytes), in the mode given whatever the umask, and leaves no temp file', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'records.json');
    fs.writeFileSync(file, 'old');
    for (const durable of [true, 'contents', false] as const) {
      await writeFileAtomic(file, `{"durable":${JSON.stringify(durable)},"é":1}`, 0o640, durable);
      expect(fs.readFileSync(file, 'utf8')).toBe(`{"durable":${JSON.stringify(durable)},"é":1}`);
    }
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    await writeFileAtomic(file, bytes.subarray(7), 0o604);
    expect(fs.readFileSync(file).equals(Buffer.from(bytes.subarray(7)))).toBe(true);
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(file, 'x', 0o644);
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(file).mode & 0o7777).toBe(0o644);
    expect(names(dir)).toEqual(['records.json']);
  });

  it('names its temp file as the orphan sweep reads it (a dot, the name, the pid, hex, .tmp)', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'layers.json');
    let seen: string[] = [];
    const after = new Promise<void>((resolve) => setTimeout(() => {
      seen = names(dir);
      resolve();
    }, 50));
    await writeFileAtomic(file, '[]', 0o600, true, { after });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(new RegExp(`^\\.layers\\.json\\.${process.pid}\\.[0-9a-f]+\\.tmp$`));
    expect(names(dir)).toEqual(['layers.json']);
  });

  it('fails with EEXIST on a temp name that exists, and touches neither that file nor the target', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'f'), 'old');
    fs.writeFileSync(path.join(dir, '.f.1.1.tmp'), 'someone else');
    const failure = await native.writeFileAtomic({ dir, temp: '.f.1.1.tmp', name: 'f', data: 'new', mode: 0o600, durable: 2 }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'EEXIST', syscall: 'open', path: path.join(dir, '.f.1.1.tmp'), errno: -17 });
    expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('old');
    expect(fs.readFileSync(path.join(dir, '.f.1.1.tmp'), 'utf8')).toBe('someone else');
  });

  it('fails with ENOENT as a CarrierError naming the directory when the directory is missing', async () => {
    const dir = path.join(freshDir(), 'missing');
    const err = await writeFileAtomic(path.join(dir, 'f'), 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CarrierError);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', path: dir, errno: -2 });
    expect((err as Error).message).toMatch(/^ENOENT: .*open '.*missing'$/);
  });

  it('leaves the old file whole and removes its temp file when the rename fails', async () => {
    const dir = freshDir();
    const target = path.join(dir, 'target');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'kept');
    const err = await writeFileAtomic(target, 'new').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EISDIR', syscall: 'rename' });
    expect(names(dir)).toEqual(['target']);
    expect(fs.readFileSync(path.join(target, 'inside'), 'utf8')).toBe('kept');
  });

  it('with `after`: renames nothing before it settles, and nothing at all (temp file removed) when it rejects', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'old');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const saved = writeFileAtomic(file, 'new', 0o600, true, { after: gate });
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    release();
    await saved;
    expect(fs.readFileSync(file, 'utf8')).toBe('new');

    const refused = writeFileAtomic(file, 'newer', 0o600, true, { after: Promise.reject(new Error('the first save failed')) });
    await expect(refused).rejects.toThrow('the first save failed');
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(names(dir)).toEqual(['f']);
  });

  it('writes the lock\'s new last-writer token once the new file is in place, and the lock then sees no other writer', async () => {
    const dir = freshDir();
    const lock = await StoreLock.open(path.join(dir, 'f.lock'));
    const other = await StoreLock.open(path.join(dir, 'f.lock'));
    try {
      await lock.lock(true);
      const before = fs.readFileSync(path.join(dir, 'f.lock'));
      const touch = lock.nextTouch();
      await writeFileAtomic(path.join(dir, 'f'), 'new', 0o600, true, { touch });
      const token = fs.readFileSync(path.join(dir, 'f.lock'));
      expect(token.length).toBe(TOKEN_SIZE);
      expect(token.equals(Buffer.from(touch.token))).toBe(true);
      expect(token.equals(before)).toBe(false);
      expect(await lock.modified()).toBe(false);
      lock.unlock(true);
      await other.lock(false);
      expect(await other.modified()).toBe(true);
      other.unlock(false);
    } finally {
      await lock.close();
      await other.close();
    }
  });

  it('fails with CARRIER_CLOSED when the store lock is closed while the save waits to rename, leaving the old file and no temp file', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'f'), 'old');
    const lock = await StoreLock.open(path.join(dir, 'f.lock'));
    await lock.lock(true);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const saved = writeFileAtomic(path.join(dir, 'f'), 'new', 0o600, true, { touch: lock.nextTouch(), after: gate });
    lock.unlock(true);
    await lock.close();
    release();
    await expect(saved).rejects.toMatchObject({ code: 'CARRIER_CLOSED' });
    expect(names(dir)).toEqual(['f', 'f.lock']);
    expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('old');
  });

  it('fails with EACCES for an unprivileged writer in a directory it may not write, leaving the old file', () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'f'), 'old');
    const run = unprivilegedRunner(freshDir());
    fs.chmodSync(work, 0o755);
    expect(run('writeFileAtomic', path.join(dir, 'f'), 'new')).toMatchObject({ ok: false, code: 'EACCES', syscall: 'open', name: 'CarrierError' });
    expect(names(dir)).toEqual(['f']);
    expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('old');
  });
});

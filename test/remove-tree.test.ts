// removeTree (src/fs/remove.ts): `rm -rf` in one native pool job. Never follows a link, removes what an unprivileged
// owner may only remove after granting itself write (a layer's 0555 diff/, an image's 0000 directories), and says
// which entry it could not remove.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from '../src/fs/remove.js';
import { NOBODY, unprivilegedRunner } from './support/unprivileged.js';

let work: string;
let n = 0;
const freshDir = (): string => fs.mkdtempSync(path.join(work, `d${++n}-`));

/** A layer-like tree: nested directories and files, a symlink to a directory outside, read-only and 0000 directories. */
function makeTree(root: string, outside: string): void {
  fs.mkdirSync(path.join(root, 'diff/usr/lib'), { recursive: true });
  fs.writeFileSync(path.join(root, 'diff/usr/lib/libx.so'), 'x'.repeat(10_000));
  fs.writeFileSync(path.join(root, 'diff/empty'), '');
  fs.symlinkSync(outside, path.join(root, 'diff/usr/escape'));
  fs.symlinkSync('../nowhere', path.join(root, 'diff/dangling'));
  fs.mkdirSync(path.join(root, 'diff/locked/inner'), { recursive: true });
  fs.writeFileSync(path.join(root, 'diff/locked/inner/f'), 'f');
  fs.mkdirSync(path.join(root, 'work/work'), { recursive: true });
  fs.writeFileSync(path.join(root, 'link'), 'ABC');
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(root, 'diff/usr', `f${i}`), String(i));
  fs.chmodSync(path.join(root, 'diff/locked/inner'), 0o000);
  fs.chmodSync(path.join(root, 'diff/locked'), 0o555);
  fs.chmodSync(path.join(root, 'diff/usr'), 0o555);
  fs.chmodSync(path.join(root, 'diff'), 0o555);
}

function makeOutside(parent: string): string {
  const outside = path.join(parent, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'kept'), 'kept');
  return outside;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-rmtree-'));
  fs.chmodSync(work, 0o755);
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('removeTree', () => {
  it('removes a whole tree, read-only and 0000 directories included, without following a link out of it', async () => {
    const dir = freshDir();
    const outside = makeOutside(dir);
    makeTree(path.join(dir, 'layer'), outside);
    await removeTree(path.join(dir, 'layer'));
    expect(fs.readdirSync(dir)).toEqual(['outside']);
    expect(fs.readFileSync(path.join(outside, 'kept'), 'utf8')).toBe('kept');
  });

  it('is done when the path is missing, or its parent is', async () => {
    const dir = freshDir();
    await removeTree(path.join(dir, 'missing'));
    await removeTree(path.join(dir, 'missing/deeper'));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('removes a file, and a link to a directory without touching the directory', async () => {
    const dir = freshDir();
    const outside = makeOutside(dir);
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    fs.symlinkSync(outside, path.join(dir, 'link'));
    await removeTree(path.join(dir, 'file'));
    await removeTree(path.join(dir, 'link') + '/');
    expect(fs.readdirSync(dir)).toEqual(['outside']);
    expect(fs.readdirSync(outside)).toEqual(['kept']);
  });

  it('as an unprivileged owner: grants itself write where it must, and removes the whole tree', () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o755);
    const outside = makeOutside(dir);
    const layer = path.join(dir, 'layer');
    fs.mkdirSync(layer);
    fs.chownSync(layer, NOBODY, NOBODY);
    const run = unprivilegedRunner(freshDir());
    // the tree made as root, then handed to nobody with its modes kept
    makeTree(layer, outside);
    const chownTree = (p: string): void => {
      fs.lchownSync(p, NOBODY, NOBODY);
      if (fs.lstatSync(p).isDirectory()) {
        const mode = fs.statSync(p).mode & 0o7777;
        fs.chmodSync(p, 0o700);
        for (const e of fs.readdirSync(p)) chownTree(path.join(p, e));
        fs.chmodSync(p, mode);
      }
    };
    chownTree(layer);
    fs.chownSync(dir, NOBODY, NOBODY);
    expect(run('removeTree', layer)).toEqual({ ok: true });
    expect(fs.readdirSync(dir)).toEqual(['outside']);
    expect(fs.readFileSync(path.join(outside, 'kept'), 'utf8')).toBe('kept');
  });

  it('fails as a CarrierError naming the entry it may not remove (another owner\'s directory), and keeps the rest', () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o755);
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(path.join(tree, 'root-owned'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'root-owned/file'), 'x');
    fs.chmodSync(path.join(tree, 'root-owned'), 0o755);
    fs.chownSync(tree, NOBODY, NOBODY);
    fs.chownSync(dir, NOBODY, NOBODY);
    const run = unprivilegedRunner(freshDir());
    const out = run('removeTree', tree);
    expect(out).toMatchObject({ ok: false, code: 'EACCES', syscall: 'unlink', path: path.join(tree, 'root-owned/file'), name: 'CarrierError' });
    expect(fs.readFileSync(path.join(tree, 'root-owned/file'), 'utf8')).toBe('x');
  });

  it('never removes through a mount inside the tree, nor empties a tree that is a mount: EBUSY, the mounted files kept', async () => {
    /** A tmpfs with a file on `at`; removing `tree` fails with EBUSY at `at` and keeps the file; then unmounted. */
    const refusedAt = async (tree: string, at: string): Promise<void> => {
      const r = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', at]);
      expect(r.status, `mount tmpfs on ${at}: ${r.stderr}`).toBe(0);
      try {
        fs.writeFileSync(path.join(at, 'precious'), 'keep');
        const failed = await removeTree(tree).then(() => undefined, (err: NodeJS.ErrnoException) => err);
        expect(failed).toMatchObject({ code: 'EBUSY', path: at });
        expect(fs.readFileSync(path.join(at, 'precious'), 'utf8')).toBe('keep');
      } finally {
        spawnSync('umount', [at]);
      }
    };
    const tree = path.join(freshDir(), 'tree');
    fs.mkdirSync(path.join(tree, 'upper/mnt'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'upper/own'), 'own');
    await refusedAt(tree, path.join(tree, 'upper/mnt'));
    // unmounted, the same tree goes
    await removeTree(tree);
    expect(fs.existsSync(tree)).toBe(false);
    // the tree itself a mount point: not emptied
    const top = path.join(freshDir(), 'top');
    fs.mkdirSync(top);
    await refusedAt(top, top);
  });
});

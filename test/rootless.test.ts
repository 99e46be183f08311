// Rootless extraction, run for real as an unprivileged user (useradd + setpriv), not as root pretending.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, lstatSync, readdirSync, rmSync, chownSync, chmodSync, accessSync, constants } from 'node:fs';
import { buildTestImage, requireTools, toDockerArchive, type TestImage } from './support/images.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

const USER = 'carrier-rootless';
const CLI = resolve(__dirname, '../dist/cli/main.js');

function ensureUser(): { uid: number; gid: number } {
  const probe = spawnSync('id', ['-u', USER]);
  if (probe.status !== 0) {
    const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
    if (made.status !== 0) throw new Error(`useradd failed (install Debian 'passwd'): ${made.stderr}`);
  }
  const uid = Number(execFileSync('id', ['-u', USER]).toString());
  const gid = Number(execFileSync('id', ['-g', USER]).toString());
  return { uid, gid };
}

/** Runs the CLI as the unprivileged user; setpriv comes from Debian's util-linux. */
function asUser(ids: { uid: number; gid: number }, args: string[], env: Record<string, string> = {}) {
  return spawnSync(
    'setpriv',
    [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--inh-caps=-all', process.execPath, CLI, ...args],
    { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', ...env } },
  );
}

async function tarOf(entries: Array<{ header: tarStream.Headers; body?: string }>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((r) => pack.on('end', r));
  for (const e of entries) {
    await new Promise<void>((res, rej) => pack.entry(e.header, e.body ?? '', (err) => (err ? rej(err) : res())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function xattr(path: string, name: string): string | undefined {
  const r = spawnSync('getfattr', ['--only-values', '-h', '-n', name, path], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

describe('rootless extraction as a real unprivileged user', () => {
  let ids: { uid: number; gid: number };
  let work: string;
  let blob: string;
  let tar: Buffer;
  const mtime = new Date('2021-03-04T05:06:07Z');

  beforeAll(async () => {
    expect(process.geteuid?.(), 'the rootless tests create a user and must start as root').toBe(0);
    ids = ensureUser();
    try {
      accessSync(CLI, constants.R_OK);
    } catch {
      throw new Error(`${CLI} is missing: run 'npm run build' first`);
    }
    const probe = asUser(ids, ['version']);
    if (probe.status !== 0) {
      throw new Error(`the unprivileged user cannot run the CLI (is the checkout readable by others?): ${probe.stderr}`);
    }
    work = mkdtempSync(join(tmpdir(), 'carrier-rootless-'));
    chownSync(work, ids.uid, ids.gid);
    const common = { uid: 1234, gid: 2345, mtime };
    tar = await tarOf([
      { header: { ...common, name: 'etc/', type: 'directory', mode: 0o755 } },
      { header: { ...common, name: 'etc/owned', mode: 0o644 }, body: 'owned by 1234:2345\n' },
      { header: { ...common, name: 'bin/', type: 'directory', mode: 0o555 } },
      { header: { ...common, name: 'bin/su', mode: 0o4755 }, body: 'setuid\n' },
      { header: { ...common, name: 'bin/secret', mode: 0o400 }, body: 'owner-only\n' },
      { header: { ...common, name: 'dev/', type: 'directory', mode: 0o755 } },
      { header: { ...common, name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 } },
      { header: { ...common, name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 } },
      { header: { ...common, name: 'dev/fifo', type: 'fifo', mode: 0o600 } },
      { header: { ...common, name: 'gone/', type: 'directory', mode: 0o755 } },
      { header: { ...common, name: 'gone/.wh.removed', mode: 0o644 } },
      { header: { ...common, name: 'opaque/.wh..wh..opq', mode: 0o644 } },
      { header: { ...common, name: 'opaque/kept', mode: 0o644 }, body: 'kept\n' },
      {
        header: {
          ...common,
          name: 'attrs',
          mode: 0o644,
          pax: { 'SCHILY.xattr.user.note': 'hello', 'SCHILY.xattr.trusted.secret': 'no', 'SCHILY.xattr.security.capability': 'cap' },
        },
        body: 'x',
      },
    ]);
    blob = join(work, 'layer.tar.gz');
    writeFileSync(blob, gzipSync(tar));
    chownSync(blob, ids.uid, ids.gid);
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function freshDir(name: string): string {
    const dir = join(work, name);
    mkdirSync(dir);
    chownSync(dir, ids.uid, ids.gid);
    return dir;
  }

  it('extracts a layer without privilege: ownership recorded not applied, devices skipped, modes kept', () => {
    const dir = freshDir('diff');
    const run = asUser(ids, ['layer', 'apply', '--tar-split', join(work, 'diff.tar-split.gz'), blob, dir]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.diffDigest).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    expect(result.uidset).toEqual([1234]);
    expect(result.gidset).toEqual([2345]);

    const owned = lstatSync(join(dir, 'etc/owned'));
    expect([owned.uid, owned.gid]).toEqual([ids.uid, ids.gid]);
    expect(readFileSync(join(dir, 'etc/owned'), 'utf8')).toBe('owned by 1234:2345\n');
    expect(owned.mtime.getTime()).toBe(mtime.getTime());
    expect(lstatSync(join(dir, 'bin/su')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(dir, 'bin/secret')).mode & 0o7777).toBe(0o400);
    expect(lstatSync(join(dir, 'bin')).mode & 0o7777).toBe(0o555);
    expect(lstatSync(join(dir, 'bin')).mtime.getTime()).toBe(mtime.getTime());
    expect(lstatSync(join(dir, 'dev/fifo')).isFIFO()).toBe(true);

    expect(readdirSync(join(dir, 'dev')).sort()).toEqual(['fifo']);
    const skipped = result.skipped as Array<{ path: string; reason: string }>;
    expect(skipped.filter((s) => s.reason.includes('device')).map((s) => s.path).sort()).toEqual(['dev/null', 'dev/sda']);
    expect(skipped.some((s) => s.path === 'attrs' && s.reason.includes('trusted.secret'))).toBe(true);
    expect(skipped.some((s) => s.path === 'attrs' && s.reason.includes('security.capability'))).toBe(true);
  });

  it('stores whiteouts as 0/0 character devices and opaque dirs as user.overlay.opaque', () => {
    const dir = freshDir('whiteouts');
    const run = asUser(ids, ['layer', 'apply', blob, dir]);
    expect(run.status, run.stderr).toBe(0);
    const wh = lstatSync(join(dir, 'gone/removed'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(readdirSync(join(dir, 'gone'))).toEqual(['removed']);
    expect(xattr(join(dir, 'opaque'), 'user.overlay.opaque')).toBe('y');
    expect(xattr(join(dir, 'opaque'), 'trusted.overlay.opaque')).toBeUndefined();
    expect(readdirSync(join(dir, 'opaque'))).toEqual(['kept']);
    expect(xattr(join(dir, 'attrs'), 'user.note')).toBe('hello');
    expect(xattr(join(dir, 'attrs'), 'trusted.secret')).toBeUndefined();
  });

  it('rebuilds the original tar as the same user from tar-split and the extracted files', () => {
    const dir = freshDir('roundtrip');
    const split = join(work, 'roundtrip.tar-split.gz');
    const applied = asUser(ids, ['layer', 'apply', '--tar-split', split, blob, dir]);
    expect(applied.status, applied.stderr).toBe(0);
    const out = join(work, 'rebuilt.tar');
    const rebuilt = asUser(ids, ['layer', 'assemble', '-o', out, split, dir]);
    expect(rebuilt.status, rebuilt.stderr).toBe(0);
    expect(readFileSync(out).equals(tar)).toBe(true);
  });

  it('leaves the directory empty when the diff_id does not match, even with read-only dirs inside', () => {
    const dir = freshDir('mismatch');
    const wrong = `sha256:${'0'.repeat(64)}`;
    const run = asUser(ids, ['layer', 'apply', '--expected-diff-id', wrong, blob, dir]);
    expect(run.status).toBe(125);
    expect(run.stderr).toContain('CARRIER_DIGEST_MISMATCH');
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('the store as a real unprivileged user, in its default location', () => {
  let ids: { uid: number; gid: number };
  let home: string;
  let archive: string;
  let image: TestImage;

  beforeAll(() => {
    expect(process.geteuid?.(), 'the rootless tests create a user and must start as root').toBe(0);
    requireTools();
    ids = ensureUser();
    const work = mkdtempSync(join(tmpdir(), 'carrier-rootless-store-'));
    chmodSync(work, 0o755);
    image = buildTestImage(join(work, 'img'), { label: 'rootless' });
    archive = join(work, 'image.tar');
    toDockerArchive(image, archive, 'localhost/rootless:1');
    chmodSync(archive, 0o644);
    home = join(work, 'home');
    mkdirSync(home);
    chownSync(home, ids.uid, ids.gid);
  });

  it('loads, lists, tags and removes images in ~/.local/share/carrier/storage with no privilege', () => {
    const env = { HOME: home };
    const loaded = asUser(ids, ['load', '-i', archive], env);
    expect(loaded.status, loaded.stderr).toBe(0);
    expect(loaded.stdout).toContain('Loaded image: localhost/rootless:1');
    const root = join(home, '.local/share/carrier/storage');
    const images = JSON.parse(readFileSync(join(root, 'overlay-images/images.json'), 'utf8')) as { id: string; names: string[] }[];
    expect(images.map((i) => [i.id, i.names])).toEqual([[image.configDigest.slice(7), ['localhost/rootless:1']]]);
    expect(lstatSync(join(root, 'overlay-images/images.json')).uid).toBe(ids.uid);
    // run state falls back to a private 0700 directory when XDG_RUNTIME_DIR is unset
    const runroot = join(tmpdir(), `carrier-run-${ids.uid}`);
    expect(lstatSync(runroot).mode & 0o777).toBe(0o700);
    expect(lstatSync(runroot).uid).toBe(ids.uid);
    // overlay whiteouts an unprivileged user can make: 0/0 char devices and user.overlay.opaque
    const layers = JSON.parse(readFileSync(join(root, 'overlay-layers/layers.json'), 'utf8')) as { id: string; 'diff-digest': string }[];
    const second = layers.find((l) => l['diff-digest'] === image.diffIDs[1])!;
    const diff = join(root, 'overlay', second.id, 'diff');
    expect(lstatSync(join(diff, 'data/gone.txt')).isCharacterDevice()).toBe(true);
    expect(xattr(join(diff, 'data/opaque'), 'user.overlay.opaque')).toBe('y');

    const listed = asUser(ids, ['images', '--format', 'json'], env);
    expect(listed.status, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { Id: string }[]).map((i) => i.Id)).toEqual([image.configDigest.slice(7)]);
    const tagged = asUser(ids, ['tag', 'localhost/rootless:1', 'rootless:2'], env);
    expect(tagged.status, tagged.stderr).toBe(0);
    const removed = asUser(ids, ['rmi', '-f', image.configDigest.slice(7, 19)], env);
    expect(removed.status, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`Deleted: ${image.configDigest.slice(7)}`);
    expect(readdirSync(join(root, 'overlay')).sort()).toEqual(['.has-mount-program', 'l']);
    const none = asUser(ids, ['image', 'exists', 'rootless:2'], env);
    expect(none.status).toBe(1);
  });
});

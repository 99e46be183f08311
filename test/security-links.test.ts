/**
 * Hostile layers, part 2: links, metadata, whiteouts, the root, devices, duplicates.
 * SECURITY.md classes: hardlink out, hardlink through symlink, hardlink to symlink then write, chmod through symlink,
 * whiteout escapes, root replaced, duplicates (+ device nodes from the extractor rules).
 *
 * Every test: (1) the apply rejects with the stated code, or resolves with the entry neutralised inside the layer;
 * (2) nothing outside the layer root changed (checked by `attack`); (3) on rejection the layer dir is empty.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import {
  attack,
  device,
  dir,
  expectApplied,
  expectContained,
  expectRefused,
  file,
  gz,
  hardlink,
  inLayer,
  lstatIn,
  parents,
  readIn,
  sandboxed,
  skippedRoot,
  symlink,
  tar,
  tree,
  type Sandbox,
  T,
  MODES,
  PAYLOAD,
  up,
  upTmp,
} from './support/hostile.js';


const strip = (p: string): string => p.replace(/^(\.?\/)+/, '').replace(/\/+$/, '');

// ---------------------------------------------------------------------------------------------------------------
describe('hardlinks out of the layer', () => {
  for (const linkSpelling of ['ustar', 'pax', 'gnu'] as const) {
    it(
      `refuses a hardlink that points outside the layer root (${linkSpelling} link target)`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(hardlink('h', up(sb), { linkSpelling })), { rootless: true });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  for (const m of MODES) {
    it(
      `refuses a hardlink to a/../../victim/passwd (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(dir('a/'), hardlink('h', 'a/../' + up(sb))), { rootless: m.rootless });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  it(
    'refuses a hardlink into the /tmp victim by ../../',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('ok', 'fine'), hardlink('h', upTmp(sb))), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a hardlink out of the layer in a gzip layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, gz(tar(hardlink('h', up(sb, 'shadow')))), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a hardlink whose own name climbs out (../victim/h link to f)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('f', PAYLOAD), hardlink(up(sb, 'h'), 'f')), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'never links the real victim through an absolute hardlink target (no in-root file: refused)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(hardlink('h', path.join(sb.victim, 'passwd'))), { rootless: true });
      expectContained(sb, o, (r) => {
        // Only acceptable success: the entry was skipped and reported.
        expect(r.skipped.map((s) => strip(s.path))).toContain('h');
        expect(fs.existsSync(inLayer(sb, 'h'))).toBe(false);
      });
    }),
    T,
  );

  it(
    'resolves an absolute hardlink target to the file of that name inside the layer',
    sandboxed(async (sb) => {
      const target = path.join(sb.victim, 'passwd');
      const o = await attack(sb, tar(parents(target), file(target, PAYLOAD), hardlink('h', target)), { rootless: false });
      expectApplied(o);
      expect(lstatIn(sb, 'h').ino).toBe(lstatIn(sb, target).ino);
      expect(readIn(sb, 'h')).toBe(PAYLOAD);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('hardlinks through a symlink', () => {
  for (const m of MODES) {
    it(
      `keeps s -> <victim>, h link to s/passwd inside the layer (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink('s', sb.victim), hardlink('h', 's/passwd')), { rootless: m.rootless });
        expectContained(sb, o);
      }),
      T,
    );
  }

  it(
    'keeps s -> ../victim, h link to s/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('s', '../victim'), hardlink('h', 's/passwd')), { rootless: true });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'keeps s -> /tmp, h link to s/carrier-victim-<token>/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('s', '/tmp'), hardlink('h', `s/${path.basename(sb.tmpVictim)}/passwd`)), { rootless: false });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'keeps s -> <victim>, h link to s/shadow (PAX linkpath) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('s', sb.victim), hardlink('h', 's/shadow', { linkSpelling: 'pax' })), { rootless: true });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'resolves s -> ../victim, h link to s/passwd to the in-layer victim/passwd',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('victim/'), file('victim/passwd', PAYLOAD), symlink('s', '../victim'), hardlink('h', 's/passwd')), {
        rootless: true,
      });
      expectApplied(o);
      expect(lstatIn(sb, 'h').ino).toBe(lstatIn(sb, 'victim/passwd').ino);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('hardlinks to a symlink', () => {
  for (const m of MODES) {
    it(
      `links the symlink itself, never its target (l -> <victim>/passwd, h link to l) (${m.label})`,
      sandboxed(async (sb) => {
        const target = path.join(sb.victim, 'passwd');
        const o = await attack(sb, tar(symlink('l', target), hardlink('h', 'l', { mode: 0o777 })), { rootless: m.rootless });
        expectApplied(o);
        expect(lstatIn(sb, 'h').isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(inLayer(sb, 'h'))).toBe(target);
        expect(lstatIn(sb, 'h').ino).toBe(lstatIn(sb, 'l').ino);
      }),
      T,
    );
  }

  it(
    'keeps a write through a hardlinked symlink (l -> ../victim, h link to l, h/passwd) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('l', '../victim'), hardlink('h', 'l'), file('h/passwd', PAYLOAD)), { rootless: true });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'refuses rewriting a hardlinked symlink as a file (l -> ../victim/passwd, h link to l, h) as a duplicate',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('l', up(sb)), hardlink('h', 'l'), file('h', PAYLOAD)), { rootless: false });
      expectRefused(sb, o, 'CARRIER_DUPLICATE_ENTRY');
    }),
    T,
  );

  it(
    'links a chain of hardlinks to a symlink without following it (l -> /tmp/<victim>/passwd, h -> l, h2 -> h)',
    sandboxed(async (sb) => {
      const target = path.join(sb.tmpVictim, 'passwd');
      const o = await attack(sb, tar(symlink('l', target), hardlink('h', 'l'), hardlink('h2', 'h', { linkSpelling: 'gnu' })), {
        rootless: true,
      });
      expectApplied(o);
      for (const p of ['h', 'h2']) {
        expect(lstatIn(sb, p).isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(inLayer(sb, p))).toBe(target);
      }
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('metadata never follows a symlink', () => {
  for (const m of MODES) {
    it(
      `does not chmod/chown/utime the target of l -> ../victim/passwd (setuid mode, foreign owner) (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink('l', up(sb), { mode: 0o4777, uid: 4242, gid: 4242, mtime: 1 })), { rootless: m.rootless });
        expectApplied(o);
        expect(fs.readlinkSync(inLayer(sb, 'l'))).toBe(up(sb)); // stored verbatim
      }),
      T,
    );
  }

  it(
    'does not chmod the target of an absolute symlink l -> <victim>/shadow',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('l', path.join(sb.victim, 'shadow'), { mode: 0o777 })), { rootless: true });
      expectApplied(o);
    }),
    T,
  );

  it(
    'does not chmod through a hardlink to a symlink (l -> ../victim/passwd, h link to l with mode 0777, uid 4242)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('l', up(sb)), hardlink('h', 'l', { mode: 0o777, uid: 4242, gid: 4242 })), { rootless: false });
      expectContained(sb, o, () => expect(lstatIn(sb, 'h').isSymbolicLink()).toBe(true));
    }),
    T,
  );

  it(
    'does not chmod/utime a victim directory through d -> ../victim (mode 0700, mtime 1)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('d', '../victim', { mode: 0o700, mtime: 1, uid: 4242 })), { rootless: false });
      expectApplied(o);
    }),
    T,
  );

  it(
    'does not apply PAX mtime/atime/uid records through l -> ../victim/marker',
    sandboxed(async (sb) => {
      const o = await attack(
        sb,
        tar(symlink('l', up(sb, 'marker'), { paxExtra: [['mtime', '1.5'], ['atime', '1.5'], ['uid', '4242'], ['gid', '4242']] })),
        { rootless: false },
      );
      expectApplied(o);
    }),
    T,
  );

  it(
    'does not set a user xattr through l -> ../victim/passwd',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('l', up(sb), { paxExtra: [['SCHILY.xattr.user.carrier', 'pwned']] })), { rootless: true });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'does not set a trusted xattr through d -> <victim> (privileged)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('d', sb.victim, { paxExtra: [['SCHILY.xattr.trusted.overlay.opaque', 'y']] })), {
        rootless: false,
      });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'does not chmod/utime a victim subdirectory through a symlinked parent (s -> ../victim, s/sub/ mode 0777 mtime 1)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('s', '../victim'), dir('s/sub/', { mode: 0o777, mtime: 1, uid: 4242 })), { rootless: false });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'does not apply deferred directory metadata after the directory was swapped (a/sub/ mtime 1, a -> ../victim)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('a/sub/', { mode: 0o700, mtime: 1 }), symlink('a', '../victim')), { rootless: false });
      expectContained(sb, o);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('overlayfs control xattrs from the layer', () => {
  const overlayXattrs = (p: string): string =>
    execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', p], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /overlay\./.test(l))
      .join(';');

  it(
    'never takes trusted.overlay.redirect from a layer (privileged)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('d/', { paxExtra: [['SCHILY.xattr.trusted.overlay.redirect', '/../../victim']] })), { rootless: false });
      const r = expectApplied(o);
      expect(r.skipped.map((s) => strip(s.path))).toContain('d');
      expect(overlayXattrs(inLayer(sb, 'd'))).toBe('');
    }),
    T,
  );

  it(
    'never takes user.overlay.redirect from a layer (rootless)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('d/', { paxExtra: [['SCHILY.xattr.user.overlay.redirect', '/../../victim']] })), { rootless: true });
      const r = expectApplied(o);
      expect(r.skipped.map((s) => strip(s.path))).toContain('d');
      expect(overlayXattrs(inLayer(sb, 'd'))).toBe('');
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('whiteouts', () => {
  for (const name of ['.wh.', '.wh..', '.wh...']) {
    it(
      `refuses the whiteout ${name}`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(file('ok', 'fine'), file(name)), { rootless: true });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  for (const name of ['a/.wh..', 'a/.wh...']) {
    it(
      `refuses the whiteout ${name} inside a directory`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(dir('a/'), file('a/f', 'x'), file(name)), { rootless: false });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  it(
    'refuses the whiteout ../.wh.victim',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('../.wh.victim')), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses the whiteout ../victim/.wh.passwd',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file(up(sb, '.wh.passwd'))), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses the whiteout .wh... spelled as a PAX path',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('a/.wh...', '', { spelling: 'pax' })), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses the whiteout .wh. spelled as a GNU long name',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('.wh.', '', { spelling: 'gnu' })), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  for (const name of ['.wh.', '.wh..', '.wh...']) {
    it(
      `refuses the whiteout ${name} with aufs whiteouts too`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(file(name)), { rootless: true, whiteouts: 'aufs' });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  for (const m of MODES) {
    it(
      `keeps a whiteout through a symlinked dir (s -> ../victim, s/.wh.passwd) inside the layer (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink('s', '../victim'), file('s/.wh.passwd')), { rootless: m.rootless });
        expectContained(sb, o);
      }),
      T,
    );
  }

  it(
    'keeps an aufs whiteout through a symlinked dir (s -> <victim>, s/.wh.passwd) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('s', sb.victim), file('s/.wh.passwd')), { rootless: true, whiteouts: 'aufs' });
      expectContained(sb, o);
    }),
    T,
  );

  for (const m of MODES) {
    it(
      `keeps an opaque marker through a symlinked dir (s -> <victim>, s/.wh..wh..opq) off the victim (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink('s', sb.victim), file('s/.wh..wh..opq')), { rootless: m.rootless });
        expectContained(sb, o);
      }),
      T,
    );
  }
});

// ---------------------------------------------------------------------------------------------------------------
describe('entries that name the layer root', () => {
  const rootStaysDir = (sb: Sandbox): void => {
    expect(fs.lstatSync(sb.layer).isDirectory()).toBe(true);
  };

  for (const name of ['.', '/', './']) {
    it(
      `skips the root '${name}' as a symlink to the victim and keeps later entries inside`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink(name, '../victim'), file('passwd', PAYLOAD)), { rootless: true });
        const r = expectApplied(o);
        expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
        rootStaysDir(sb);
        expect(tree(sb.layer)).toEqual(['passwd']);
        expect(readIn(sb, 'passwd')).toBe(PAYLOAD);
      }),
      T,
    );
  }

  it(
    "skips the root '.' as a symlink to the victim (privileged)",
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('.', sb.victim), file('passwd', PAYLOAD)), { rootless: false });
      const r = expectApplied(o);
      expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
      rootStaysDir(sb);
      expect(readIn(sb, 'passwd')).toBe(PAYLOAD);
    }),
    T,
  );

  it(
    "skips the root '.' as a symlink spelled as a PAX path",
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('.', '../victim', { spelling: 'pax' }), file('shadow', PAYLOAD)), { rootless: true });
      const r = expectApplied(o);
      expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
      rootStaysDir(sb);
      expect(tree(sb.layer)).toEqual(['shadow']);
    }),
    T,
  );

  it(
    "skips the root './' as a symlink spelled as a GNU long name",
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('./', sb.tmpVictim, { spelling: 'gnu' }), file('passwd', PAYLOAD)), { rootless: true });
      const r = expectApplied(o);
      expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
      rootStaysDir(sb);
      expect(tree(sb.layer)).toEqual(['passwd']);
    }),
    T,
  );

  for (const name of ['.', '/']) {
    it(
      `skips the root '${name}' as a regular file`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(file(name, PAYLOAD), file('after', 'x')), { rootless: false });
        const r = expectApplied(o);
        expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
        rootStaysDir(sb);
        expect(tree(sb.layer)).toEqual(['after']);
      }),
      T,
    );
  }

  it(
    "skips the root '.' as a hardlink",
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('f', PAYLOAD), hardlink('.', 'f')), { rootless: true });
      const r = expectApplied(o);
      expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
      rootStaysDir(sb);
      expect(tree(sb.layer)).toEqual(['f']);
    }),
    T,
  );

  it(
    "skips the root './' as a character device (privileged)",
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(device('./', 'char', 1, 3)), { rootless: false });
      const r = expectApplied(o);
      expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
      rootStaysDir(sb);
      expect(tree(sb.layer)).toEqual([]);
    }),
    T,
  );

  it(
    "skips the root '/' as a symlink in a gzip layer",
    sandboxed(async (sb) => {
      const o = await attack(sb, gz(tar(symlink('/', sb.tmpVictim), file('/passwd', PAYLOAD))), { rootless: true });
      const r = expectApplied(o);
      expect(skippedRoot(r), JSON.stringify(r.skipped)).toBe(true);
      rootStaysDir(sb);
      expect(readIn(sb, 'passwd')).toBe(PAYLOAD);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('device nodes', () => {
  it(
    'skips and reports a character device when rootless',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('dev/'), device('dev/null', 'char', 1, 3)), { rootless: true });
      const r = expectApplied(o);
      expect(r.skipped.map((s) => strip(s.path))).toContain('dev/null');
      expect(fs.existsSync(inLayer(sb, 'dev/null'))).toBe(false);
    }),
    T,
  );

  it(
    'skips and reports a block device when rootless',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('dev/'), device('dev/sda', 'block', 8, 0)), { rootless: true });
      const r = expectApplied(o);
      expect(r.skipped.map((s) => strip(s.path))).toContain('dev/sda');
      expect(fs.existsSync(inLayer(sb, 'dev/sda'))).toBe(false);
    }),
    T,
  );

  it(
    'creates a character device inside the layer when privileged',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('dev/'), device('dev/null', 'char', 1, 3)), { rootless: false });
      expectApplied(o);
      const st = lstatIn(sb, 'dev/null');
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(0x103);
    }),
    T,
  );

  it(
    'keeps a device node created through a symlinked dir (s -> ../victim, s/null) inside the layer (privileged)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('s', '../victim'), device('s/null', 'char', 1, 3)), { rootless: false });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'refuses a device node whose path climbs out (../victim/null, privileged)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(device(up(sb, 'null'), 'char', 1, 3)), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('symlink loops and failure cleanup', () => {
  it(
    'keeps a write through a symlink loop (a -> b, b -> a, a/x) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('a', 'b'), symlink('b', 'a'), file('a/x', PAYLOAD)), { rootless: true });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'keeps a write through a 50-link symlink chain ending at ../victim inside the layer',
    sandboxed(async (sb) => {
      const parts: Buffer[] = [];
      for (let i = 0; i < 50; i++) parts.push(symlink(`l${i}`, i === 49 ? '../victim' : `l${i + 1}`));
      const o = await attack(sb, tar(...parts, file('l0/passwd', PAYLOAD)), { rootless: false });
      expectContained(sb, o);
    }),
    T,
  );

  it(
    'empties the layer dir (0000 dirs, setuid files and symlinks included) when the DiffID does not match',
    sandboxed(async (sb) => {
      const bytes = tar(
        dir('locked/', { mode: 0 }),
        dir('locked/inner/', { mode: 0 }),
        file('locked/inner/f', PAYLOAD, { mode: 0o4755 }),
        symlink('locked/out', '../victim'),
        dir('ro/', { mode: 0o555 }),
        file('ro/g', 'x', { mode: 0 }),
      );
      const wrong = 'sha256:' + createHash('sha256').update('not this layer').digest('hex');
      const o = await attack(sb, bytes, { rootless: false, expectedDiffID: wrong });
      expectRefused(sb, o, 'CARRIER_DIGEST_MISMATCH');
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('duplicate paths', () => {
  const dup = (title: string, build: (sb: Sandbox) => Buffer, rootless = true, compress = false): void => {
    it(
      `refuses ${title}`,
      sandboxed(async (sb) => {
        const bytes = build(sb);
        const o = await attack(sb, compress ? gz(bytes) : bytes, { rootless });
        expectRefused(sb, o, 'CARRIER_DUPLICATE_ENTRY');
      }),
      T,
    );
  };

  dup('the same file twice', () => tar(file('a', 'one'), file('a', 'two')));
  dup('a file then a directory of the same name', () => tar(file('a', 'one'), dir('a/')));
  dup('a directory then a file of the same name', () => tar(dir('a/'), file('a', 'one')), false);
  for (const m of MODES) {
    dup(`a symlink to the victim then a file of the same name (${m.label})`, (sb) => tar(symlink('l', up(sb)), file('l', PAYLOAD)), m.rootless);
  }
  dup('a symlink to the victim dir then a directory of the same name', (sb) => tar(symlink('d', sb.victim), dir('d/', { mode: 0o777, mtime: 1 })), false);
  dup('a and ./a', () => tar(file('a', 'one'), file('./a', 'two')));
  dup('a and /a', () => tar(file('a', 'one'), file('/a', 'two')));
  dup('a/ and a (trailing slash)', () => tar(dir('a/'), dir('a')));
  dup('a spelled as a PAX path and as a ustar name', () => tar(file('a', 'one', { spelling: 'pax' }), file('a', 'two')));
  dup('x/../a and a', () => tar(file('a', 'one'), dir('x/'), file('x/../a', 'two')));
  dup('a file then a hardlink of the same name', () => tar(file('g', 'one'), file('f', 'two'), hardlink('f', 'g')));
  dup('the same symlink twice', (sb) => tar(symlink('l', 'x'), symlink('l', up(sb))));
  dup('a long path spelled by a GNU long name and by ustar prefix', () => {
    const p = 'd'.repeat(60) + '/' + 'e'.repeat(60) + '/' + 'f'.repeat(60);
    return tar(parents(p, { spelling: 'pax' }), file(p, 'one', { spelling: 'gnu' }), file(p, 'two', { spelling: 'prefix' }));
  });
  dup('the same file twice in a gzip layer', () => tar(file('a', 'one'), file('a', 'two')), true, true);
});

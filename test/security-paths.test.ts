/**
 * Hostile layers, part 1: where entries are allowed to land.
 * SECURITY.md classes: absolute path, dot-dot, symlink then write, dir replaced by symlink, relative symlink up and out.
 *
 * Every test: (1) the apply rejects with the stated code, or resolves with the entry neutralised inside the layer;
 * (2) nothing outside the layer root changed (checked by `attack`); (3) on rejection the layer dir is empty.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, expect } from 'vitest';
import {
  attack,
  dir,
  expectApplied,
  expectContained,
  expectRefused,
  file,
  gz,
  zstd,
  hardlink,
  inLayer,
  lstatIn,
  parents,
  readIn,
  sandboxed,
  SPELLINGS,
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




// ---------------------------------------------------------------------------------------------------------------
describe('absolute paths land inside the layer root', () => {
  for (const spelling of SPELLINGS) {
    it(
      `roots an absolute path to the victim inside the layer (${spelling} spelling)`,
      sandboxed(async (sb) => {
        const target = path.join(sb.victim, 'passwd'); // e.g. /tmp/carrier-sec-…/victim/passwd
        const o = await attack(sb, tar(parents(target), file(target, PAYLOAD, { spelling })), { rootless: true });
        expectApplied(o);
        expect(readIn(sb, target)).toBe(PAYLOAD);
      }),
      T,
    );
  }

  for (const m of MODES) {
    it(
      `roots an absolute path into the /tmp victim inside the layer (${m.label})`,
      sandboxed(async (sb) => {
        const target = path.join(sb.tmpVictim, 'passwd');
        const o = await attack(sb, tar(parents(target), file(target, PAYLOAD)), { rootless: m.rootless });
        expectApplied(o);
        expect(readIn(sb, target)).toBe(PAYLOAD);
      }),
      T,
    );
  }

  it(
    'roots a path with many leading slashes (////tmp/…) inside the layer',
    sandboxed(async (sb) => {
      const target = '////' + path.join(sb.tmpVictim, 'passwd').replace(/^\/+/, '');
      const o = await attack(sb, tar(parents(target), file(target, PAYLOAD)), { rootless: true });
      expectApplied(o);
      expect(readIn(sb, path.join(sb.tmpVictim, 'passwd'))).toBe(PAYLOAD);
    }),
    T,
  );

  it(
    'roots a PAX path with many leading slashes inside the layer',
    sandboxed(async (sb) => {
      const target = '////' + path.join(sb.victim, 'passwd').replace(/^\/+/, '');
      const o = await attack(sb, tar(parents(target), file(target, PAYLOAD, { spelling: 'pax' })), { rootless: false });
      expectApplied(o);
      expect(readIn(sb, path.join(sb.victim, 'passwd'))).toBe(PAYLOAD);
    }),
    T,
  );

  it(
    'roots an absolute path in a gzip layer inside the layer',
    sandboxed(async (sb) => {
      const target = path.join(sb.victim, 'shadow');
      const o = await attack(sb, gz(tar(parents(target), file(target, PAYLOAD))), { rootless: true });
      const r = expectApplied(o);
      expect(r.compression).toBe('gzip');
      expect(readIn(sb, target)).toBe(PAYLOAD);
    }),
    T,
  );

  it(
    'keeps an absolute path without parent entries inside the layer (created there or refused)',
    sandboxed(async (sb) => {
      const target = path.join(sb.victim, 'passwd');
      const o = await attack(sb, tar(file(target, PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, target)).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'roots an absolute directory entry inside the layer',
    sandboxed(async (sb) => {
      const target = path.join(sb.victim, 'newdir') + '/';
      const o = await attack(sb, tar(parents(target), dir(target, { mode: 0o777 })), { rootless: false });
      expectApplied(o);
      expect(lstatIn(sb, target).isDirectory()).toBe(true);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('dot-dot paths are refused', () => {
  for (const spelling of SPELLINGS) {
    it(
      `refuses ../victim/passwd (${spelling} spelling)`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(file(up(sb), PAYLOAD, { spelling })), { rootless: true });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  for (const m of MODES) {
    it(
      `refuses a/../../victim/passwd (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(dir('a/'), file('a/../' + up(sb), PAYLOAD)), { rootless: m.rootless });
        expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
      }),
      T,
    );
  }

  it(
    'refuses a/b/../../../victim/passwd spelled as a PAX path',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('a/b/../../' + up(sb), PAYLOAD, { spelling: 'pax' })), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses ../../ into the /tmp victim',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file(upTmp(sb), PAYLOAD)), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a dot-dot path in a gzip layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, gz(tar(file(up(sb), PAYLOAD))), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a dot-dot path in a zstd layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, zstd(tar(file('ok', 'fine'), file(up(sb), PAYLOAD))), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a dot-dot path after good entries and removes what was already written',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('ok/'), file('ok/file', 'fine'), file(up(sb), PAYLOAD, { spelling: 'gnu' })), {
        rootless: true,
      });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a dot-dot directory entry',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir(up(sb, 'newdir') + '/', { mode: 0o777 })), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a dot-dot symlink entry name',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink(up(sb, 'evil'), '/')), { rootless: true });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );

  it(
    'refuses a bare ../ directory entry',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('../', { mode: 0o777, mtime: 1 })), { rootless: false });
      expectRefused(sb, o, 'CARRIER_UNSAFE_PATH');
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('writes through a symlink stay inside the layer root', () => {
  it(
    'keeps evil -> /tmp/<victim>, evil/passwd inside the layer (no in-root target: refused or created inside)',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', sb.tmpVictim), file('evil/passwd', PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, path.join(sb.tmpVictim, 'passwd'))).toBe(PAYLOAD));
    }),
    T,
  );

  for (const m of MODES) {
    it(
      `lands evil/passwd in <root>/tmp/<victim>/passwd when that directory exists in the layer (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(
          sb,
          tar(parents(sb.tmpVictim + '/x'), symlink('evil', sb.tmpVictim), file('evil/passwd', PAYLOAD)),
          { rootless: m.rootless },
        );
        expectApplied(o);
        expect(readIn(sb, path.join(sb.tmpVictim, 'passwd'))).toBe(PAYLOAD);
        expect(fs.readlinkSync(inLayer(sb, 'evil'))).toBe(sb.tmpVictim); // target stored verbatim
      }),
      T,
    );
  }

  it(
    'keeps evil -> /tmp, evil/<unique>-pwned inside the layer',
    sandboxed(async (sb) => {
      const name = `carrier-${sb.token}-pwned`; // /tmp/<name> is watched
      const o = await attack(sb, tar(symlink('evil', '/tmp'), file(`evil/${name}`, PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, `tmp/${name}`)).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'lands evil/<unique>-pwned in <root>/tmp when the layer has tmp/',
    sandboxed(async (sb) => {
      const name = `carrier-${sb.token}-pwned`;
      const o = await attack(sb, tar(dir('tmp/'), symlink('evil', '/tmp'), file(`evil/${name}`, PAYLOAD)), { rootless: false });
      expectApplied(o);
      expect(readIn(sb, `tmp/${name}`)).toBe(PAYLOAD);
    }),
    T,
  );

  for (const spelling of ['prefix', 'pax', 'gnu'] as const) {
    it(
      `keeps evil -> <victim>, evil/passwd inside the layer (${spelling} spelling of the write)`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink('evil', sb.victim), file('evil/passwd', PAYLOAD, { spelling })), { rootless: true });
        expectContained(sb, o, () => expect(readIn(sb, path.join(sb.victim, 'passwd'))).toBe(PAYLOAD));
      }),
      T,
    );
  }

  for (const linkSpelling of ['pax', 'gnu'] as const) {
    it(
      `keeps evil -> <victim> (${linkSpelling} link target), evil/passwd inside the layer`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(symlink('evil', sb.victim, { linkSpelling }), file('evil/passwd', PAYLOAD)), { rootless: false });
        expectContained(sb, o, () => expect(readIn(sb, path.join(sb.victim, 'passwd'))).toBe(PAYLOAD));
      }),
      T,
    );
  }

  it(
    'keeps a directory created through a symlink (evil -> <victim>, evil/sub/new/) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', sb.victim), dir('evil/newdir/', { mode: 0o777 })), { rootless: false });
      expectContained(sb, o, () => expect(lstatIn(sb, path.join(sb.victim, 'newdir')).isDirectory()).toBe(true));
    }),
    T,
  );

  it(
    'keeps a symlink created through a symlink (evil -> <victim>, evil/ln -> x) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', sb.victim), symlink('evil/ln', 'x')), { rootless: true });
      expectContained(sb, o, () => expect(lstatIn(sb, path.join(sb.victim, 'ln')).isSymbolicLink()).toBe(true));
    }),
    T,
  );

  it(
    'keeps a hardlink created through a symlinked directory (evil -> <victim>, evil/passwd link to f) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('f', PAYLOAD), symlink('evil', sb.victim), hardlink('evil/passwd', 'f')), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, path.join(sb.victim, 'passwd'))).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps a write through a symlinked directory in a gzip layer inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, gz(tar(symlink('evil', sb.victim), file('evil/passwd', PAYLOAD))), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, path.join(sb.victim, 'passwd'))).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps a write through a symlinked directory in a zstd layer inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, zstd(tar(symlink('evil', '../victim'), file('evil/passwd', PAYLOAD))), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, 'victim/passwd')).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps a write through a symlink to a file (evil -> <victim>/passwd, evil/x) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', path.join(sb.victim, 'passwd')), file('evil/x', PAYLOAD)), { rootless: false });
      // evil resolves to a path inside the root that does not exist: refused, or created there.
      expectContained(sb, o, () => expect(readIn(sb, path.join(sb.victim, 'passwd', 'x'))).toBe(PAYLOAD));
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('a directory replaced by a symlink', () => {
  for (const m of MODES) {
    it(
      `refuses foo/, foo -> /tmp/<victim>, foo/passwd as a duplicate (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(dir('foo/'), symlink('foo', sb.tmpVictim), file('foo/passwd', PAYLOAD)), { rootless: m.rootless });
        expectRefused(sb, o, 'CARRIER_DUPLICATE_ENTRY');
      }),
      T,
    );
  }

  it(
    'refuses foo/, ./foo -> ../victim (PAX path), foo/passwd as a duplicate',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('foo/'), symlink('./foo', '../victim', { spelling: 'pax' }), file('foo/passwd', PAYLOAD)), {
        rootless: true,
      });
      expectRefused(sb, o, 'CARRIER_DUPLICATE_ENTRY');
    }),
    T,
  );

  it(
    'refuses foo/, foo/../foo -> <victim>, foo/passwd as a duplicate',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('foo/'), symlink('foo/../foo', sb.victim), file('foo/passwd', PAYLOAD)), { rootless: true });
      expectRefused(sb, o, 'CARRIER_DUPLICATE_ENTRY');
    }),
    T,
  );

  it(
    'refuses foo/, foo -> <victim> (GNU long name), foo/passwd as a duplicate',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('foo/'), symlink('foo', sb.victim, { spelling: 'gnu' }), file('foo/passwd', PAYLOAD)), {
        rootless: false,
      });
      expectRefused(sb, o, 'CARRIER_DUPLICATE_ENTRY');
    }),
    T,
  );

  for (const m of MODES) {
    it(
      `keeps an implicitly created directory swapped for a symlink (foo/bar, foo -> ../victim, foo/passwd) inside (${m.label})`,
      sandboxed(async (sb) => {
        const o = await attack(sb, tar(file('foo/bar', 'x'), symlink('foo', '../victim'), file('foo/passwd', PAYLOAD)), {
          rootless: m.rootless,
        });
        expectContained(sb, o);
      }),
      T,
    );
  }

  it(
    'keeps a deep write after a parent swap (a/b/c, a -> <victim>, a/sub/file) inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(file('a/b/c', 'x'), symlink('a', sb.victim), file('a/sub/file', PAYLOAD)), { rootless: true });
      expectContained(sb, o);
    }),
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------------
describe('relative symlinks that climb out', () => {
  for (const m of MODES) {
    it(
      `lands evil -> ../../../.., evil/<unique>-pwned at the layer root (${m.label})`,
      sandboxed(async (sb) => {
        const name = `carrier-${sb.token}-pwned`; // /<name> and /tmp/<name> are watched
        const o = await attack(sb, tar(symlink('evil', '../../../..'), file(`evil/${name}`, PAYLOAD)), { rootless: m.rootless });
        expectApplied(o);
        expect(readIn(sb, name)).toBe(PAYLOAD);
        expect(fs.readlinkSync(inLayer(sb, 'evil'))).toBe('../../../..');
      }),
      T,
    );
  }

  it(
    'keeps evil -> ../victim, evil/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', '../victim'), file('evil/passwd', PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, 'victim/passwd')).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'lands evil -> ../victim, evil/passwd in <root>/victim when the layer has victim/',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('victim/'), symlink('evil', '../victim'), file('evil/passwd', PAYLOAD)), { rootless: true });
      expectApplied(o);
      expect(readIn(sb, 'victim/passwd')).toBe(PAYLOAD);
      expect(tree(sb.layer)).toEqual(['evil', 'victim/', 'victim/passwd']);
    }),
    T,
  );

  it(
    'keeps a nested a/b/evil -> ../../../victim, a/b/evil/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(dir('a/'), dir('a/b/'), symlink('a/b/evil', '../../../victim'), file('a/b/evil/passwd', PAYLOAD)), {
        rootless: false,
      });
      expectContained(sb, o, () => expect(readIn(sb, 'victim/passwd')).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps a symlink chain l1 -> l2 -> ../victim, l1/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('l2', '../victim'), symlink('l1', 'l2'), file('l1/passwd', PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, 'victim/passwd')).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps evil -> ../../../../tmp/<victim>, evil/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', '../../../..' + sb.tmpVictim), file('evil/passwd', PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, path.join(sb.tmpVictim, 'passwd'))).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps evil -> .., evil/victim/passwd inside the layer',
    sandboxed(async (sb) => {
      const o = await attack(sb, tar(symlink('evil', '..'), file('evil/victim/passwd', PAYLOAD)), { rootless: true });
      expectContained(sb, o, () => expect(readIn(sb, 'victim/passwd')).toBe(PAYLOAD));
    }),
    T,
  );

  it(
    'keeps a symlink of 64 ../ components plus the victim path inside the layer (PAX link target)',
    sandboxed(async (sb) => {
      const target = '../'.repeat(64) + sb.victim.replace(/^\/+/, '');
      const o = await attack(sb, tar(symlink('evil', target, { linkSpelling: 'pax' }), file('evil/passwd', PAYLOAD)), { rootless: false });
      expectContained(sb, o, () => expect(readIn(sb, path.join(sb.victim, 'passwd'))).toBe(PAYLOAD));
    }),
    T,
  );
});

// Where openat2 is unavailable (a seccomp profile that denies it, an old qemu-user, a kernel before 5.6) the native
// core resolves layer paths with a userspace walk (native/fs_safe.cc) that must give the same results and the same
// errors. Proven two ways: the whole hostile-tar corpus and the layer round trips are run again with the walk forced
// by the test switch CARRIER_NO_OPENAT2=1, and a layer plus hostile layers are applied, cloned and rebuilt by a
// node running under a real seccomp filter that answers openat2 with ENOSYS (or EPERM), compared with the same run
// on openat2. The filter is raw BPF installed by a small C program (test/support/no-openat2.c) compiled here.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCaptured, tail } from './support/spawn.js';
import { createSandbox, dir, file, hardlink, parents, symlink, tar, type Sandbox } from './support/hostile.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = path.join(ROOT, 'test/support/apply-tars.mjs');
let work: string;
let noOpenat2: string;
let sb: Sandbox;
let manifest: string;

interface Run {
  resolver: string;
  results: Array<{ name: string; ok: boolean; code?: string }>;
}

/** Runs apply-tars.mjs on the manifest in a fresh work dir, optionally behind `wrapper` and with extra env. */
async function applyAll(tag: string, wrapper: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out = path.join(work, tag);
  fs.mkdirSync(out);
  const m = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { cases: unknown[] };
  const own = path.join(work, `${tag}.json`);
  fs.writeFileSync(own, JSON.stringify({ work: out, cases: m.cases }));
  const cmd = [...wrapper, process.execPath, SCRIPT, own];
  const before = sb.snapshot();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, `${cmd.join(' ')}: ${r.stderr}`).toBe(0);
  expect(sb.snapshot(), 'something outside the layer roots changed').toEqual(before);
  return JSON.parse(r.stdout) as Run;
}

/** The resolver a fresh node picks with `env`, behind `wrapper`. */
function resolverOf(wrapper: string[] = [], env: NodeJS.ProcessEnv = {}, after = ''): string {
  const code = `const n = require(${JSON.stringify(path.join(ROOT, 'build/Release/carrier.node'))}); ${after} console.log(n.pathResolver());`;
  const cmd = [...wrapper, process.execPath, '-e', code];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env: { ...process.env, ...env }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-openat2-'));
  noOpenat2 = path.join(work, 'no-openat2');
  const cc = spawnSync('cc', ['-O2', '-Wall', '-o', noOpenat2, path.join(ROOT, 'test/support/no-openat2.c')], {
    encoding: 'utf8',
  });
  if (cc.error || cc.status !== 0) throw new Error(`cc could not build test/support/no-openat2.c: ${cc.error ?? cc.stderr}`);

  sb = createSandbox();
  const v = sb.victim;
  const cases: Array<[string, Buffer]> = [
    ['a tree with symlinks (relative, absolute, chained, up and out) written through, hard links in subdirectories',
      tar(
        dir('a/'), dir('a/b/'), file('a/b/f', 'f\n'), file('a/b/g', 'g\n', { mode: 0o600 }),
        symlink('a/rel', '../a/b'), symlink('abs', '/a/b'), symlink('l1', 'l2'), symlink('l2', 'l3'), symlink('l3', 'a'),
        symlink('up', '../../../../a/b'), symlink('dotdot', 'a/b/../..'),
        file('a/rel/through-rel', 'r\n'), file('abs/through-abs', 'a\n'), file('l1/through-chain', 'c\n'),
        file('up/through-up', 'u\n'), dir('dotdot/made-at-root/'), hardlink('a/h', 'a/b/f'), hardlink('a/b/h2', 'a/b/g'),
        dir('ro/', { mode: 0o555 }), file('ro/inside', 'i\n'),
      )],
    ['absolute path to the victim', tar(parents(`${v}/pwned`), file(`${v}/pwned`, 'x'))],
    ['dot-dot', tar(file('../victim/pwned', 'x'))],
    ['symlink then write (absolute)', tar(symlink('evil', v), file('evil/pwned', 'x'))],
    ['symlink then write (relative, up and out)', tar(symlink('evil', '../../../../..'), file('evil/pwned', 'x'))],
    ['dir replaced by symlink', tar(dir('foo/'), symlink('foo', v), file('foo/pwned', 'x'))],
    ['hardlink out', tar(hardlink('h', '../../victim/marker'))],
    ['hardlink through symlink (absolute)', tar(symlink('s', v), hardlink('h', 's/marker'))],
    ['hardlink through symlink (relative)', tar(symlink('s', '../victim'), hardlink('h', 's/marker'))],
    ['hardlink to symlink then write', tar(symlink('l', `${v}/marker`), hardlink('h', 'l'), file('h', 'overwrite'))],
    ['chmod through symlink', tar(symlink('l', `${v}/marker`), dir('l', { mode: 0o777 }))],
    ['whiteout through a symlinked dir', tar(symlink('d', v), file('d/.wh.marker'))],
    ['invalid whiteout', tar(file('.wh.'))],
    ['root replaced by a symlink', tar(symlink('.', v), file('pwned', 'x'))],
    ['symlink loop written through', tar(symlink('loop1', 'loop2'), symlink('loop2', 'loop1'), file('loop1/x', 'x'))],
    ['dangling symlink written through', tar(symlink('s', 'nowhere/deeper'), file('s/x', 'x'))],
    ['file used as a directory through a symlink', tar(file('f', 'f'), symlink('l', 'f'), file('l/x', 'x'))],
    ['symlink to /proc written through (resolved inside the root)', tar(symlink('p', '/proc/self/fd'), file('p/x', 'x'))],
    ['duplicate path with another type', tar(file('d', 'x'), dir('d/'))],
  ];
  manifest = path.join(work, 'manifest.json');
  const list = cases.map(([name, bytes], i) => {
    const p = path.join(work, `case-${i}.tar`);
    fs.writeFileSync(p, bytes);
    return { name, tar: p };
  });
  fs.writeFileSync(manifest, JSON.stringify({ cases: list }));
});

afterAll(() => {
  sb?.cleanup();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('path resolution without openat2', () => {
  it('uses openat2 where the kernel has it, and the walk when CARRIER_NO_OPENAT2=1 is set at load (read once)', () => {
    expect(resolverOf()).toBe('openat2');
    expect(resolverOf([], { CARRIER_NO_OPENAT2: '1' })).toBe('walk');
    expect(resolverOf([], {}, "process.env.CARRIER_NO_OPENAT2 = '1';")).toBe('openat2');
  });

  it('falls back to the walk when a seccomp filter answers openat2 with ENOSYS or EPERM', () => {
    expect(resolverOf([noOpenat2, 'ENOSYS'])).toBe('walk');
    expect(resolverOf([noOpenat2, 'EPERM'])).toBe('walk');
  });

  it('applies, clones and rebuilds a layer and refuses hostile layers identically under a seccomp filter that denies openat2', async () => {
    const normal = await applyAll('openat2');
    expect(normal.resolver).toBe('openat2');
    // Not a vacuous comparison: the corpus has layers that apply and layers that are refused.
    expect(normal.results.filter((r) => r.ok).length).toBeGreaterThan(3);
    expect(normal.results.filter((r) => !r.ok).length).toBeGreaterThan(3);
    for (const [tag, wrapper, env] of [
      ['enosys', [noOpenat2, 'ENOSYS'], {}],
      ['eperm', [noOpenat2, 'EPERM'], {}],
      ['switch', [], { CARRIER_NO_OPENAT2: '1' }],
    ] as const) {
      const other = await applyAll(tag, [...wrapper], env);
      expect(other.resolver, tag).toBe('walk');
      expect(other.results, tag).toEqual(normal.results);
    }
  }, 300_000);

  it('passes the hostile-tar corpus and the layer round trips with the walk forced (CARRIER_NO_OPENAT2=1)', async () => {
    const files = ['test/security-paths.test.ts', 'test/security-links.test.ts', 'test/security-headers.test.ts', 'test/layer-roundtrip.test.ts'];
    // A fresh vitest, not one that believes it is a worker of this one.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
    const r = await runCaptured(
      process.execPath,
      [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', ...files, '--testTimeout=60000', '--hookTimeout=300000'],
      { env: { ...env, CARRIER_NO_OPENAT2: '1', NO_COLOR: '1' }, killAfterMs: 900_000 },
    );
    const output = r.output.replace(/\x1b\[[0-9;]*m/g, '');
    expect(r.code, tail(output, 80)).toBe(0);
    expect(output).toMatch(/Test Files\s+4 passed/);
  }, 960_000);
});

// Installing the package as a user does: what the tarball holds (npm pack), and `npm install` on a machine no
// prebuild fits and without a compiler: one message that says what is missing and what to install, not node-gyp's
// pages of errors. The package's own install script runs, as npm runs it (through
// node-gyp-build, which builds only when no addon loads), in a copy of the package without prebuilds/ or build/.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir } from './support/fixtures.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let work: string;
let pkg: string;

beforeAll(() => {
  work = tempDir('install-message');
  pkg = path.join(work, 'pkg');
  fs.mkdirSync(pkg);
  for (const f of ['package.json', 'binding.gyp', 'native', 'scripts']) fs.cpSync(path.join(repo, f), path.join(pkg, f), { recursive: true });
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'node_modules'));
  // A PATH with Node and nothing else: no g++, make or python3.
  fs.mkdirSync(path.join(work, 'bin'));
  fs.symlinkSync(process.execPath, path.join(work, 'bin', 'node'));
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('install without a fitting prebuild', () => {
  it('without a compiler fails with one message naming what to install', () => {
    const script = (JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { scripts: { install: string } }).scripts.install;
    const r = spawnSync('/bin/sh', ['-c', script], {
      cwd: pkg,
      encoding: 'utf8',
      env: { PATH: `${path.join(pkg, 'node_modules', '.bin')}:${path.join(work, 'bin')}`, HOME: work },
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^carrier-oci: no prebuilt addon loads here \(linux-x64, Node v\d+/);
    expect(lines[0]).toContain('g++, make, python3');
    expect(lines[0]).toContain('apt-get install g++ make python3 libzstd-dev');
    expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false);
  });
});

describe('the package tarball (npm pack)', () => {
  it('is carrier-oci with the carrier bin, the LICENSE and the addon sources, without tests or fuzz corpora', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const [packed] = JSON.parse(r.stdout) as { name: string; files: { path: string }[] }[];
    expect(packed!.name).toBe('carrier-oci');
    const files = packed!.files.map((f) => f.path);
    for (const f of ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'dist/cli/bin.cjs', 'dist/cli/carrier.cjs', 'dist/cli/main.js', 'dist/index.js', 'native/addon.cc', 'native/exports.map', 'scripts/need-compiler.cjs']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^(test|bench)\/|^native\/fuzz\/|corpus/.test(f))).toEqual([]);
    const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { bin: Record<string, string>; license: string };
    expect(manifest.bin).toEqual({ carrier: 'dist/cli/bin.cjs' });
    expect(fs.readFileSync(path.join(repo, 'LICENSE'), 'utf8')).toContain('Apache License');
    expect(manifest.license).toBe('Apache-2.0');
  });
});

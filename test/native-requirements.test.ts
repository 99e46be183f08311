// What the addon built from binding.gyp asks of the machine it is loaded on, read with objdump as the dynamic
// loader will: no libstdc++ (it is linked in statically, its symbols hidden), and no glibc newer than the floor the
// README states. CI builds the addon from source before the tests, so this checks what the next prebuild will be.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.join(repo, 'build/Release/carrier.node');

function objdump(flag: string): string {
  try {
    return execFileSync('objdump', [flag, built], { encoding: 'utf8', maxBuffer: 1 << 26 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error("objdump is missing: install Debian's binutils");
    throw err;
  }
}

/** "glibc ≥ 2.34" in the README's requirements, as [2, 34]. */
function statedFloor(): [number, number] {
  const m = /glibc ≥ (\d+)\.(\d+)/.exec(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'));
  if (!m) throw new Error('README.md states no glibc floor ("glibc ≥ X.Y")');
  return [Number(m[1]), Number(m[2])];
}

describe('the addon built from binding.gyp', () => {
  it('exists (npm run build:native)', () => {
    expect(fs.existsSync(built), `${built} is missing: run \`npm run build:native\``).toBe(true);
  });

  it('needs no libstdc++: no GLIBCXX or CXXABI symbol version, no libstdc++.so among its libraries', () => {
    const versions = new Set([...objdump('-T').matchAll(/\b((?:GLIBCXX|CXXABI)_[0-9.]+)/g)].map((m) => m[1]));
    expect([...versions]).toEqual([]);
    const needed = [...objdump('-p').matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]!).sort();
    expect(needed.filter((lib) => !/^(libc|libm|libgcc_s|ld-linux-[a-z0-9-]+)\.so\.\d+$/.test(lib))).toEqual([]);
  });

  it("needs no glibc newer than the README's floor", () => {
    const [major, minor] = statedFloor();
    const newer = [...objdump('-T').matchAll(/\(GLIBC_(\d+)\.(\d+)(?:\.\d+)?\)\s+(\S+)/g)]
      .filter((m) => Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) > minor))
      .map((m) => `${m[3]} (GLIBC_${m[1]}.${m[2]})`);
    expect(newer, `symbols newer than glibc ${major}.${minor}`).toEqual([]);
  });
});

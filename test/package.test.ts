// The committed prebuild is what a machine without a compiler runs: it must load, expose the jobs, and need nothing
// a fresh Debian/Ubuntu x64 system lacks.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

// prebuildify names the file after the package (carrier-oci.node); node-gyp-build loads any .node there.
const prebuild = resolve(__dirname, '../prebuilds/linux-x64/carrier-oci.node');
const objdumpHint = "objdump is missing: install Debian's binutils";

function tool(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(objdumpHint);
    throw err;
  }
}

describe('the committed linux-x64 prebuild', () => {
  it('exists', () => {
    expect(existsSync(prebuild), 'run `npm run prebuild:x64` and commit prebuilds/').toBe(true);
  });

  it('loads in a fresh Node process and exposes the layer jobs', () => {
    const out = execFileSync(
      process.execPath,
      ['-e', `const b = require(${JSON.stringify(prebuild)}); console.log(typeof b.ApplyJob, typeof b.AssembleJob, b.version)`],
      { encoding: 'utf8' },
    );
    expect(out).toMatch(/^function function carrier-native\/1 zlib\/\S+ zstd\/\S+ openssl\//);
  });

  it('links only against libc, libgcc_s and the dynamic loader (libzstd and libstdc++ are static)', () => {
    const needed = [...tool('objdump', ['-p', prebuild]).matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]).sort();
    expect(needed.every((lib) => /^(libc|libgcc_s|libm|ld-linux-x86-64)\.so\.\d+$/.test(lib!))).toBe(true);
  });

  it('exports only the N-API entry points (third-party symbols stay hidden)', () => {
    const defined = tool('nm', ['-D', '--defined-only', prebuild])
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/).pop());
    expect(defined.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
  });

  it('needs no glibc newer than 2.34 and no libstdc++ symbol version (the floor the README states)', () => {
    const table = tool('objdump', ['-T', prebuild]);
    expect(table).not.toMatch(/GLIBCXX_/);
    const versions = [...table.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map(
      (m) => Number(m[1]) * 1000 + Number(m[2]),
    );
    expect(Math.max(...versions)).toBeLessThanOrEqual(2034);
  });
});

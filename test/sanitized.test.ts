// The native core's unit tests (native/fuzz/carrier_native_tests.cc) built with clang + ASan + UBSan and run once:
// tar reader (formats and hostile headers), gzip/zstd decoder (multi-member / multi-frame, truncation, corruption,
// bombs), extractor into temporary directories next to a victim directory (the SECURITY.md shapes), tar-split writer
// + assembly round trip and tampering, CRC-64 and SHA-256 vectors. Fails on any failed check, any sanitizer report
// (including leaks) or a non-zero exit. Needs clang, cmake, zlib and zstd headers, and OpenSSL 3's libcrypto
// (see PACKAGES).
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { runCaptured, tail } from './support/spawn.js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const SRC = join(ROOT, 'native/fuzz');
// In the checkout's own .cache/: not build/, which `node-gyp rebuild` deletes whole, nor node_modules/, which
// worktrees may share (see test/fuzz.test.ts).
const BUILD_ROOT = join(ROOT, '.cache/carrier-native');
const TARGET = 'carrier_native_tests';
const PACKAGES = "Debian packages 'clang', 'libclang-rt-14-dev' (or another LLVM version's), 'cmake', 'ninja-build' or " +
  "'make', 'zlib1g-dev', 'libzstd-dev', and OpenSSL 3's libcrypto (libssl3 or libssl-dev)";

/**
 * Builds only the unit-test target, in its own directory (sanitized/) so it never races the fuzz build of
 * test/fuzz.test.ts: cmake-js when present (node's headers from the install prefix, never downloaded), else cmake.
 */
async function build(): Promise<string> {
  const clang = spawnSync('clang++', ['--version'], { encoding: 'utf8' });
  if (clang.error || clang.status !== 0) throw new Error(`clang++ not found: install the ${PACKAGES}`);
  const cmakeJs = join(ROOT, 'node_modules/.bin/cmake-js');
  const nodedir = resolve(dirname(process.execPath), '..');
  if (existsSync(cmakeJs) && existsSync(join(nodedir, 'include/node/node.h'))) {
    const out = join(BUILD_ROOT, 'sanitized');
    const r = await runCaptured(
      cmakeJs,
      ['build', '--debug', '--parallel', '2', '-d', SRC, '-O', out, '-T', TARGET,
        '--CDCMAKE_CXX_COMPILER=clang++', '--CDCMAKE_C_COMPILER=clang'],
      { env: { ...process.env, npm_config_nodedir: nodedir }, killAfterMs: 150_000 },
    );
    if (r.code !== 0) throw new Error(`cmake-js build of ${TARGET} failed (needs the ${PACKAGES}):\n${tail(r.output, 80)}`);
    return out;
  }
  const out = join(BUILD_ROOT, 'sanitized-cmake');
  const conf = await runCaptured('cmake', ['-S', SRC, '-B', out, '-DCMAKE_CXX_COMPILER=clang++', '-DCMAKE_BUILD_TYPE=Debug'], { killAfterMs: 60_000 });
  if (conf.code !== 0) throw new Error(`cmake configure of native/fuzz failed (needs the ${PACKAGES}):\n${tail(conf.output, 80)}`);
  const b = await runCaptured('cmake', ['--build', out, '--target', TARGET, '-j2'], { killAfterMs: 150_000 });
  if (b.code !== 0) throw new Error(`cmake build of ${TARGET} failed (needs the ${PACKAGES}):\n${tail(b.output, 80)}`);
  return out;
}

let binary = '';

beforeAll(async () => {
  const started = Date.now();
  const dir = await build();
  binary = join(dir, TARGET);
  console.log(`${TARGET} built in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);
}, 180_000);

const SANITIZER_REPORTS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:', 'SUMMARY: UndefinedBehaviorSanitizer',
  'SUMMARY: AddressSanitizer'];

describe('native unit tests under ASan + UBSan', () => {
  it('carrier_native_tests passes every check with no sanitizer report', async () => {
    expect(existsSync(binary), `${binary} was not built`).toBe(true);
    const work = mkdtempSync(join(tmpdir(), 'carrier-sanitized-'));
    const scratch = join(work, 'tmp');
    mkdirSync(scratch);
    const r = await runCaptured(binary, [], {
      cwd: work,
      env: {
        ...process.env,
        TMPDIR: scratch,
        CARRIER_TEST_VERBOSE: '1',
        ASAN_OPTIONS: 'abort_on_error=1:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1',
        UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      },
      killAfterMs: 120_000,
    });
    const summary = /carrier_native_tests: (\d+) checks, (\d+) failed \((\d+) tests\)/.exec(r.output);
    const reports = SANITIZER_REPORTS.filter((s) => r.output.includes(s));
    const context = `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}; sanitizer reports ${JSON.stringify(reports)}\n${tail(r.output, 120)}`;
    console.log(summary ? summary[0] : 'no summary line');
    expect(reports, context).toEqual([]);
    expect(r.signal, context).toBeNull();
    expect(r.code, context).toBe(0);
    expect(summary, context).not.toBeNull();
    expect(Number(summary![2]), context).toBe(0);
    expect(Number(summary![3]), context).toBeGreaterThanOrEqual(10);
    expect(Number(summary![1]), context).toBeGreaterThan(400);
    // Every test cleans up its temporary layers.
    expect(readdirSync(scratch), context).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  }, 150_000);
});

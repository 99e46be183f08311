// libFuzzer targets for the native core (native/fuzz/), built with clang + ASan + UBSan and run for a bounded time
// on a copy of their committed seed corpus. Needs Debian's clang and libfuzzer (clang's libclang_rt.fuzzer).
// Each target first replays its whole seed corpus (libFuzzer's INITED pass: every seed must run clean), then
// mutates for CARRIER_FUZZ_SECONDS (default 15) seconds. Executions per target are printed for test/RELIABILITY.md.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { runCaptured, tail } from './support/spawn.js';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const FUZZ_SRC = join(ROOT, 'native/fuzz');
// Not under build/: `node-gyp rebuild` (npm run build:native) deletes build/ whole, which must not pull the fuzz
// binaries from under a running test. Not under node_modules/ either: checkouts that share one node_modules (git
// worktrees with a link to it) would overwrite each other's binaries. .cache/ is the checkout's own, ignored by git.
const BUILD_ROOT = join(ROOT, '.cache/carrier-native');
const TARGETS = ['fuzz_tar_reader', 'fuzz_extract', 'fuzz_decoder', 'fuzz_tar_split', 'fuzz_tar_split_assemble', 'fuzz_compress'] as const;
const SECONDS = Number(process.env.CARRIER_FUZZ_SECONDS ?? 15);
const PACKAGES = "Debian packages 'clang', 'libfuzzer-14-dev' and 'libclang-rt-14-dev' (or the same for another LLVM " +
  "version), 'cmake', 'ninja-build' or 'make', 'zlib1g-dev', 'libzstd-dev'";

let buildDir = '';

/** Fails with the packages to install when clang or its libFuzzer runtime is missing. */
function checkToolchain(): void {
  const clang = spawnSync('clang++', ['--version'], { encoding: 'utf8' });
  if (clang.error || clang.status !== 0) throw new Error(`clang++ not found: install the ${PACKAGES}`);
  const rt = spawnSync('clang++', ['-print-runtime-dir'], { encoding: 'utf8' });
  const dir = rt.status === 0 ? rt.stdout.trim() : '';
  const hasFuzzer = dir !== '' && existsSync(dir) && readdirSync(dir).some((f) => /^libclang_rt\.fuzzer-/.test(f));
  if (!hasFuzzer) throw new Error(`clang's libFuzzer runtime not found in '${dir}': install the ${PACKAGES}`);
  const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  if (cmake.error || cmake.status !== 0) throw new Error(`cmake not found: install the ${PACKAGES}`);
}

/**
 * Configures and builds with cmake-js when it is installed (offline: node's headers come from the install prefix,
 * never from a download), else with plain cmake.
 */
async function build(): Promise<string> {
  const cmakeJs = join(ROOT, 'node_modules/.bin/cmake-js');
  const nodedir = resolve(dirname(process.execPath), '..');
  if (existsSync(cmakeJs) && existsSync(join(nodedir, 'include/node/node.h'))) {
    const out = join(BUILD_ROOT, 'fuzz');
    const r = await runCaptured(
      cmakeJs,
      ['build', '--debug', '--parallel', '2', '-d', FUZZ_SRC, '-O', out,
        '--CDCMAKE_CXX_COMPILER=clang++', '--CDCMAKE_C_COMPILER=clang'],
      { env: { ...process.env, npm_config_nodedir: nodedir }, killAfterMs: 90_000 },
    );
    if (r.code !== 0) throw new Error(`cmake-js build of native/fuzz failed (needs the ${PACKAGES}):\n${tail(r.output, 60)}`);
    return out;
  }
  const out = join(BUILD_ROOT, 'fuzz-cmake');
  const conf = await runCaptured('cmake', ['-S', FUZZ_SRC, '-B', out, '-DCMAKE_CXX_COMPILER=clang++', '-DCMAKE_BUILD_TYPE=Debug'],
    { killAfterMs: 60_000 });
  if (conf.code !== 0) throw new Error(`cmake configure of native/fuzz failed (needs the ${PACKAGES}):\n${tail(conf.output, 60)}`);
  const b = await runCaptured('cmake', ['--build', out, '-j2'], { killAfterMs: 90_000 });
  if (b.code !== 0) throw new Error(`cmake build of native/fuzz failed (needs the ${PACKAGES}):\n${tail(b.output, 60)}`);
  return out;
}

beforeAll(async () => {
  checkToolchain();
  const started = Date.now();
  buildDir = await build();
  console.log(`fuzz targets built in ${((Date.now() - started) / 1000).toFixed(1)} s (${buildDir})`);
}, 120_000);

describe('libFuzzer targets (ASan + UBSan)', () => {
  for (const target of TARGETS) {
    it(`${target} runs ${SECONDS} s on its seed corpus without a finding`, async () => {
      const binary = join(buildDir, target);
      expect(existsSync(binary), `${binary} was not built`).toBe(true);
      const work = mkdtempSync(join(tmpdir(), `carrier-${target}-`));
      const corpus = join(work, 'corpus');
      const artifacts = join(work, 'artifacts');
      const scratch = join(work, 'tmp');
      cpSync(join(FUZZ_SRC, 'corpus', target), corpus, { recursive: true });
      mkdirSync(artifacts);
      mkdirSync(scratch);
      const r = await runCaptured(
        binary,
        [`-max_total_time=${SECONDS}`, '-rss_limit_mb=2048', '-timeout=10', '-print_final_stats=1',
          `-artifact_prefix=${artifacts}/`, corpus],
        {
          cwd: work,
          env: { ...process.env, TMPDIR: scratch, ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
          killAfterMs: (SECONDS + 30) * 1000,
        },
      );
      const execs = /stat::number_of_executed_units:\s*(\d+)/.exec(r.output);
      const seeds = readdirSync(join(FUZZ_SRC, 'corpus', target)).length;
      console.log(`${target}: ${execs ? execs[1] : '?'} execs in ${SECONDS} s (${seeds} seeds replayed first)`);
      const findings = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:', 'ERROR: libFuzzer',
        'FUZZ INVARIANT FAILED'].filter((s) => r.output.includes(s));
      const crashes = readdirSync(artifacts);
      const context = `${target} exit ${r.code}${r.signal ? ` (${r.signal})` : ''}; findings ${JSON.stringify(findings)}; ` +
        `artifacts kept in ${artifacts}: ${crashes.join(', ')}\n${tail(r.output, 80)}`;
      expect(findings, context).toEqual([]);
      expect(r.code, context).toBe(0);
      expect(crashes, context).toEqual([]);
      expect(execs, context).not.toBeNull();
      expect(Number(execs![1])).toBeGreaterThan(0);
      // The seed corpus was loaded and replayed before mutation started.
      expect(r.output, context).toMatch(/INITED/);
      expect(Number(execs![1])).toBeGreaterThanOrEqual(seeds);
      rmSync(work, { recursive: true, force: true });
    }, (SECONDS + 45) * 1000);
  }
});

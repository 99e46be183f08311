// Where the compiled core is, as node-gyp-build would find it in its usual cases: shared by the library
// (src/native.ts) and the CLI's bin (src/cli/bin.cts), which opens the addon before the CLI's bundle to map the bundle
// with it. CommonJS, so the bin requires it without Node's ES module loader.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The `.node` files in a directory, in the order readdir gives (node-gyp-build takes the first); none if it is missing. */
function addons(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.node'));
  } catch {
    return [];
  }
}

/**
 * The addon node-gyp-build would load from the package at `packageRoot`, where its answer is plain: build/Release's
 * (or build/Debug's) addon, else the one file of prebuilds/<platform>-<arch>/. Undefined for anything else
 * (CARRIER_OCI_PREBUILD or PREBUILDS_ONLY set, a prebuild directory with flavours to choose between, no addon at all):
 * that is node-gyp-build's to decide.
 */
export function addonFile(packageRoot: string): string | undefined {
  if (process.env.CARRIER_OCI_PREBUILD !== undefined || process.env.PREBUILDS_ONLY !== undefined) return undefined;
  for (const dir of [join(packageRoot, 'build', 'Release'), join(packageRoot, 'build', 'Debug')]) {
    const first = addons(dir)[0];
    if (first !== undefined) return join(dir, first);
  }
  const prebuilds = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  const files = addons(prebuilds);
  if (files.length === 1 && !/\.(?:node|electron|node-webkit|napi|abi\d*|uv\d*|armv\d*|glibc|musl)\./.test(`.${files[0]}`)) {
    return join(prebuilds, files[0]!);
  }
  return undefined;
}

/**
 * An addon at a known absolute path, opened as require() opens it (process.dlopen), without require's resolution:
 * the path is already resolved, and require would look at each of its directories again (realpath) for its cache.
 */
export function openAddon<T>(file: string): T {
  const mod = { exports: {} as T };
  process.dlopen(mod, file);
  return mod.exports;
}

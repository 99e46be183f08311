#!/usr/bin/env -S node --
// The `carrier` CLI as ES modules, unbundled: what tsc alone builds and most tests run. The installed command is
// dist/cli/bin.cjs (bin.cts), which runs the same CLI bundled. Before the CLI loads, V8's compile cache is turned on
// where Node has one (22.1 and later; NODE_DISABLE_COMPILE_CACHE turns it off).
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { runCli } = await import('./dispatch.js');
await runCli(process.argv.slice(2));

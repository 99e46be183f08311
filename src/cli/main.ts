#!/usr/bin/env -S node --
// The `carrier` command. Before anything else loads, V8's compile cache is turned on where Node has one (22.1 and
// later; NODE_DISABLE_COMPILE_CACHE turns it off): a short command then starts from cached code instead of compiling
// the CLI again on every run. `npm run build` bundles this file and what it imports (scripts/bundle-cli.mjs), so a
// command also resolves no tree of modules.
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { runCli } = await import('./dispatch.js');
await runCli(process.argv.slice(2));

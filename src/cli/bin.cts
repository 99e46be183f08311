#!/usr/bin/env node
// The installed `carrier` command (package.json "bin"). CommonJS, so a command starts without Node's ES module
// loader; it runs the CLI's bundle (dist/cli/carrier.cjs, made after tsc by scripts/bundle-cli.mjs). Before
// the bundle loads, V8's compile cache is turned on where Node has one (22.1 and later; NODE_DISABLE_COMPILE_CACHE
// turns it off), so a short command starts from cached code instead of compiling the CLI again on every run.
// dist/cli/main.js is the same CLI unbundled (what `tsc` alone builds, and what most tests run).
const nodeModule = require('node:module') as { enableCompileCache?: () => unknown };
nodeModule.enableCompileCache?.();
const cli = require('./carrier.cjs') as { runCli(argv: string[]): Promise<void> };
void cli.runCli(process.argv.slice(2));

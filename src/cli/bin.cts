#!/usr/bin/env node
// The installed `carrier` command (package.json "bin"). CommonJS, so a command starts without Node's ES module
// loader; it runs the CLI's bundle (dist/cli/carrier.cjs, made after tsc by scripts/bundle-cli.mjs) from V8 code
// cached by an earlier run, so a short command does not compile the CLI again on every run (issue 21: start-up).
// NODE_DISABLE_COMPILE_CACHE turns the cache off, as it does Node's own (the bundle is then required as a module).
//
// This file keeps a code cache of its own, on every Node: it compiles the bundle as a vm.Script with the cached data,
// and after a command has run, when that command is new to the cache, saves the script's code cache again. Taken
// after the run, the cache holds the functions the command compiled lazily as well as the top level, and each save
// adds the new command's functions to those of the commands before it. Node's own compile cache
// (module.enableCompileCache, 22.1 and later), which this file used there before, is taken when a module is compiled,
// before those functions exist, so every run compiled them again: on Node 22.23 it cost version +8.1 ms and images
// +23.4 ms of CPU over node -e 0, against +4.8 and +16.8 ms with this one. The cache is a file per bundle location and
// command word in a directory of the user's own under the temporary directory, holding the bundle's identity (size,
// mtime, inode) and Node's version: a rebuilt bundle or another Node compiles afresh (V8 checks the source only by its
// length). One file per command word (`images`, `image`, `create`): V8 reads all of a cache before it runs anything,
// and one holding every command a harness ran (~425 KB after the eight short ones) cost each ~0.7 ms more to read
// than its own (~220-320 KB).
//
// The bundle's text is its own function expression (scripts/bundle-cli.mjs), so the script compiled here is the file as
// is, not a copy of it inside a wrapper: V8 flattens a concatenated source into another copy of its ~600 KB, and in
// this VM every fresh page of memory costs a page fault (~4 us, ~0.6 ms a copy). The bin opens the addon first and
// maps the bundle with it (native/map_file.cc) as an external latin1 string (it is ASCII, made so by the bundler), and
// the cache as a Buffer: no copy at all, the file's cached pages faulted in a few at a time where V8 reads them (~1 ms
// less a command than reading both into fresh memory). The addon so opened is the bundle's (its last parameter), not
// opened again. Where the bin cannot find or map it (src/addon-file.cts: node-gyp-build's cases), it reads the files.
//
// Once a command has run and left nothing for the event loop, the process exits at once instead of returning to
// Node, which would then tear down the V8 heap page by page (~1.5 ms of a short command's CPU here).
import type * as Fs from 'node:fs';
import type { NativeBinding } from '../native.js';
import { addonFile, openAddon } from '../addon-file.cjs';

type Cli = { runCli(argv: string[]): Promise<string | undefined> };

const disabled = process.env.NODE_DISABLE_COMPILE_CACHE !== undefined;

/** The root's options that take a value (src/cli/table.ts): the word after one of them is not the command. */
const VALUE_FLAGS = new Set(['--root', '--runroot', '--storage-driver', '--blob-cache']);

// Node maps stack traces through a source map (carrier.cjs.map) only for code its module loader compiled
const sourceMaps = (process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled === true;

if (disabled || sourceMaps) {
  void (require('./carrier.cjs') as Cli).runCli(process.argv.slice(2)).then(exitWhenIdle);
} else {
  void runCached().then(exitWhenIdle);
}

/**
 * Ends the process once the command is done and nothing is pending for the event loop (a write to a full pipe, a
 * socket, a timer, a file operation; stdout or stderr made into a stream at all), without Node's teardown of the
 * heap. Checked from setImmediate, after the callbacks and promise jobs queued so far have run; when something is
 * still pending, once the loop has run out of work ('beforeExit'), where Node would begin that teardown.
 * process.exit keeps process.exitCode.
 */
function exitWhenIdle(): void {
  setImmediate(() => {
    if (process.getActiveResourcesInfo().length === 0) process.exit();
    else process.once('beforeExit', () => process.exit());
  });
}

/** The user's own cache directory (made 0700; refused when another user owns it), or undefined. */
function cacheDir(fs: typeof Fs, tmp: string): string | undefined {
  const uid = process.getuid?.() ?? 0;
  const dir = `${tmp}/carrier-compile-cache-${uid}`;
  try {
    // looked at first: it is there on every run but the first, and a mkdir that fails makes an exception to throw away
    let st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (st === undefined) {
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
      } catch {
        // made meanwhile by another run: checked below
      }
      st = fs.lstatSync(dir);
    }
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** FNV-1a of the bundle's path: one cache file per bundle location, with a short name free of slashes. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/**
 * The command line's first word (`images`, `image`, `create`), which names the command's cache before the bundle has
 * parsed the line; none for a line without one (`--help`, `-v`). A guess that turns out to be something else costs
 * only that its runs share a cache file of their own.
 */
function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return /^[a-z][a-z-]{0,31}$/.test(a) ? a : undefined;
    if (VALUE_FLAGS.has(a)) i++;
  }
  return undefined;
}

/** os.tmpdir() as Node computes it on POSIX, without loading node:os for it. */
function tmpdir(): string {
  const env = process.env;
  const dir = env.TMPDIR || env.TMP || env.TEMP || '/tmp';
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

/** All of an open file's `size` bytes, read into `into` (which must hold them) from the start. */
function readAll(fs: typeof Fs, fd: number, into: Buffer, size: number): Buffer {
  let done = 0;
  while (done < size) {
    const n = fs.readSync(fd, into, done, size - done, done);
    if (n === 0) break;
    done += n;
  }
  return into.subarray(0, done);
}

/** The cache's key for a bundle: its path, size, mtime and inode (fstat of the descriptor read), Node and the arch. */
function identityOf(file: string, st: { size: number; mtimeMs: number; ino: number }): string {
  return `${file} ${st.size} ${st.mtimeMs} ${st.ino} ${process.version} ${process.arch}`;
}

/**
 * The bundle's text and its identity, and the buffer it was read into: once the text is a string, that buffer's
 * memory holds the code cache next (below).
 */
function readBundle(fs: typeof Fs, file: string): { source: string; identity: string; spare: Buffer | undefined } {
  const fd = fs.openSync(file, 'r');
  try {
    const st = fs.fstatSync(fd);
    const spare = Buffer.allocUnsafeSlow(st.size);
    return { source: readAll(fs, fd, spare, st.size).toString('latin1'), identity: identityOf(file, st), spare };
  } finally {
    fs.closeSync(fd);
  }
}

/** The addon, opened from where the library would open it; undefined where node-gyp-build must choose, or it fails. */
function addon(): NativeBinding | undefined {
  const file = addonFile(`${__dirname}/../..`);
  if (file === undefined) return undefined;
  try {
    return openAddon<NativeBinding>(file);
  } catch {
    // the bundle opens it again and says why it cannot
    return undefined;
  }
}

/**
 * The code cache file's bytes, read into `spare` when they fit (they do: the cache is smaller than the bundle). Fresh
 * memory costs a page fault a page in this VM (~3 us each, ~0.2 ms for a 300 KB cache); the bundle's buffer has
 * had its pages touched already, and nothing reads it once the source is a string. V8 reads cachedData only while
 * the script compiles.
 */
function readCache(fs: typeof Fs, file: string, spare: Buffer | undefined): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    return readAll(fs, fd, spare !== undefined && size <= spare.length ? spare : Buffer.allocUnsafeSlow(size), size);
  } finally {
    fs.closeSync(fd);
  }
}

async function runCached(): Promise<void> {
  const fs = require('node:fs') as typeof Fs;
  const vm = require('node:vm') as typeof import('node:vm');
  const file = `${__dirname}/carrier.cjs`;
  const core = addon();
  // (a prebuild older than the bin has no mapFile)
  const mapped = typeof core?.mapFile === 'function' ? core.mapFile(file, true) : undefined;
  const { source, identity, spare } = mapped ? { source: mapped.data, identity: identityOf(file, mapped), spare: undefined } : readBundle(fs, file);
  const dir = cacheDir(fs, tmpdir());
  const word = commandWord(process.argv.slice(2));
  const cacheFile = dir && `${dir}/${hash(file)}${word ? `-${word}` : ''}.v8`;
  let cachedData: Buffer | undefined;
  let commands: string[] = [];
  if (cacheFile) {
    try {
      const bytes = (core && mapped && core.mapFile(cacheFile, false)?.data) || readCache(fs, cacheFile, spare);
      const nl = bytes.indexOf(10);
      const head = JSON.parse(bytes.subarray(0, nl).toString('utf8')) as { identity?: string; commands?: string[] };
      if (head.identity === identity && Array.isArray(head.commands)) {
        cachedData = bytes.subarray(nl + 1);
        commands = head.commands;
      }
    } catch {
      // none yet, or unreadable: compile afresh
    }
  }
  const script = new vm.Script(source, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const mod = { exports: {} as Cli, filename: file, id: file, loaded: false };
  // evaluated as a script, the bundle's text is its function (exports, require, module, __filename, __dirname, import,
  // the addon)
  const run = script.runInThisContext() as (...a: unknown[]) => void;
  // dynamic import() inside a vm.Script would need the experimental vm loader: the bundle imports through this file
  run.call(mod.exports, mod.exports, require, mod, file, __dirname, (specifier: string) => import(specifier), core);
  mod.loaded = true;
  const command = await mod.exports.runCli(process.argv.slice(2));
  if (cacheFile === undefined || command === undefined) return;
  const fresh = cachedData === undefined || script.cachedDataRejected === true;
  if (!fresh && commands.includes(command)) return;
  try {
    const head = JSON.stringify({ identity, commands: fresh ? [command] : [...commands, command] });
    const tmp = `${cacheFile}.${process.pid}`;
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${head}\n`), script.createCachedData()]), { mode: 0o600 });
    fs.renameSync(tmp, cacheFile);
  } catch {
    // a cache that cannot be written only costs the next run its compile
  }
}

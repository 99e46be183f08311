// The build's second step, after tsc (npm ci, npm test and npm run build run it): the CLI in one CommonJS file,
// dist/cli/carrier.cjs, which the installed `carrier` command (dist/cli/bin.cjs) runs. A short command then resolves and reads one file instead of a tree of ~200 ES
// modules, and loads only what it uses: esbuild turns every module into a function run when it is first imported,
// and Node's own modules (crypto, child_process, ...) are required there, not up front as ES imports would be.
//
// Every module of dist/ that finds files relative to itself (the addon, package.json, undici) keeps doing so: its
// `import.meta.url` becomes its own path in dist/, taken relative to the bundle's. Where a module only turns it into a
// path (`fileURLToPath(import.meta.url)`, `createRequire(import.meta.url)`), that path is joined directly: Node's URL
// code costs ~0.3 ms the first time it runs, and the bundle's own URL is made only when a module asks for a URL. Left outside, loaded from
// node_modules when a command needs them: openpgp (large; GPG signatures only), yaml (registries.d only), undici (the
// registry client requires its parts) and node-gyp-build (finds the addon).
import { build, transform } from 'esbuild';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazyExports, lazyIndex } from './lazy-index.mjs';

const dist = path.resolve(fileURLToPath(import.meta.url), '..', '..', 'dist');
const packageVersion = JSON.parse(await readFile(path.join(dist, '..', 'package.json'), 'utf8')).version;
if (typeof packageVersion !== 'string') throw new Error('bundle-cli: package.json has no version');
const out = path.join(dist, 'cli');

// A package left outside (and a Node module) is imported through __carrierImport: the bin runs the bundle as a
// vm.Script for its code cache on Node before 22.1, where import() inside the script would need the experimental vm
// loader (and a script from cached data loses even that), so the bin passes its own import() in. Required directly,
// the bundle uses its own.
const EXTERNAL_IMPORT = /\bimport\((['"])([^'"./][^'"]*)\1\)/g;

// A Node module imported dynamically is required instead: import() would start Node's ES module loader for it, ~5 ms
// of a short command (`version` read package.json through `await import('node:fs/promises')`). The result has the
// module's exports as an import() namespace has them, `default` among them.
function builtinImport(spec) {
  const id = JSON.stringify(spec);
  return `Promise.resolve().then(() => { const m = require(${id}); return { ...m, default: m }; })`;
}

// node:fs/promises is ours in the bundle, dist/fs/promises-lite.js: Node's own costs every short command ~1.4 ms to
// load, and the callback functions of node:fs, loaded with Node, do the same work (src/fs/promises-lite.ts).
const LITE = path.join(dist, 'fs', 'promises-lite.js');
const fsPromisesLite = {
  name: 'fs-promises-lite',
  setup(b) {
    b.onResolve({ filter: /^(node:)?fs\/promises$/ }, (args) => (args.importer === LITE ? undefined : { path: LITE }));
  },
};

const ownUrl = {
  name: 'own-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist + path.sep)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url') && !text.includes('import(')) return undefined;
      const rel = JSON.stringify(path.relative(out, args.path).split(path.sep).join('/'));
      const contents = text
        .replace(/\b(fileURLToPath|createRequire)\(import\.meta\.url\)/g, (_m, f) => (f === 'createRequire' ? `createRequire(__carrierPath(${rel}))` : `__carrierPath(${rel})`))
        .replaceAll('import.meta.url', `new URL(${rel}, __carrierUrl()).href`)
        .replace(EXTERNAL_IMPORT, (_m, q, spec) => (spec.startsWith('node:') ? builtinImport(spec) : `__carrierImport(${q}${spec}${q})`));
      return { contents, loader: 'js' };
    });
  },
};

// Node's modules that its own start-up has not loaded (crypto, stream, child_process, zlib, tls, readline...) cost
// 1 to 25 ms each to load on Node 20, and a module of the library imports them at its top level whether or not the
// command calls it: `images` loaded tls, net, child_process and zlib without using any. In the bundle each becomes a
// stand-in that requires the module on its first property access (a call, a class, a constant). The ones Node has
// loaded before any user code are required as they were. node:os and node:module are not among them: no short
// command calls os, and only native.ts's fallback (node-gyp-build) and the registry client call createRequire.
const EAGER = new Set(['fs', 'path', 'url', 'util', 'events', 'buffer']);
const BUILTIN_REQUIRE = /(__toESM\()?require\("node:([a-z_/]+)"\)(, 1\))?/g;
const LAZY_HELPER =
  'var __carrierLazy = (id) => { let m; const load = () => (m ??= require(id)); ' +
  'return new Proxy({}, { get: (_t, k) => (k === "default" ? load() : load()[k]), has: (_t, k) => k in load() }); };';

function lazyBuiltins(code) {
  return code.replace(BUILTIN_REQUIRE, (all, toEsm, id, toEsmEnd) => {
    if (EAGER.has(id) || Boolean(toEsm) !== Boolean(toEsmEnd)) return all;
    return `__carrierLazy("node:${id}")`;
  });
}

const result = await build({
  entryPoints: [path.join(out, 'dispatch.js')],
  outfile: path.join(out, 'carrier.cjs'),
  write: false,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['openpgp', 'yaml', 'undici', 'node-gyp-build'],
  // `carrier version` prints package.json's version: the bundle is made from the same package.json, so it holds it
  define: { CARRIER_PACKAGE_VERSION: JSON.stringify(packageVersion) },
  banner: {
    js:
      "var __carrierUrlHref; const __carrierUrl = () => (__carrierUrlHref ??= require('node:url').pathToFileURL(__filename).href);\n" +
      "const __carrierPath = (rel) => require('node:path').join(__dirname, rel);\n" +
      "var __carrierImport = typeof __carrierImport === 'function' ? __carrierImport : (specifier) => import(specifier);\n" +
      LAZY_HELPER,
  },
  plugins: [fsPromisesLite, ownUrl],
  sourcemap: 'external',
  logLevel: 'warning',
});
// esbuild escapes what is not ASCII in strings and regular expressions but leaves it in the comments it keeps (an arrow
// in a doc comment): one such character made V8 hold the whole source as a two-byte string, twice the bytes to decode,
// hash and keep for every command. Each UTF-16 unit past ASCII becomes a \uXXXX escape, which means the same in a
// string, a regular expression or an identifier, and is only text in a comment.
function asciiOnly(code) {
  return code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// The text a command reads, hashes and keeps, without what only a reader of the file needs: comments and indentation
// go (~800 KB to ~600 KB, each byte read, copied and looked at by V8 on every command), identifiers stay, so a stack
// trace names its functions; carrier.cjs.map maps it back to src/ (node --enable-source-maps). Then the bundle becomes
// the expression of its own function (exports, require, module, __filename, __dirname, __carrierImport, and the addon
// the bin opened, __carrierAddon, which src/native.ts takes instead of opening it again): the bin
// compiles the file's text as it is, with no wrapper to concatenate and V8 to flatten into another copy, and required
// as a module (NODE_DISABLE_COMPILE_CACHE, --enable-source-maps), it calls that function with the module's own
// arguments.
// Which of the two runs it is, `this` tells: a script's top level has the global object, a module's its exports.
const HEAD =
  '(function (main) { return this === globalThis ? main : void main.call(exports, exports, require, module, __filename, __dirname); })' +
  '.call(this, (function (exports, require, module, __filename, __dirname, __carrierImport, __carrierAddon) {';
const TAIL = '\n}));\n';

const js = result.outputFiles.find((f) => f.path.endsWith('.cjs')) ?? fail('no bundle');
const map = result.outputFiles.find((f) => f.path.endsWith('.cjs.map')) ?? fail('no source map');
const passed = asciiOnly(lazyExports(lazyIndex(lazyBuiltins(js.text.replace(/\/\/# sourceMappingURL=.*\n?$/, '')))));
const min = await transform(`${passed}\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(map.text).toString('base64')}\n`, {
  loader: 'js',
  format: 'cjs',
  target: 'node20',
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'eof',
  sourcemap: 'external',
  sourcefile: 'carrier.cjs',
});
// the function's parameters come first on the file's first line: the map's first line moves right by HEAD's length
const code = `${HEAD}${min.code}${TAIL}//# sourceMappingURL=carrier.cjs.map\n`;
if (/[^\x00-\x7f]/.test(code)) fail('the bundle is not ASCII');
const mapOut = JSON.parse(min.map);
mapOut.mappings = shiftFirstLine(mapOut.mappings, HEAD.length);
mapOut.file = 'carrier.cjs';
// the sources are in the package (src/): the map names them rather than holding a second copy
delete mapOut.sourcesContent;
// each written beside and renamed over: a running `carrier` has the bundle mapped (src/cli/bin.cts), and a file
// rewritten in place under a mapping faults the process that reads it next (SIGBUS)
await writeReplacing(js.path, code);
await writeReplacing(map.path, JSON.stringify(mapOut));

async function writeReplacing(file, text) {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, file);
}

// The bin (tsc's dist/cli/bin.cjs) with src/addon-file.cts inlined: required as a file of its own, it cost every
// command ~1 ms (Node's module loader resolving, reading and compiling it) before the bin could open the addon. The
// bundle stays a file of its own, left as the bin requires it.
const bin = path.join(out, 'bin.cjs');
const binBuilt = await build({
  entryPoints: [bin],
  outfile: bin,
  allowOverwrite: true,
  write: false,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  plugins: [{ name: 'bundle-outside', setup: (b) => b.onResolve({ filter: /^\.\/carrier\.cjs$/ }, (a) => ({ path: a.path, external: true })) }],
  sourcemap: 'external',
  logLevel: 'warning',
});
for (const f of binBuilt.outputFiles) {
  await writeReplacing(f.path, f.path.endsWith('.map') ? f.text : `${f.text.replace(/\/\/# sourceMappingURL=.*\n?$/, '')}//# sourceMappingURL=bin.cjs.map\n`);
}

function fail(why) {
  throw new Error(`bundle-cli: ${why}`);
}

/** Source-map mappings with the first generated line's columns moved right by `n` (its first segment is absolute). */
function shiftFirstLine(mappings, n) {
  if (mappings === '' || mappings[0] === ';' || mappings[0] === ',') return mappings;
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  // the first VLQ number: 5 bits a digit, continuation bit 32, sign in the lowest bit of the value
  let value = 0;
  let shift = 0;
  let i = 0;
  for (;;) {
    const digit = B64.indexOf(mappings[i++]);
    value += (digit & 31) << shift;
    shift += 5;
    if ((digit & 32) === 0) break;
  }
  const column = (value & 1 ? -(value >>> 1) : value >>> 1) + n;
  let v = column < 0 ? (-column << 1) | 1 : column << 1;
  let out = '';
  do {
    let digit = v & 31;
    v >>>= 5;
    if (v > 0) digit |= 32;
    out += B64[digit];
  } while (v > 0);
  return out + mappings.slice(i);
}

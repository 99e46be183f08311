// The build's second step, after tsc (npm ci, npm test and npm run build run it): the CLI in one CommonJS file,
// dist/cli/carrier.cjs, which the installed `carrier` command (dist/cli/bin.cjs) runs. A short command then resolves and reads one file instead of a tree of ~200 ES
// modules, and loads only what it uses: esbuild turns every module into a function run when it is first imported,
// and Node's own modules (crypto, child_process, ...) are required there, not up front as ES imports would be.
//
// Every module of dist/ that finds files relative to itself (the addon, package.json, undici) keeps doing so: its
// `import.meta.url` becomes its own path in dist/, taken relative to the bundle's. Left outside, loaded from
// node_modules when a command needs them: openpgp (large; GPG signatures only), yaml (registries.d only), undici (the
// registry client requires its parts) and node-gyp-build (finds the addon).
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(fileURLToPath(import.meta.url), '..', '..', 'dist');
const out = path.join(dist, 'cli');

const ownUrl = {
  name: 'own-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist + path.sep)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = path.relative(out, args.path).split(path.sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, __carrierUrl).href`), loader: 'js' };
    });
  },
};

await build({
  entryPoints: [path.join(out, 'dispatch.js')],
  outfile: path.join(out, 'carrier.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['openpgp', 'yaml', 'undici', 'node-gyp-build'],
  banner: { js: "const __carrierUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [ownUrl],
  logLevel: 'warning',
});

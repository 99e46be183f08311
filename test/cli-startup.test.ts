// The installed `carrier` command: package.json's bin is dist/cli/bin.cjs, which runs the CLI bundled by
// scripts/bundle-cli.mjs after tsc (dist/cli/carrier.cjs). The short commands a harness calls thousands of
// times run through it on a real store, and a short command loads none of the large packages only pulls, pushes
// and signatures need (issue 21: start-up). Run `npm run build` (not `tsc` alone) before this file.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store/store.js';
import { buildRunnableImage } from './support/runnable.js';
import { commitOf, storeDirs } from './support/store.js';

const repo = path.resolve(import.meta.dirname, '..');
const bin = path.join(repo, 'dist/cli/bin.cjs');
const bundle = path.join(repo, 'dist/cli/carrier.cjs');
const unbundled = path.join(repo, 'dist/cli/main.js');
const NAME = 'localhost/startup:1';

let work: string;
let globals: string[];

function carrier(entry: string, args: string[], node: string[] = [], env: NodeJS.ProcessEnv = process.env): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [...node, entry, ...globals, ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function ok(entry: string, args: string[]): string {
  const r = carrier(entry, args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-startup-'));
  const dirs = storeDirs(work);
  globals = ['--root', dirs.root, '--runroot', dirs.runroot];
  const store = await Store.open(dirs);
  try {
    await store.commitImage(commitOf(buildRunnableImage(path.join(work, 'oci')), [NAME]));
  } finally {
    await store.close();
  }
});

afterAll(() => {
  if (work) {
    // a test that failed between mount and umount leaves the overlay mounted
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const at = line.split(' ')[1];
      if (at?.startsWith(work)) spawnSync('umount', ['-l', at]);
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
});

describe('the carrier bin', () => {
  it('runs the bundle made from the current dist/', () => {
    expect(fs.readFileSync(bin, 'utf8')).toMatch(/require\(["']\.\/carrier\.cjs["']\)/);
    // tsc alone rewrites dist/cli/dispatch.js and leaves the bundle as it was: that bundle would run old code
    expect(fs.statSync(bundle).mtimeMs, 'dist/cli/carrier.cjs is older than tsc output: run node scripts/bundle-cli.mjs').toBeGreaterThanOrEqual(
      fs.statSync(path.join(repo, 'dist/cli/dispatch.js')).mtimeMs,
    );
  });

  it('runs version, images, inspect, create, mount, ps, umount and rm on a store as the unbundled CLI does', () => {
    expect(ok(bin, ['version'])).toBe(ok(unbundled, ['version']));
    expect(ok(bin, ['version'])).toMatch(/^carrier \d+\.\d+\.\d+\ncarrier-native\//);
    const images = ok(bin, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images).toBe(NAME);
    expect(images).toBe(ok(unbundled, ['images', '--format', '{{.Repository}}:{{.Tag}}']));

    const id = ok(bin, ['create', '--name', 'short', NAME]);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const merged = ok(bin, ['mount', id]);
    expect(fs.readFileSync(path.join(merged, 'etc/os-release'), 'utf8')).toContain('ID=');
    expect(ok(bin, ['ps', '-a', '--format', '{{.ID}} {{.Names}}'])).toBe(`${id.slice(0, 12)} short`);
    const container = JSON.parse(ok(bin, ['container', 'inspect', 'short'])) as { Id: string }[];
    expect(container.map((c) => c.Id)).toEqual([id]);
    const image = JSON.parse(ok(bin, ['inspect', NAME])) as { RepoTags: string[] }[];
    expect(image.map((i) => i.RepoTags)).toEqual([[NAME]]);
    expect(ok(bin, ['umount', id])).toBe(id);
    expect(fs.readFileSync('/proc/self/mounts', 'utf8')).not.toContain(merged);
    expect(ok(bin, ['rm', id])).toBe(id);
    expect(ok(bin, ['ps', '-a', '--format', '{{.ID}}'])).toBe('');
  });

  it('fails as the unbundled CLI does: an unknown command and a missing image', () => {
    for (const args of [['nosuch'], ['inspect', 'localhost/missing:1']]) {
      const a = carrier(bin, args);
      const b = carrier(unbundled, args);
      expect(a.status).toBe(125);
      expect([a.status, a.stdout, a.stderr]).toEqual([b.status, b.stdout, b.stderr]);
    }
  });
});

describe('how the bin ends and what its stack traces say', () => {
  it('keeps the exit code and all the output when it exits as soon as the command is done', () => {
    // a long answer through a pipe: every byte arrives, and a refused command still ends with podman's code
    const help = carrier(bin, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(carrier(unbundled, ['--help']).stdout);
    const refused = carrier(bin, ['images', '--nosuch']);
    expect([refused.status, refused.stderr]).toEqual([125, "Error: unknown flag: --nosuch\nSee 'carrier images --help'\n"]);
    // stderr written through process.stderr (a pipe here) and a non-zero code, on the bundle's require path too
    const missing = carrier(bin, ['inspect', 'localhost/missing:1'], [], { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(missing.status).toBe(125);
    expect(missing.stderr).toMatch(/^Error: .*missing/);
  });

  it('names the TypeScript sources in a stack trace under --enable-source-maps', () => {
    // a stack taken where the CLI writes its output
    const probe = path.join(work, 'stack.cjs');
    fs.writeFileSync(
      probe,
      `const fs = require('node:fs'); const write = fs.writeSync;
       fs.writeSync = function (fd, ...rest) { if (fd === 1) write(2, new Error('here').stack + '\\n'); return write.call(this, fd, ...rest); };`,
    );
    const r = carrier(bin, ['version'], ['--enable-source-maps', '--require', probe]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/at writeOut \(.*src\/cli\/output\.ts:\d+:\d+\)/);
    // without the flag the frames are the bundle's, with the functions' names
    expect(carrier(bin, ['version'], ['--require', probe]).stderr).toMatch(/at writeOut \(.*dist\/cli\/carrier\.cjs:\d+:\d+\)/);
  });
});

describe("the bin's code cache", () => {
  // the bin keeps its own in the temporary directory on every Node (Node's compile cache, 22.1+, is taken before the
  // command's functions are compiled)

  it('runs a command from the cache an earlier run of its word left, imports a package outside the bundle through it, and starts afresh for a rebuilt bundle', () => {
    const tmp = path.join(work, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    const env = { ...process.env, TMPDIR: tmp };
    const cacheDir = path.join(tmp, `carrier-compile-cache-${process.getuid!()}`);
    const cacheFiles = () => (fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []);
    // registries.d is YAML: its parser is outside the bundle, imported when the command reads it
    const registries = path.join(work, 'registries.d');
    fs.mkdirSync(registries, { recursive: true });
    fs.writeFileSync(path.join(registries, 'default.yaml'), 'default-docker:\n  lookaside: file:///var/lib/sigs\n');
    const commands = [
      ['images', '--format', '{{.Repository}}:{{.Tag}}'],
      ['image', 'trust', 'show', '--registrypath', registries],
      ['version'],
      ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'],
    ];
    const expected = commands.map((args) => ok(unbundled, args));
    for (let round = 0; round < 2; round++) {
      for (const [i, args] of commands.entries()) {
        // after the global options (--root DIR --runroot DIR), as a user types them
        const r = carrier(bin, args, [], env);
        expect([r.status, r.stderr, r.stdout.trim()]).toEqual([0, '', expected[i]]);
      }
      // one cache per command word: images, image (trust show and ls), version
      expect(cacheFiles().length).toBe(3);
    }
    const head = (word: string): { identity: string; commands: string[] } => {
      const file = cacheFiles().find((f) => f.endsWith(`-${word}.v8`));
      expect(file, `a cache for ${word}`).toBeDefined();
      return JSON.parse(fs.readFileSync(path.join(cacheDir, file!), 'utf8').split('\n')[0]!);
    };
    expect([head('images').commands, head('image').commands, head('version').commands]).toEqual([['images'], ['image trust show', 'image ls'], ['version']]);
    // a bundle rebuilt in place (another mtime) is not run from the old code
    const identity = head('version').identity;
    const now = new Date();
    fs.utimesSync(bundle, now, now);
    expect(carrier(bin, ['version'], [], env).stdout.trim()).toBe(expected[2]);
    expect(head('version').identity).not.toBe(identity);
    expect(head('version').commands).toEqual(['version']);
    expect(fs.statSync(cacheDir).mode & 0o777).toBe(0o700);
    // where the bin does not open the addon itself (node-gyp-build's cases: PREBUILDS_ONLY here), it reads the bundle
    // and the cache instead of mapping them, and the bundle opens the addon
    expect(carrier(bin, ['version'], [], { ...env, PREBUILDS_ONLY: '1' }).stdout.trim()).toBe(expected[2]);
    expect(carrier(bin, ['images', '--format', '{{.Repository}}:{{.Tag}}'], [], { ...env, PREBUILDS_ONLY: '1' }).stdout.trim()).toBe(expected[0]);
    // NODE_DISABLE_COMPILE_CACHE: no cache read or written
    fs.rmSync(cacheDir, { recursive: true });
    expect(carrier(bin, ['version'], [], { ...env, NODE_DISABLE_COMPILE_CACHE: '1' }).stdout.trim()).toBe(expected[2]);
    expect(cacheFiles()).toEqual([]);
  });
});

describe("the bin's command word", () => {
  it('skips the value of every global option that takes one', async () => {
    // the bin picks a command's cache before the CLI parses the line: it knows which global options take a value
    const { root } = await import('../src/cli/table.js');
    const source = fs.readFileSync(path.join(repo, 'src/cli/bin.cts'), 'utf8');
    const known = /const VALUE_FLAGS = new Set\(\[([^\]]*)\]\)/.exec(source)?.[1]?.match(/'--[a-z-]+'/g)?.map((f) => f.slice(3, -1));
    expect(known?.sort()).toEqual((root.flags ?? []).filter((f) => f.type !== 'bool').map((f) => f.name).sort());
  });
});

describe('what a short command loads', () => {
  // Every file Node loads, CommonJS or ES module, written to a list as the process exits.
  const probe = (list: string): string[] => [
    '--require',
    path.join(work, 'probe.cjs'),
    '--import',
    `data:text/javascript,${encodeURIComponent(
      `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(
        `import { appendFileSync } from 'node:fs'; export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(list)}, r.url + '\\n'); return r; }`,
      )}`)});`,
    )}`,
  ];

  it.each([
    ['the bin', () => bin],
    ['the unbundled CLI', () => unbundled],
  ])('`images` and `ps` through %s load no YAML, openpgp, undici or tar parser of a registry pull', (_what, entry) => {
    const list = path.join(work, 'loaded.txt');
    fs.writeFileSync(
      path.join(work, 'probe.cjs'),
      `process.on('exit', () => require('node:fs').appendFileSync(${JSON.stringify(list)}, Object.keys(require.cache).join('\\n') + '\\n'));`,
    );
    for (const args of [['images'], ['ps', '-a']]) {
      fs.rmSync(list, { force: true });
      const r = carrier(entry(), args, probe(list));
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const loaded = fs.readFileSync(list, 'utf8').split('\n').filter(Boolean);
      expect(loaded.some((f) => f.includes('/dist/'))).toBe(true);
      expect(loaded.filter((f) => /node_modules\/(yaml|openpgp|undici|tar-stream)\//.test(f))).toEqual([]);
    }
  });

  it("runs the short commands without Node's fs/promises or node:module", () => {
    // the bundle's fs/promises is src/fs/promises-lite.ts; Node's module (FileHandle, readline, watchers, ~1.4 ms to
    // load) would be loaded by the first call the lite one leaves to it. node:module is for node-gyp-build, when the
    // addon is not where native.ts looks first. (node:os is lazy too, but a store without HOME asks it for the home.)
    const list = path.join(work, 'modules.txt');
    const probe = path.join(work, 'modules.cjs');
    fs.writeFileSync(probe, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));`);
    const loaded = (args: string[]): string[] => {
      fs.rmSync(list, { force: true });
      const r = carrier(bin, args, ['--require', probe]);
      expect([r.status, r.stderr]).toEqual([0, '']);
      const modules = fs.readFileSync(list, 'utf8').split('\n');
      expect(modules).toContain('NativeModule vm');
      return modules.filter((m) => /^NativeModule (internal\/fs\/promises|fs\/promises|module)$/.test(m)).map((m) => `${args[0]}: ${m}`);
    };
    const id = ok(bin, ['create', '--name', 'modules', NAME]);
    const found = [
      ['version'],
      ['images'],
      ['ps', '-a'],
      ['inspect', NAME],
      ['create', '--name', 'modules-2', NAME],
      ['mount', id],
      ['umount', id],
      ['rm', id],
      ['rm', 'modules-2'],
    ].flatMap(loaded);
    expect(found).toEqual([]);
  });
});

/**
 * Running the real applyLayer/assembleLayer (and removeTree, writeFileAtomic) as an unprivileged user (uid/gid 65534) from tests that run as root.
 *
 * Root bypasses permission checks, so a root test cannot see what an unprivileged user hits: read-only
 * directories, 0000 files, cleanup of a half-applied layer. This builds a throwaway copy of the package (src/
 * transpiled with the installed TypeScript, build/ and node_modules/ symlinked) and runs a small script in it with
 * `setpriv --reuid --regid --clear-groups` (util-linux). No mocks: the same addon and the same TS wrapper.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const NOBODY = 65534;

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const SCRIPT = `
import fs from 'node:fs';
import crypto from 'node:crypto';
const { applyLayer, assembleLayer } = await import('./src/index.js');
const [op, ...args] = JSON.parse(process.argv[2]);
const out = (v) => process.stdout.write(JSON.stringify(v));
try {
  if (op === 'apply') {
    const [source, dir, options] = args;
    out({ ok: true, result: await applyLayer(source, dir, options) });
  } else if (op === 'removeTree') {
    const { removeTree } = await import('./src/fs/remove.js');
    await removeTree(args[0]);
    out({ ok: true });
  } else if (op === 'writeFileAtomic') {
    const { writeFileAtomic } = await import('./src/store/atomic.js');
    await writeFileAtomic(args[0], args[1]);
    out({ ok: true });
  } else if (op === 'assemble') {
    const [tarSplit, dir] = args;
    const h = crypto.createHash('sha256');
    let length = 0;
    for await (const chunk of assembleLayer(tarSplit, dir)) { h.update(chunk); length += chunk.length; }
    out({ ok: true, digest: 'sha256:' + h.digest('hex'), length });
  }
} catch (err) {
  out({ ok: false, code: err.code, message: err.message, path: err.path, syscall: err.syscall, name: err.name });
}
`;

export interface ChildOutcome<T> {
  ok: boolean;
  result?: T;
  digest?: string;
  length?: number;
  code?: string;
  message?: string;
  path?: string;
  syscall?: string;
  name?: string;
}

/** Makes a copy of the package under `work` that uid 65534 can load; returns a function running one operation. */
export type UnprivilegedOp = 'apply' | 'assemble' | 'removeTree' | 'writeFileAtomic';

export function unprivilegedRunner(work: string): <T>(op: UnprivilegedOp, ...args: unknown[]) => ChildOutcome<T> {
  const pkg = path.join(work, 'pkg');
  fs.mkdirSync(pkg, { recursive: true });
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(pkg, 'package.json'));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'node_modules'));
  // node-gyp-build takes build/Release when it exists (a from-source build), else the committed prebuild.
  if (fs.existsSync(path.join(repo, 'build/Release'))) fs.symlinkSync(path.join(repo, 'build'), path.join(pkg, 'build'));
  fs.symlinkSync(path.join(repo, 'prebuilds'), path.join(pkg, 'prebuilds'));
  const transpile = (from: string, to: string): void => {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
      const src = path.join(from, entry.name);
      if (entry.isDirectory()) transpile(src, path.join(to, entry.name));
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const js = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
          fileName: entry.name,
        }).outputText;
        fs.writeFileSync(path.join(to, entry.name.replace(/\.ts$/, '.js')), js);
      } else if (entry.name.endsWith('.cts') && !entry.name.endsWith('.d.cts')) {
        // CommonJS sources (src/addon-file.cts, which src/native.ts imports as ./addon-file.cjs)
        const js = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
          fileName: entry.name,
        }).outputText;
        fs.writeFileSync(path.join(to, entry.name.replace(/\.cts$/, '.cjs')), js);
      }
    }
  };
  transpile(path.join(repo, 'src'), path.join(pkg, 'src'));
  const script = path.join(pkg, 'run.mjs');
  fs.writeFileSync(script, SCRIPT);
  // Everything the child reads must be reachable by uid 65534.
  for (let p = pkg; p.startsWith(work); p = path.dirname(p)) fs.chmodSync(p, 0o755);

  return <T>(op: UnprivilegedOp, ...args: unknown[]): ChildOutcome<T> => {
    const stdout = execFileSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, script, JSON.stringify([op, ...args])],
      { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' } },
    );
    return JSON.parse(stdout.toString()) as ChildOutcome<T>;
  };
}

/** A fresh empty directory owned by uid 65534 (a layer's diff/ as an unprivileged store would create it). */
export function nobodyDir(parent: string, name: string): string {
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  fs.chownSync(dir, NOBODY, NOBODY);
  fs.chmodSync(dir, 0o700);
  return dir;
}

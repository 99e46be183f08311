// The shape ARCHITECTURE.md promises, checked on the source: small files, arrows that point one way, drivers that
// only src/drivers/ tells apart, and a CLI built on the public API alone.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '..');
const srcRoot = path.join(repo, 'src');

function sourceFiles(dir = srcRoot): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

/** Relative imports and re-exports of a file (type-only ones included: they are arrows too), as absolute .ts paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms),
    ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

const rel = (p: string): string => path.relative(srcRoot, p);

describe('source layout', () => {
  const files = sourceFiles();

  it('keeps every file in src/ at 500 lines or fewer', () => {
    const big = files
      .map((f) => ({ file: rel(f), lines: fs.readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > 500);
    expect(big).toEqual([]);
  });

  it('has no import cycle in src/', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((d) => fs.existsSync(d))]));
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const cycles: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('tells drivers apart only inside src/drivers/', () => {
    const offenders = files
      .filter((f) => !rel(f).startsWith('drivers/'))
      .filter((f) => /instanceof\s+(Overlay|Vfs)Driver\b|\b(Overlay|Vfs)Driver\b/.test(fs.readFileSync(f, 'utf8')))
      .map(rel);
    expect(offenders).toEqual([]);
  });

  it('builds the CLI on the public API alone', () => {
    const outside = files
      .filter((f) => rel(f).startsWith('cli/'))
      .flatMap((f) => importsOf(f).map((d) => ({ from: rel(f), to: rel(d) })))
      .filter(({ to }) => !to.startsWith('cli/') && to !== 'index.ts');
    expect(outside).toEqual([]);
  });

  it('imports nothing from the CLI outside it', () => {
    const upward = files
      .filter((f) => !rel(f).startsWith('cli/'))
      .flatMap((f) => importsOf(f).map((d) => ({ from: rel(f), to: rel(d) })))
      .filter(({ to }) => to.startsWith('cli/'));
    expect(upward).toEqual([]);
  });
});

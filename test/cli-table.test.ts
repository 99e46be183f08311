/**
 * The CLI's command table (`node dist/cli/main.js`): every command refuses a flag it does not define with podman's
 * exit code 125 and wording before it does anything, and prints --help in one layout made from its definition.
 *
 * Needs `npx tsc -p tsconfig.json` first.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { root } from '../src/cli/table.js';
import type { CommandDef } from '../src/cli/command.js';
import { tempDir } from './support/fixtures.js';
import { buildTestImage } from './support/images.js';
import { snapshot } from './support/store.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

let work: string;
let dirs: { root: string; runroot: string; data: string };

function carrier(args: string[]): Result {
  const r = spawnSync(process.execPath, [CLI, '--root', dirs.root, '--runroot', dirs.runroot, ...args], {
    env: { ...process.env, XDG_DATA_HOME: dirs.data, CARRIER_CACHE_MAX_SIZE: '' },
    encoding: 'utf8',
    input: 'y\n',
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every command in the table with its path, groups included: [['images'], ['image'], ['image', 'ls'], …]. */
function allCommands(def: CommandDef, path: string[] = []): { def: CommandDef; path: string[] }[] {
  return (def.subcommands ?? []).flatMap((c) => [{ def: c, path: [...path, c.name] }, ...allCommands(c, [...path, c.name])]);
}

/** The store's records and files, and the blob cache: what a refused command must leave as it was. */
function state(): Record<string, string> {
  return { ...snapshot(dirs.root), ...Object.fromEntries(Object.entries(snapshot(dirs.data)).map(([k, v]) => [`data/${k}`, v])) };
}

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  work = tempDir('cli-table');
  dirs = { root: path.join(work, 'root'), runroot: path.join(work, 'run'), data: path.join(work, 'data') };
  fs.mkdirSync(dirs.data);
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('unknown flags', () => {
  it('images --bogus, rmi --froce x and system prune --all-typo -f exit 125 and change nothing', () => {
    const named = buildTestImage(path.join(work, 'named'), { tag: 'v1', label: 'named' });
    const dangling = buildTestImage(path.join(work, 'dangling'), { tag: 'v1', label: 'dangling' });
    for (const img of [named, dangling]) expect(carrier(['load', '-q', '-i', img.ociDir]).status).toBe(0);
    const namedId = named.configDigest.slice(7);
    expect(carrier(['tag', namedId, 'keep:1']).status).toBe(0);
    expect(carrier(['untag', dangling.configDigest.slice(7)]).status).toBe(0);
    const before = state();
    expect(Object.keys(before).length).toBeGreaterThan(10);

    const refused = [
      { args: ['images', '--bogus'], flag: '--bogus', path: 'images' },
      { args: ['rmi', '--froce', 'keep:1'], flag: '--froce', path: 'rmi' },
      { args: ['system', 'prune', '--all-typo', '-f'], flag: '--all-typo', path: 'system prune' },
    ];
    for (const r of refused) {
      const out = carrier(r.args);
      expect({ args: r.args, ...out }).toEqual({ args: r.args, status: 125, stdout: '', stderr: `Error: unknown flag: ${r.flag}\nSee 'carrier ${r.path} --help'\n` });
    }
    expect(state()).toEqual(before);
    expect(carrier(['image', 'exists', 'keep:1']).status).toBe(0);
    expect(carrier(['image', 'exists', dangling.configDigest.slice(7)]).status).toBe(0);

    // The same commands spelt right do what the typo would have hidden.
    expect(carrier(['rmi', '--force', 'keep:1']).status).toBe(0);
    expect(carrier(['image', 'exists', 'keep:1']).status).toBe(1);
    expect(carrier(['system', 'prune', '--all', '-f']).status).toBe(0);
    expect(carrier(['images', '-aq']).stdout).toBe('');
  });

  it('a shorthand flag, a missing value and a non-boolean for a boolean are refused the same way', () => {
    expect(carrier(['rmi', '-z', 'x'])).toEqual({ status: 125, stdout: '', stderr: "Error: unknown shorthand flag: 'z' in -z\nSee 'carrier rmi --help'\n" });
    expect(carrier(['images', '--format'])).toMatchObject({ status: 125, stderr: "Error: flag needs an argument: --format\nSee 'carrier images --help'\n" });
    expect(carrier(['rmi', '--force=maybe', 'x'])).toMatchObject({ status: 125, stderr: expect.stringMatching(/^Error: invalid argument "maybe" for "-f, --force" flag/) });
    expect(carrier(['system', 'bogus'])).toMatchObject({ status: 125, stderr: "Error: unrecognized command `carrier system bogus`\nTry 'carrier system --help' for more information\n" });
  });
});

describe('every command in the table', () => {
  const commands = allCommands(root);

  it('lists the commands podman users expect', () => {
    const names = commands.map((c) => c.path.join(' '));
    for (const n of ['images', 'rmi', 'image ls', 'image rm', 'image prune', 'system prune', 'system df', 'system reset', 'container rm', 'volume rm', 'run', 'pull']) {
      expect(names).toContain(n);
    }
  });

  it('refuses an unknown flag with exit code 125, naming the flag and the command, before opening a store', () => {
    fs.rmSync(dirs.root, { recursive: true, force: true });
    fs.rmSync(dirs.runroot, { recursive: true, force: true });
    const failures: string[] = [];
    for (const { path: p } of [{ path: [] as string[] }, ...commands]) {
      const r = carrier([...p, '--bogus-flag']);
      const expected = `Error: unknown flag: --bogus-flag\nSee '${['carrier', ...p].join(' ')} --help'\n`;
      if (r.status !== 125 || r.stderr !== expected || r.stdout !== '') failures.push(`${p.join(' ')}: ${r.status} ${JSON.stringify(r.stderr)}`);
    }
    expect(failures).toEqual([]);
    // Nothing ran: no command made the store it was pointed at.
    expect(fs.existsSync(dirs.root)).toBe(false);
    expect(fs.existsSync(dirs.runroot)).toBe(false);
  });

  it('prints --help and -h in one layout: summary, usage, (commands,) options with every flag', () => {
    const failures: string[] = [];
    for (const { def, path: p } of commands) {
      const name = ['carrier', ...p].join(' ');
      for (const flag of ['--help', '-h']) {
        const r = carrier([...p, flag]);
        const problems: string[] = [];
        if (r.status !== 0) problems.push(`exit ${r.status}`);
        if (r.stderr !== '') problems.push(`stderr ${JSON.stringify(r.stderr)}`);
        if (!r.stdout.startsWith(`${def.summary}\n\n`)) problems.push('summary');
        if (!r.stdout.includes(`\nUsage:\n  ${name} ${def.usage}\n`)) problems.push('usage');
        if (!/\nOptions:\n(.*\n)*  -h, --help +show this help\n/.test(r.stdout)) problems.push('options');
        for (const f of def.flags ?? []) {
          const left = `${f.short ? `-${f.short}, ` : '    '}--${f.name}`;
          if (!r.stdout.includes(`\n  ${left}`)) problems.push(`flag --${f.name}`);
        }
        for (const s of def.subcommands ?? []) if (!new RegExp(`\\n  ${s.name} +${escape(s.summary)}\\n`).test(r.stdout)) problems.push(`subcommand ${s.name}`);
        if (problems.length > 0) failures.push(`${name} ${flag}: ${problems.join(', ')}`);
      }
    }
    expect(failures).toEqual([]);
    expect(fs.existsSync(dirs.root)).toBe(false);
  });
});

describe('the CLI stays thin', () => {
  it('imports only the public API (src/index.ts), Node and its own files', () => {
    const cliDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli');
    const outside: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, e.name);
        if (e.isDirectory()) walk(file);
        else if (e.name.endsWith('.ts')) {
          for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
            const spec = m[1]!;
            if (spec.startsWith('node:')) continue;
            const target = path.resolve(path.dirname(file), spec);
            if (target === path.join(cliDir, '..', 'index.js') || target.startsWith(cliDir + path.sep)) continue;
            outside.push(`${path.relative(cliDir, file)}: ${spec}`);
          }
        }
      }
    };
    walk(cliDir);
    expect(outside).toEqual([]);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

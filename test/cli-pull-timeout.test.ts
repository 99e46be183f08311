// `carrier pull --timeout`: the overall registry deadline (library `timeout`) reaches the CLI, a stalled registry
// ends the pull with an error naming the deadline, and nothing is stored.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startRegistry, pushImage, type TestRegistry } from './support/registry.js';
import { startFaultProxy, isBlobGet, type FaultProxy } from './support/fault-proxy.js';
import { buildTestImage } from './support/images.js';
import { tempDir } from './support/fixtures.js';

const CLI = path.resolve(import.meta.dirname, '..', 'dist/cli/main.js');
let work: string;
let reg: TestRegistry;
let proxy: FaultProxy;

function carrier(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--root', path.join(work, 'root'), '--runroot', path.join(work, 'run'), ...args], {
    env: { ...process.env, XDG_DATA_HOME: path.join(work, 'data') },
    encoding: 'utf8',
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  work = tempDir('cli-pull-timeout');
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  await pushImage(reg.host, buildTestImage(path.join(work, 'img')).ociDir, 'stall/a:1');
});

afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('carrier pull --timeout', () => {
  it('ends a pull whose blobs never come, naming the deadline, and stores nothing', () => {
    proxy.addRule({ match: isBlobGet, fault: { kind: 'hang' }, times: Infinity });
    const r = carrier(['pull', '--tls-verify=false', '--timeout', '2s', `${proxy.host}/stall/a:1`]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/timeout|deadline/i);
    expect(r.stderr).toContain(proxy.host);
    expect(carrier(['images', '-q']).stdout).toBe('');
  }, 60_000);

  it('refuses a duration it cannot read with exit 125', () => {
    const r = carrier(['pull', '--timeout', 'soon', `${proxy.host}/stall/a:1`]);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain('invalid duration "soon"');
  });
});

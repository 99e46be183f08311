// `carrier pull --timeout`: the overall registry deadline (library `timeout`) reaches the CLI, a stalled registry
// ends the pull with an error naming the deadline, and nothing is stored. `run` and `create` take pull's flags from
// the same definition, so their pull of a missing image keeps the same deadline.
import { describe, it, expect, beforeAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { isBlobGet } from './support/fault-proxy.js';
import { registryRig } from './support/registry-rig.js';

const CLI = path.resolve(import.meta.dirname, '..', 'dist/cli/main.js');
const rig = registryRig('cli-pull-timeout', { proxy: true, resetProxy: true, requireTools: false }, async () => {
  await rig.buildAndPush('img', 'stall/a:1');
});

/** The CLI on the file's store, run asynchronously: the proxy in this process must answer it. */
function carrier(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const { work } = rig;
  const argv = [CLI, '--root', path.join(work, 'root'), '--runroot', path.join(work, 'run'), ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { env: { ...process.env, XDG_DATA_HOME: path.join(work, 'data') }, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
});

describe('carrier pull --timeout', async () => {
  it('ends a pull whose blobs never come, naming the deadline, and stores nothing', async () => {
    const { proxy } = rig;
    proxy.addRule({ match: isBlobGet, fault: { kind: 'hang' }, times: Infinity });
    const r = await carrier(['pull', '--tls-verify=false', '--timeout', '2s', `${proxy.host}/stall/a:1`]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/timeout|deadline/i);
    expect(r.stderr).toContain(proxy.host);
    expect(proxy.requests.some(isBlobGet)).toBe(true);
    expect((await carrier(['images', '-q'])).stdout).toBe('');
  }, 60_000);

  it('refuses a duration it cannot read with exit 125', async () => {
    const r = await carrier(['pull', '--timeout', 'soon', `${rig.proxy.host}/stall/a:1`]);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain('invalid duration "soon"');
  });
});

describe('carrier run and create --timeout', async () => {
  it('run: the pull of a missing image ends at the deadline with exit 125, and nothing is stored or run', async () => {
    const { proxy } = rig;
    proxy.addRule({ match: isBlobGet, fault: { kind: 'hang' }, times: Infinity });
    const r = await carrier(['run', '--rm', '--tls-verify=false', '--timeout', '2s', `${proxy.host}/stall/a:1`, 'true']);
    expect(r.status, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/timeout|deadline/i);
    expect(r.stderr).toContain(proxy.host);
    expect(proxy.requests.some(isBlobGet)).toBe(true);
    expect((await carrier(['images', '-q'])).stdout).toBe('');
    expect((await carrier(['ps', '-a', '-q'])).stdout).toBe('');
  }, 60_000);

  it('create: refuses a duration it cannot read with exit 125, before asking the registry', async () => {
    const r = await carrier(['create', '--timeout', 'soon', `${rig.proxy.host}/stall/a:1`]);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain('invalid duration "soon"');
    expect(rig.proxy.requests).toEqual([]);
  });
});

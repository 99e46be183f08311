// A registry over TLS with a certificate from an authority made for the run, trusted the ways podman users trust one:
// `--cert-dir DIR`, or the registry's certs.d directory (containers-certs.d(5)). Without either the pull is refused.
// Through the built CLI, with the real registry and podman given the same directory; `carrier run` pulls a missing
// image with the same flag.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registryRig } from './support/registry-rig.js';
import { buildRunnableImage, OS_RELEASE, requireBusybox } from './support/runnable.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
let ref: string;
let configId: string;
let certDir: string;
let runnable: string;
const rig = registryRig('registry-certs', { registry: { tls: true } }, async ({ reg, work }) => {
  requireBusybox();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  const img = await rig.buildAndPush('img', 'tls/app:1', { label: 'certs' });
  await rig.push(buildRunnableImage(path.join(work, 'runnable')), 'tls/run:1');
  certDir = path.join(work, 'certs');
  fs.mkdirSync(certDir);
  fs.writeFileSync(path.join(certDir, 'registry-ca.crt'), reg.caCert!);
  ref = `${reg.host}/tls/app:1`;
  runnable = `${reg.host}/tls/run:1`;
  configId = img.configDigest.slice('sha256:'.length);
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, NODE_EXTRA_CA_CERTS: '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

let n = 0;
function store(): string[] {
  const dir = path.join(rig.work, `s${n++}`);
  return ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run')];
}

describe('registry certificates', () => {
  it('refuses an unknown authority, and trusts it from --cert-dir or certs.d as podman does', async () => {
    const refused = await run(process.execPath, [CLI, ...store(), 'pull', '-q', ref], { XDG_CONFIG_HOME: path.join(rig.work, 'no-config') });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);

    const byFlag = await run(process.execPath, [CLI, ...store(), 'pull', '-q', '--cert-dir', certDir, ref], { XDG_CONFIG_HOME: path.join(rig.work, 'no-config') });
    expect(byFlag.code, byFlag.stderr).toBe(0);
    expect(byFlag.stdout.trim()).toBe(configId);

    const config = path.join(rig.work, 'config');
    fs.mkdirSync(path.join(config, 'containers', 'certs.d', rig.reg.host), { recursive: true });
    fs.copyFileSync(path.join(certDir, 'registry-ca.crt'), path.join(config, 'containers', 'certs.d', rig.reg.host, 'ca.crt'));
    const byCertsD = await run(process.execPath, [CLI, ...store(), 'pull', '-q', ref], { XDG_CONFIG_HOME: config });
    expect(byCertsD.code, byCertsD.stderr).toBe(0);
    expect(byCertsD.stdout.trim()).toBe(configId);

    const [root, runroot] = [path.join(rig.work, 'podman', 'root'), path.join(rig.work, 'podman', 'run')];
    const p = await run('podman', ['--root', root, '--runroot', runroot, '--tmpdir', path.join(rig.work, 'podman', 'tmp'), 'pull', '-q', '--cert-dir', certDir, ref]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout.trim()).toBe(configId);
  }, 120_000);

  it('carrier run pulls a missing image from the registry with --cert-dir, and is refused without it', async () => {
    const env = { XDG_CONFIG_HOME: path.join(rig.work, 'no-config') };
    const s = store();
    const refused = await run(process.execPath, [CLI, ...s, 'run', '--rm', runnable], env);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);

    const ran = await run(process.execPath, [CLI, ...s, 'run', '--rm', '-q', '--cert-dir', certDir, runnable], env);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe(OS_RELEASE);
  }, 120_000);
});

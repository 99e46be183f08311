/**
 * `carrier push` and `carrier copy` of the built CLI (`node dist/cli/main.js`; run `npx tsc -p tsconfig.json` first)
 * against the real registry: progress as plain lines off a terminal, --digestfile, podman pulling the result with the
 * same image id, skopeo's transport syntax in both directions, and a clear error naming the registry for wrong
 * credentials.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import { startRegistry, storedImage, type TestRegistry } from './support/registry.js';
import { registryRig } from './support/registry-rig.js';
import { requireCli, runCli, type CliResult } from './support/reliability.js';
import { Podman, type TestImage } from './support/images.js';


let auth: TestRegistry;
let img: TestImage;
let root: string;
let runroot: string;
let n = 0;

/** Runs the CLI asynchronously (a token issuer or registry in this process may have to answer it). */
function carrier(args: string[]): Promise<CliResult> {
  return runCli(['--root', root, '--runroot', runroot, '--storage-driver', 'vfs', ...args], { LC_ALL: 'C.UTF-8' });
}

async function podmanId(ref: string): Promise<string> {
  const podman = new Podman(path.join(rig.work, `p${n++}`), 'vfs');
  const args = ['--root', podman.root, '--runroot', podman.runroot, '--storage-driver', 'vfs', 'pull', '-q', '--tls-verify=false', ref];
  await new Promise<void>((resolve, reject) => execFile('podman', args, { env: podman.env }, (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve())));
  return podman.inspect(ref).Id;
}

const rig = registryRig('cli-push-test', {}, async () => {
  requireCli();
  root = path.join(rig.work, 'store/root');
  runroot = path.join(rig.work, 'store/run');
  auth = await startRegistry({ auth: 'htpasswd' });
  img = await rig.buildAndPush('img', 'lib/a:1', { label: 'cli-push' });
  const pulled = await carrier(['pull', '-q', '--tls-verify=false', `${rig.reg.host}/lib/a:1`]);
  expect(pulled.code, pulled.stderr).toBe(0);
});

afterAll(async () => {
  await auth?.stop();
});

describe('carrier push', () => {
  it('pushes with progress lines and --digestfile; podman pulls the same image id', async () => {
    const digestfile = path.join(rig.work, 'digest');
    const r = await carrier(['push', '--tls-verify=false', '--digestfile', digestfile, `${rig.reg.host}/lib/a:1`, `${rig.reg.host}/cli/a:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Getting image source signatures');
    expect(r.stderr).toContain('Writing manifest to image destination');
    expect(r.stderr).not.toContain('\x1b[');
    const src = await storedImage(rig.reg, 'lib/a', '1');
    expect(fs.readFileSync(digestfile, 'utf8')).toBe(src.digest);
    expect(await podmanId(`${rig.reg.host}/cli/a:1`)).toBe(img.configDigest.slice(7));
  });

  it('pushes to the registry the image is named after when no destination is given, skipping blobs it has', async () => {
    const r = await carrier(['push', '--tls-verify=false', `${rig.reg.host}/lib/a:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/skipped: already exists/g)?.length).toBe(img.layers.length);
  });

  it('pushes to oci-archive:, which podman loads with the same image id', async () => {
    const file = path.join(rig.work, 'a.tar');
    const r = await carrier(['push', '-q', `${rig.reg.host}/lib/a:1`, `oci-archive:${file}:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const podman = new Podman(path.join(rig.work, 'podman-load'), 'vfs');
    podman.run(['load', '-q', '-i', file]);
    expect(podman.images().map((i) => i.Id)).toContain(img.configDigest.slice(7));
  });

  it('fails with exit code 125 and the registry named when the credentials are wrong', async () => {
    const r = await carrier(['push', '--tls-verify=false', '--creds', 'carrier:wrong', `${rig.reg.host}/lib/a:1`, `${auth.host}/cli/a:1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(auth.host);
  });
});

describe('carrier copy', () => {
  it('copies docker:// → oci: → docker:// in skopeo syntax, the manifest digest kept', async () => {
    const dir = path.join(rig.work, 'layout');
    const a = await carrier(['copy', '-q', '--src-tls-verify=false', `docker://${rig.reg.host}/lib/a:1`, `oci:${dir}:v1`]);
    expect(a.code, a.stderr).toBe(0);
    const digestfile = path.join(rig.work, 'copy-digest');
    const b = await carrier(['copy', '-q', '--dest-tls-verify=false', '--digestfile', digestfile, `oci:${dir}:v1`, `docker://${rig.reg.host}/copied/a:1`]);
    expect(b.code, b.stderr).toBe(0);
    const src = await storedImage(rig.reg, 'lib/a', '1');
    expect(fs.readFileSync(digestfile, 'utf8')).toBe(src.digest);
    expect((await storedImage(rig.reg, 'copied/a', '1')).digest).toBe(src.digest);
  });

  it('copies containers-storage: → docker://', async () => {
    const r = await carrier(['copy', '--dest-tls-verify=false', `containers-storage:${rig.reg.host}/lib/a:1`, `docker://${rig.reg.host}/from-store/a:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(await podmanId(`${rig.reg.host}/from-store/a:1`)).toBe(img.configDigest.slice(7));
  });
});

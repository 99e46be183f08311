/**
 * `carrier push` and `carrier copy` of the built CLI (`node dist/cli/main.js`; run `npx tsc -p tsconfig.json` first)
 * against the real registry: progress as plain lines off a terminal, --digestfile, podman pulling the result with the
 * same image id, skopeo's transport syntax in both directions, and a clear error naming the registry for wrong
 * credentials.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startRegistry, pushImage, storedImage, type TestRegistry } from './support/registry.js';
import { buildTestImage, Podman, removeWorkDir, requireTools, type TestImage } from './support/images.js';
import { tempDir } from './support/fixtures.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

let reg: TestRegistry;
let auth: TestRegistry;
let work: string;
let img: TestImage;
let root: string;
let runroot: string;
let n = 0;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously (a token issuer or registry in this process may have to answer it). */
function carrier(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--root', root, '--runroot', runroot, '--storage-driver', 'vfs', ...args], {
      env: { ...process.env, LC_ALL: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function podmanId(ref: string): Promise<string> {
  const podman = new Podman(path.join(work, `p${n++}`), 'vfs');
  const args = ['--root', podman.root, '--runroot', podman.runroot, '--storage-driver', 'vfs', 'pull', '-q', '--tls-verify=false', ref];
  await new Promise<void>((resolve, reject) => execFile('podman', args, { env: podman.env }, (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve())));
  return podman.inspect(ref).Id;
}

beforeAll(async () => {
  requireTools();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc -p tsconfig.json`);
  work = tempDir('cli-push-test');
  root = path.join(work, 'store/root');
  runroot = path.join(work, 'store/run');
  reg = await startRegistry();
  auth = await startRegistry({ auth: 'htpasswd' });
  img = buildTestImage(path.join(work, 'img'), { label: 'cli-push' });
  await pushImage(reg.host, img.ociDir, 'lib/a:1');
  const pulled = await carrier(['pull', '-q', '--tls-verify=false', `${reg.host}/lib/a:1`]);
  expect(pulled.status, pulled.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await auth?.stop();
  removeWorkDir(work);
});

describe('carrier push', () => {
  it('pushes with progress lines and --digestfile; podman pulls the same image id', async () => {
    const digestfile = path.join(work, 'digest');
    const r = await carrier(['push', '--tls-verify=false', '--digestfile', digestfile, `${reg.host}/lib/a:1`, `${reg.host}/cli/a:1`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Getting image source signatures');
    expect(r.stderr).toContain('Writing manifest to image destination');
    expect(r.stderr).not.toContain('\x1b[');
    const src = await storedImage(reg, 'lib/a', '1');
    expect(fs.readFileSync(digestfile, 'utf8')).toBe(src.digest);
    expect(await podmanId(`${reg.host}/cli/a:1`)).toBe(img.configDigest.slice(7));
  });

  it('pushes to the registry the image is named after when no destination is given, skipping blobs it has', async () => {
    const r = await carrier(['push', '--tls-verify=false', `${reg.host}/lib/a:1`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.match(/skipped: already exists/g)?.length).toBe(img.layers.length);
  });

  it('pushes to oci-archive:, which podman loads with the same image id', async () => {
    const file = path.join(work, 'a.tar');
    const r = await carrier(['push', '-q', `${reg.host}/lib/a:1`, `oci-archive:${file}:v1`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const podman = new Podman(path.join(work, 'podman-load'), 'vfs');
    podman.run(['load', '-q', '-i', file]);
    expect(podman.images().map((i) => i.Id)).toContain(img.configDigest.slice(7));
  });

  it('fails with exit code 125 and the registry named when the credentials are wrong', async () => {
    const r = await carrier(['push', '--tls-verify=false', '--creds', 'carrier:wrong', `${reg.host}/lib/a:1`, `${auth.host}/cli/a:1`]);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain(auth.host);
  });
});

describe('carrier copy', () => {
  it('copies docker:// → oci: → docker:// in skopeo syntax, the manifest digest kept', async () => {
    const dir = path.join(work, 'layout');
    const a = await carrier(['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/lib/a:1`, `oci:${dir}:v1`]);
    expect(a.status, a.stderr).toBe(0);
    const digestfile = path.join(work, 'copy-digest');
    const b = await carrier(['copy', '-q', '--dest-tls-verify=false', '--digestfile', digestfile, `oci:${dir}:v1`, `docker://${reg.host}/copied/a:1`]);
    expect(b.status, b.stderr).toBe(0);
    const src = await storedImage(reg, 'lib/a', '1');
    expect(fs.readFileSync(digestfile, 'utf8')).toBe(src.digest);
    expect((await storedImage(reg, 'copied/a', '1')).digest).toBe(src.digest);
  });

  it('copies containers-storage: → docker://', async () => {
    const r = await carrier(['copy', '--dest-tls-verify=false', `containers-storage:${reg.host}/lib/a:1`, `docker://${reg.host}/from-store/a:1`]);
    expect(r.status, r.stderr).toBe(0);
    expect(await podmanId(`${reg.host}/from-store/a:1`)).toBe(img.configDigest.slice(7));
  });
});

// `carrier pull` end to end with credentials and registries.conf: an htpasswd registry via --creds and --authfile,
// a token-auth registry via the library, and short names resolved through unqualified-search-registries.
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Store } from '../src/store/store.js';
import { pull } from '../src/pull.js';
import { startRegistry, pushImage, type TestRegistry } from './support/registry.js';
import { buildTestImage, removeWorkDir, requireTools, type TestImage } from './support/images.js';
import { tempDir } from './support/fixtures.js';

const execFileP = promisify(execFile);
const CLI = path.resolve(__dirname, '../dist/cli/main.js');
let work: string;
let basic: TestRegistry;
let token: TestRegistry;
let plain: TestRegistry;
let img: TestImage;

beforeAll(async () => {
  requireTools();
  work = tempDir('pull-auth');
  [basic, token, plain] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startRegistry({ auth: 'token' }), startRegistry()]);
  img = buildTestImage(path.join(work, 'img'), { label: 'auth' });
  await pushImage(basic.host, img.ociDir, 'team/app:1', { creds: basic.users });
  await pushImage(token.host, img.ociDir, 'team/app:1', { creds: token.users });
  await pushImage(plain.host, img.ociDir, 'short:1'); // a search registry other than docker.io adds no library/
}, 120_000);

afterAll(async () => {
  await Promise.all([basic, token, plain].filter(Boolean).map((r) => r.stop()));
  removeWorkDir(work);
});

let n = 0;
function dirs(): string[] {
  const d = path.join(work, `s${n++}`);
  return ['--root', path.join(d, 'root'), '--runroot', path.join(d, 'run')];
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFileP(process.execPath, [CLI, ...args], { env: { ...process.env, XDG_DATA_HOME: path.join(work, 'xdg'), ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe('pull with credentials', () => {
  it('htpasswd registry: refused without credentials, pulled with --creds and with --authfile', async () => {
    const ref = `${basic.host}/team/app:1`;
    const refused = await cli([...dirs(), 'pull', '--tls-verify=false', ref]);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/CARRIER_UNAUTHORIZED/);
    const withCreds = await cli([...dirs(), 'pull', '--tls-verify=false', '--creds', `${basic.users.user}:${basic.users.pass}`, ref]);
    expect(withCreds.code, withCreds.stderr).toBe(0);
    expect(withCreds.stdout).toBe(`${img.configDigest.slice(7)}\n`);
    expect(withCreds.stderr).not.toContain(basic.users.pass);
    const authfile = path.join(work, 'auth.json');
    const auth = Buffer.from(`${basic.users.user}:${basic.users.pass}`).toString('base64');
    fs.writeFileSync(authfile, JSON.stringify({ auths: { [basic.host]: { auth } } }), { mode: 0o600 });
    const withFile = await cli([...dirs(), 'pull', '-q', '--tls-verify=false', '--authfile', authfile, ref]);
    expect(withFile.code, withFile.stderr).toBe(0);
    const viaEnv = await cli([...dirs(), 'pull', '-q', '--tls-verify=false', ref], { REGISTRY_AUTH_FILE: authfile });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
  });

  it('token registry: the library pulls with credentials from the token issuer', async () => {
    const d = path.join(work, `t${n++}`);
    const store = await Store.open({ root: path.join(d, 'root'), runroot: path.join(d, 'run') });
    await expect(pull(store, `${token.host}/team/app:1`, { tlsVerify: false, blobCacheDir: path.join(d, 'cache') })).rejects.toMatchObject({ code: 'CARRIER_UNAUTHORIZED' });
    const r = await pull(store, `${token.host}/team/app:1`, { tlsVerify: false, creds: `${token.users.user}:${token.users.pass}`, blobCacheDir: path.join(d, 'cache') });
    expect(r.id).toBe(img.configDigest.slice(7));
    expect(token.tokenIssuer!.requests.some((q) => q.user === token.users.user && q.scopes.includes('repository:team/app:pull'))).toBe(true);
    await store.close();
  });
});

describe('registries.conf', () => {
  it('resolves a short name through unqualified-search-registries, trying each in order', async () => {
    const conf = path.join(work, 'registries.conf');
    fs.writeFileSync(
      conf,
      `unqualified-search-registries = ["${basic.host}", "${plain.host}"]\n[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n[[registry]]\nlocation = "${basic.host}"\ninsecure = true\n`,
    );
    // not on the first (it needs credentials), found on the second
    const r = await cli([...dirs(), 'pull', '-q', 'short:1'], { CONTAINERS_REGISTRIES_CONF: conf });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${img.configDigest.slice(7)}\n`);
    const d = dirs();
    await cli([...d, 'pull', '-q', 'short:1'], { CONTAINERS_REGISTRIES_CONF: conf });
    const listed = await cli([...d, 'images', '--format', 'json']);
    expect((JSON.parse(listed.stdout) as { Names: string[] }[])[0]!.Names).toEqual([`${plain.host}/short:1`]);
  });
});

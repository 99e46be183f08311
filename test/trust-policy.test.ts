// The signature policy's parts on their own: `carrier image trust show` against `podman image trust show` on the same
// files, and the rules of policy.json, scopes and registries.d that the pull matrix (trust-matrix.test.ts) reaches
// only through whole pulls. The CLI is the built one (dist/), as `npm test` builds it first.
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tempDir } from './support/fixtures.js';
import { GpgHome, type GpgKey } from './support/signing.js';
import { CarrierError } from '../src/errors.js';
import { parseReference } from '../src/reference.js';
import {
  checkSignaturePolicy,
  dockerNamespaces,
  findPolicyFile,
  loadRegistriesD,
  lookasideBase,
  lookasideUrl,
  parsePolicy,
  policyImageOf,
  policyScopes,
  requirementsFor,
} from '../src/trust/index.js';

const execFileP = promisify(execFile);
const CLI = path.resolve(__dirname, '../dist/cli/main.js');
let work: string;
let home: string;
let gpg: GpgHome;
let key: GpgKey;

beforeAll(() => {
  work = tempDir('trust-policy');
  home = path.join(work, 'home');
  fs.mkdirSync(path.join(home, '.config/containers/registries.d'), { recursive: true });
  fs.writeFileSync(
    path.join(home, '.config/containers/registries.d/a.yaml'),
    'docker:\n  docker.io:\n    lookaside: https://sigs.example.com/sigs\n  quay.io/x:\n    sigstore: file:///var/sigs\n',
  );
  gpg = new GpgHome(path.join(work, 'gnupg'));
  key = gpg.newKey('carol');
});

afterAll(() => {
  gpg?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function policyFile(name: string, policy: unknown): string {
  const f = path.join(work, `${name}.json`);
  fs.writeFileSync(f, JSON.stringify(policy));
  return f;
}

async function both(args: string[]): Promise<{ carrier: string; podman: string }> {
  const env = { ...process.env, HOME: home, LC_ALL: 'C.UTF-8' };
  const [c, p] = await Promise.all([
    execFileP('node', [CLI, 'image', 'trust', 'show', ...args], { env }),
    execFileP('podman', ['image', 'trust', 'show', ...args], { env }),
  ]);
  return { carrier: c.stdout, podman: p.stdout };
}

describe('carrier image trust show', () => {
  const policy = (): unknown => ({
    default: [{ type: 'insecureAcceptAnything' }, { type: 'reject' }],
    transports: {
      docker: {
        'docker.io': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/nonexistent/key.gpg' }],
        'quay.io/x/y': [{ type: 'insecureAcceptAnything' }],
        'ghcr.io': [{ type: 'sigstoreSigned', keyPath: '/nonexistent/key.pub' }],
        'example.com': [{ type: 'reject' }],
      },
      'docker-daemon': { '': [{ type: 'insecureAcceptAnything' }] },
      oci: { '/b': [{ type: 'reject' }], '/a': [{ type: 'insecureAcceptAnything' }] },
    },
  });

  it('prints the table podman prints: a row per requirement, scopes in order, the lookaside from registries.d', async () => {
    const f = policyFile('show', policy());
    const out = await both(['--policypath', f]);
    expect(out.carrier).toBe(out.podman);
    expect(out.carrier).toContain('https://sigs.example.com/sigs');
  });

  it('prints the JSON and the headless table podman prints', async () => {
    const f = policyFile('show-json', policy());
    const json = await both(['--policypath', f, '--json']);
    expect(JSON.parse(json.carrier)).toEqual(JSON.parse(json.podman));
    const headless = await both(['--policypath', f, '-n']);
    expect(headless.carrier).toBe(headless.podman);
  });

  it('prints the policy file as it is with --raw', async () => {
    const f = policyFile('show-raw', policy());
    const raw = await both(['--policypath', f, '--raw']);
    expect(raw.carrier.trim()).toBe(raw.podman.trim());
  });

  it("names a signedBy key's e-mail address in the ID column", async () => {
    const f = policyFile('show-key', { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: key.publicKeyFile }] });
    const { stdout } = await execFileP('node', [CLI, 'image', 'trust', 'show', '--policypath', f], { env: { ...process.env, HOME: home } });
    expect(stdout).toMatch(/^all +default +signed +carol@carrier\.test/m);
  });
});

describe('carrier info', () => {
  it('names the policy file in force and the registries.d directory', async () => {
    const h = path.join(work, 'home-info');
    fs.mkdirSync(path.join(h, '.config/containers/registries.d'), { recursive: true });
    fs.writeFileSync(path.join(h, '.config/containers/policy.json'), '{"default":[{"type":"reject"}]}');
    const store = path.join(work, 'info-store');
    const { stdout } = await execFileP('node', [CLI, '--root', `${store}/root`, '--runroot', `${store}/run`, 'info', '--format', 'json'], {
      env: { ...process.env, HOME: h },
    });
    const info = JSON.parse(stdout) as { signaturePolicy: { policyFile: string; registriesD: string } };
    expect(info.signaturePolicy).toEqual({
      policyFile: path.join(h, '.config/containers/policy.json'),
      registriesD: path.join(h, '.config/containers/registries.d'),
    });
  });
});

describe('policy.json, read strictly', () => {
  const invalid = (text: string): string => {
    try {
      parsePolicy(text, 'p.json');
    } catch (err) {
      expect((err as CarrierError).code).toBe('CARRIER_INVALID_POLICY');
      return (err as Error).message;
    }
    throw new Error('the policy was accepted');
  };

  it('refuses a signedBy without a key, with two key sources, or with an unknown keyType', () => {
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}')).toMatch(/exactly one of keyPath, keyPaths and keyData/);
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":"AA=="}]}')).toMatch(/exactly one/);
    expect(invalid('{"default":[{"type":"signedBy","keyType":"PGP","keyPath":"/a"}]}')).toMatch(/invalid keyType "PGP"/);
  });

  it('refuses keyData that is not base64, and unknown or malformed signedIdentity forms', () => {
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyData":"not base64!"}]}')).toMatch(/base64/);
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"matchAnything"}}]}')).toMatch(/unknown signedIdentity type/);
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"exactReference","dockerReference":"docker.io/a/b"}}]}')).toMatch(/neither a tag nor digest/);
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"remapIdentity","prefix":"docker.io/Upper","signedPrefix":"x.io"}}]}')).toMatch(/prefix "docker.io\/Upper" is not valid/);
    expect(invalid('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"matchExact","extra":1}}]}')).toMatch(/unknown key "extra"/);
  });

  it('refuses oci scopes that are not absolute, canonical paths', () => {
    expect(invalid('{"default":[{"type":"reject"}],"transports":{"oci":{"relative/dir":[{"type":"reject"}]}}}')).toMatch(/absolute path/);
    expect(invalid('{"default":[{"type":"reject"}],"transports":{"oci":{"/a/../b":[{"type":"reject"}]}}}')).toMatch(/non-canonical/);
    expect(invalid('{"default":[{"type":"reject"}],"transports":{"oci":{"/":[{"type":"reject"}]}}}')).toMatch(/default scope/);
  });

  it('keeps transports it does not know, unchecked, as containers/image does', () => {
    const p = parsePolicy('{"default":[{"type":"reject"}],"transports":{"sif":{"/x":[{"type":"reject"}]},"ostree":{"anything":[{"type":"reject"}]}}}');
    expect(Object.keys(p.transports).sort()).toEqual(['ostree', 'sif']);
  });

  it('keeps a transport or scope named __proto__ an ordinary name', () => {
    const p = parsePolicy('{"default":[{"type":"reject"}],"transports":{"__proto__":{"":[{"type":"insecureAcceptAnything"}]},"docker":{"__proto__":[{"type":"insecureAcceptAnything"}]}}}');
    expect(requirementsFor(p, { transport: 'docker', reference: parseReference('quay.io/a/b:1') }).section).toBe('default');
    expect(requirementsFor(p, { transport: 'oci', path: '/x' }).section).toBe('default');
  });

  it('finds ~/.config/containers/policy.json before /etc/containers/policy.json, and an explicit file before both', async () => {
    const h = path.join(work, 'home-policy');
    fs.mkdirSync(path.join(h, '.config/containers'), { recursive: true });
    fs.writeFileSync(path.join(h, '.config/containers/policy.json'), '{"default":[{"type":"reject"}]}');
    expect(await findPolicyFile({ home: h })).toBe(path.join(h, '.config/containers/policy.json'));
    expect(await findPolicyFile({ home: h, signaturePolicy: '/x.json' })).toBe('/x.json');
  });

  it('an explicit policy file that does not exist refuses, rather than accepting everything', async () => {
    await expect(
      checkSignaturePolicy({ reference: 'docker://docker.io/library/busybox:latest', manifest: Buffer.from('{}'), manifestDigest: 'sha256:' + '0'.repeat(64) }, { signaturePolicy: path.join(work, 'missing.json') }),
    ).rejects.toMatchObject({ code: 'CARRIER_INVALID_POLICY' });
  });
});

describe('scopes', () => {
  it('searches a docker image from its tag to its *.domain wildcards, the port dropped', () => {
    const ref = parseReference('reg.example.com:5000/ns/sub/repo:v1');
    expect(policyScopes({ transport: 'docker', reference: ref })).toEqual([
      'reg.example.com:5000/ns/sub/repo:v1',
      'reg.example.com:5000/ns/sub/repo',
      'reg.example.com:5000/ns/sub',
      'reg.example.com:5000/ns',
      'reg.example.com:5000',
      '*.example.com',
      '*.com',
    ]);
    expect(dockerNamespaces(parseReference('busybox'))).toEqual(['docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io']);
  });

  it('uses the digest, not the tag, as the identity of a digest pull', () => {
    const d = 'sha256:' + 'a'.repeat(64);
    expect(policyScopes({ transport: 'docker', reference: parseReference(`quay.io/a/b@${d}`) })[0]).toBe(`quay.io/a/b@${d}`);
  });

  it('places an oci layout by its resolved directory, and each parent up to (not including) /', async () => {
    const dir = path.join(work, 'layout');
    fs.mkdirSync(dir);
    const link = path.join(work, 'layout-link');
    fs.symlinkSync(dir, link);
    const image = await policyImageOf(`oci:${link}:latest`);
    expect(image).toEqual({ transport: 'oci', path: fs.realpathSync(dir) });
    const scopes = policyScopes(image);
    expect(scopes[0]).toBe(fs.realpathSync(dir));
    expect(scopes.at(-1)).toBe('/' + fs.realpathSync(dir).split('/')[1]);
    const p = parsePolicy(JSON.stringify({ default: [{ type: 'reject' }], transports: { oci: { [fs.realpathSync(work)]: [{ type: 'insecureAcceptAnything' }] } } }));
    expect(requirementsFor(p, image).section).toBe(`transports.oci["${fs.realpathSync(work)}"]`);
  });

  it('places a store image as containers/image does: [driver@graphroot] and the name, its repositories, the store, the graph root', async () => {
    const spec = '[overlay@/var/lib/containers/storage]';
    const named = await policyImageOf('containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]docker.io/library/busybox:latest');
    expect(policyScopes(named)).toEqual([
      `${spec}docker.io/library/busybox:latest`,
      `${spec}docker.io/library/busybox`,
      `${spec}docker.io/library`,
      `${spec}docker.io`,
      spec,
      '[/var/lib/containers/storage]',
    ]);
    const id = 'c'.repeat(64);
    for (const ref of [`containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]${id}`, `containers-storage:[overlay@/var/lib/containers/storage]@${id}`]) {
      expect(policyScopes(await policyImageOf(ref)), ref).toEqual([`${spec}@${id}`, spec, '[/var/lib/containers/storage]']);
    }
    const both = await policyImageOf(`containers-storage:[vfs@/s+/r]localhost/x:1@${id}`);
    expect(policyScopes(both)).toEqual([`[vfs@/s]localhost/x:1@${id}`, '[vfs@/s]localhost/x:1', '[vfs@/s]localhost/x', '[vfs@/s]localhost', '[vfs@/s]', '[/s]']);
    const p = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { 'containers-storage': { [`${spec}docker.io/library`]: [{ type: 'insecureAcceptAnything' }], '[/var/lib/containers/storage]': [{ type: 'reject' }] } },
      }),
    );
    expect(requirementsFor(p, named).section).toBe(`transports.containers-storage["${spec}docker.io/library"]`);
  });
});

describe('registries.d', () => {
  it('gives the most specific namespace, lookaside before the older sigstore key, and the path layout of signatures', async () => {
    const conf = await loadRegistriesD({ home });
    const base = lookasideBase(conf, parseReference('docker.io/library/busybox:1'));
    expect(base.href).toBe('https://sigs.example.com/sigs/library/busybox');
    expect(lookasideUrl(base, 'sha256:' + 'b'.repeat(64), 2).href).toBe(`https://sigs.example.com/sigs/library/busybox@sha256=${'b'.repeat(64)}/signature-2`);
    expect(lookasideBase(conf, parseReference('quay.io/x/y:1')).href).toBe('file:///var/sigs/x/y');
  });

  it('refuses a namespace defined in two files', async () => {
    const dir = path.join(work, 'registries.d-dup');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.yaml'), 'docker:\n  quay.io:\n    lookaside: file:///a\n');
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'docker:\n  quay.io:\n    lookaside: file:///b\n');
    await expect(loadRegistriesD({ registriesDir: dir })).rejects.toThrow(/namespace "quay.io" is also defined in/);
  });
});

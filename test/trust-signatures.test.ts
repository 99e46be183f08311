// Signatures kept with the image, as podman keeps them in the store, and made on push. Against the real podman 4.3:
// a signed image Carrier pulls is recorded byte for byte as podman records it, podman push from that store carries
// the signature on, Carrier's push carries podman's, and podman — under a policy that requires signatures — pulls
// what Carrier pushed and signed (GPG with a key made here; sigstore with a PKCS#8 key made by openssl).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import { buildMultiArchLayout, type MultiArchImage } from './support/registry.js';
import { defaultLayers, removeWorkDir, type TestImage } from './support/images.js';
import { GpgHome, type GpgKey } from './support/signing.js';
import { putManifest, uploadBlob } from './support/sigstore-attach.js';
import { writeCosignKey } from './support/cosign-key.js';
import { bigDataFileName } from '../src/store/ids.js';
import { sigstoreSigner } from '../src/trust/index.js';
import { registryRig } from './support/registry-rig.js';

const CLI = path.resolve(__dirname, '../dist/cli/main.js');
let home: string;
let lookaside: string;
let gpg: GpgHome;
let alice: GpgKey;
/** gzip layers, signed by alice for `<reg>/sig/gz:1` (skopeo copy --sign-by); `gzDigest` is its manifest there. */
let gz: TestImage;
let gzDigest: string;
/** uncompressed layers, uploaded as they are and signed by alice for `<reg>/sig/tar:1` (skopeo standalone-sign). */
let tar: TestImage;
let byAlice: string;
let multi: MultiArchImage;
let ecKey: string;
let ecPub: string;
let passFile: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, HOME: home, CONTAINERS_REGISTRIES_CONF: '/dev/null', ...env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Runs node with `args` on a terminal (util-linux script(1) gives it a pty): once `prompt` appears, `answer` is typed.
 * The output is the terminal's (stdout and stderr together).
 */
function onTerminal(args: string[], prompt: string, answer: string): Promise<{ code: number; output: string }> {
  const command = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, HOME: home, CONTAINERS_REGISTRIES_CONF: '/dev/null' } });
    let output = '';
    let answered = false;
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (!answered && output.includes(prompt)) {
        answered = true;
        child.stdin.write(answer);
      }
    });
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

/** podman refuses a runroot longer than 50 characters: run directories live under a short temporary one. */
let runs: string;
const runroot = (store: string): string => path.join(runs, path.basename(store));

const carrier = (store: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  exec(process.execPath, [CLI, '--root', path.join(store, 'root'), '--runroot', runroot(store), ...args], env);

const podman = (store: string, args: string[]): Promise<Run> =>
  exec('podman', ['--root', path.join(store, 'root'), '--runroot', runroot(store), '--tmpdir', path.join(store, 'tmp'), ...args]);

function policy(name: string, p: unknown): string {
  const f = path.join(rig.work, `${name}.json`);
  fs.writeFileSync(f, JSON.stringify(p));
  return f;
}

/** Accepts what alice signed for `signedRepo` when it is pulled as `repo`. */
function aliceFor(repo: string, signedRepo: string): string {
  const identity = repo === signedRepo ? {} : { signedIdentity: { type: 'remapIdentity', prefix: `${rig.reg.host}/${repo}`, signedPrefix: `${rig.reg.host}/${signedRepo}` } };
  return policy(`alice-${repo.replace(/\W/g, '-')}`, {
    default: [{ type: 'reject' }],
    transports: { docker: { [rig.reg.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: alice.publicKeyFile, ...identity }] } },
  });
}

function lookasideDir(repo: string, manifestDigest: string): string {
  return path.join(lookaside, `${repo}@${manifestDigest.replace(':', '=')}`);
}

function imageRecord(store: string): { metadata?: string; 'big-data-names'?: string[] } {
  const images = JSON.parse(fs.readFileSync(path.join(store, 'root/overlay-images/images.json'), 'utf8')) as { metadata?: string }[];
  expect(images).toHaveLength(1);
  return images[0]!;
}

function bigData(store: string, id: string, key: string): Buffer {
  return fs.readFileSync(path.join(store, 'root/overlay-images', id, bigDataFileName(key)));
}

async function skopeoSign(img: TestImage, repo: string): Promise<void> {
  const r = await exec(
    'skopeo',
    ['copy', '-q', '--dest-tls-verify=false', '--sign-by', alice.fingerprint, `oci:${img.ociDir}`, `docker://${rig.reg.host}/${repo}`],
    { GNUPGHOME: gpg.dir },
  );
  if (r.code !== 0) throw new Error(r.stderr);
}

/** The digest of the manifest the registry holds for `repo:tag`. */
async function registryDigest(repo: string, tag: string): Promise<string> {
  const res = await fetch(`${rig.reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return res.headers.get('docker-content-digest')!;
}

/** Uploads an image's blobs and manifest unchanged (skopeo would compress its tar layers), then signs it in the lookaside. */
async function uploadSigned(img: TestImage, repo: string, tag: string): Promise<void> {
  for (const blob of [...img.layers.map((l) => l.blob), img.config]) await uploadBlob(rig.reg.url, repo, blob);
  await putManifest(rig.reg.url, repo, tag, img.manifest);
  const dir = lookasideDir(repo, img.manifestDigest);
  fs.mkdirSync(dir, { recursive: true });
  const manifestFile = path.join(rig.work, `${repo.replace(/\W/g, '-')}.manifest`);
  fs.writeFileSync(manifestFile, img.manifest);
  const r = await exec('skopeo', ['standalone-sign', '-o', path.join(dir, 'signature-1'), manifestFile, `${rig.reg.host}/${repo}:${tag}`, alice.fingerprint], { GNUPGHOME: gpg.dir });
  if (r.code !== 0) throw new Error(r.stderr);
}

const rig = registryRig('trust-signatures', { timeout: 300_000 }, async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  runs = fs.mkdtempSync('/tmp/cs-');
  home = path.join(rig.work, 'home');
  lookaside = path.join(rig.work, 'lookaside');
  const registriesD = path.join(home, '.config/containers/registries.d');
  fs.mkdirSync(registriesD, { recursive: true });
  fs.writeFileSync(path.join(registriesD, 'test.yaml'), `docker:\n  ${rig.reg.host}:\n    lookaside: file://${lookaside}\n  ${rig.reg.host}/sigstore:\n    use-sigstore-attachments: true\n`);
  gpg = new GpgHome(path.join(rig.work, 'gnupg'));
  alice = gpg.newKey('alice');
  gz = rig.build('gz', { label: 'gz', layers: defaultLayers('g') });
  tar = rig.build('tar', { label: 'tar', layers: defaultLayers('t').map((l) => ({ ...l, compression: 'none' as const })) });
  await skopeoSign(gz, 'sig/gz:1');
  gzDigest = await registryDigest('sig/gz', '1');
  await uploadSigned(tar, 'sig/tar', '1');
  await rig.push(gz, 'plain/gz:1');
  multi = buildMultiArchLayout(path.join(rig.work, 'multi'), [{ architecture: 'amd64' }, { architecture: 'arm64', variant: 'v8' }]);
  await rig.push(multi, 'plain/multi:1', { multiArch: true });
  byAlice = aliceFor('sig/gz', 'sig/gz');
  ecKey = path.join(rig.work, 'ec.pem');
  ecPub = path.join(rig.work, 'ec.pub');
  passFile = path.join(rig.work, 'pass');
  fs.writeFileSync(passFile, 'correct horse\n');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc', '-pass', 'pass:correct horse', '-out', ecKey]);
  execFileSync('openssl', ['pkey', '-in', ecKey, '-passin', 'pass:correct horse', '-pubout', '-out', ecPub]);
});

afterAll(() => {
  gpg?.close();
  if (runs) removeWorkDir(runs);
});

describe('signatures kept in the store', () => {
  it('a signed image Carrier pulls is recorded as podman records it: the same metadata and signature big data', async () => {
    const mine = path.join(rig.work, 'rec-carrier');
    const theirs = path.join(rig.work, 'rec-podman');
    const ref = `${rig.reg.host}/sig/gz:1`;
    expect((await carrier(mine, ['pull', '-q', '--tls-verify=false', '--signature-policy', byAlice, ref])).code).toBe(0);
    const p = await podman(theirs, ['pull', '-q', '--tls-verify=false', '--signature-policy', byAlice, ref]);
    expect(p.code, p.stderr).toBe(0);
    const a = imageRecord(mine);
    const b = imageRecord(theirs);
    expect(a.metadata).toBe(b.metadata);
    expect(JSON.parse(a.metadata!)).toEqual({ 'signature-sizes': [expect.any(Number)], 'signatures-sizes': { [gzDigest]: [expect.any(Number)] } });
    const id = gz.configDigest.slice('sha256:'.length);
    const signature = fs.readFileSync(path.join(lookasideDir('sig/gz', gzDigest), 'signature-1'));
    for (const key of ['signatures', `signature-${gzDigest.slice('sha256:'.length)}`]) {
      expect(bigData(mine, id, key)).toEqual(signature);
      expect(bigData(mine, id, key)).toEqual(bigData(theirs, id, key));
    }
  });

  it('an unsigned image records no signature, as podman does', async () => {
    const store = path.join(rig.work, 'rec-unsigned');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`])).code).toBe(0);
    const r = imageRecord(store);
    expect(r.metadata).toBe('{}');
    expect(r['big-data-names']).not.toContain('signatures');
  });

  it('podman push from the store Carrier pulled into carries the signature on, and podman pulls it under the policy', async () => {
    const store = path.join(rig.work, 'podman-pushes');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/sig/tar:1`])).code).toBe(0);
    const r = await podman(store, ['push', '--tls-verify=false', `${rig.reg.host}/sig/tar:1`, `${rig.reg.host}/sig/tar-by-podman:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Storing signatures');
    const copied = fs.readFileSync(path.join(lookasideDir('sig/tar-by-podman', tar.manifestDigest), 'signature-1'));
    expect(copied).toEqual(fs.readFileSync(path.join(lookasideDir('sig/tar', tar.manifestDigest), 'signature-1')));
    const pulled = await podman(path.join(rig.work, 'podman-pulls-1'), ['pull', '-q', '--tls-verify=false', '--signature-policy', aliceFor('sig/tar-by-podman', 'sig/tar'), `${rig.reg.host}/sig/tar-by-podman:1`]);
    expect(pulled.code, pulled.stderr).toBe(0);
  });

  // podman 4.3 (containers/image 5.23) gzip-compresses what it copies out of the store, so a signed gzip image cannot
  // keep its manifest: podman refuses, which shows it read the signatures Carrier recorded; --remove-signatures
  // lifts it. skopeo copy refuses the same way.
  it('podman and skopeo refuse to copy a signed gzip image out of the store Carrier pulled into, unless told to drop its signatures', async () => {
    const store = path.join(rig.work, 'podman-refuses');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/sig/gz:1`])).code).toBe(0);
    const r = await podman(store, ['push', '--tls-verify=false', `${rig.reg.host}/sig/gz:1`, `${rig.reg.host}/sig/gz-by-podman:1`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Would invalidate signatures');
    const s = await exec('skopeo', ['copy', '--dest-tls-verify=false', `containers-storage:[overlay@${path.join(store, 'root')}+${runroot(store)}]${rig.reg.host}/sig/gz:1`, `docker://${rig.reg.host}/sig/gz-by-skopeo:1`]);
    expect(s.stderr).toContain('Would invalidate signatures');
    const removed = await podman(store, ['push', '--tls-verify=false', '--remove-signatures', `${rig.reg.host}/sig/gz:1`, `${rig.reg.host}/sig/gz-by-podman:1`]);
    expect(removed.code, removed.stderr).toBe(0);
  });

  it("Carrier's push carries the signature of an image Carrier pulled (its blobs are cached, so its manifest is kept)", async () => {
    const store = path.join(rig.work, 'carrier-pushes');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/sig/gz:1`])).code).toBe(0);
    const r = await carrier(store, ['push', '-q', '--tls-verify=false', `${rig.reg.host}/sig/gz:1`, `${rig.reg.host}/sig/gz-by-carrier:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(lookasideDir('sig/gz-by-carrier', gzDigest), 'signature-1'))).toEqual(
      fs.readFileSync(path.join(lookasideDir('sig/gz', gzDigest), 'signature-1')),
    );
    // Recompressing the layers would change the signed manifest.
    const zstd = await carrier(store, ['push', '-q', '--tls-verify=false', '--compression-format', 'zstd', `${rig.reg.host}/sig/gz:1`, `${rig.reg.host}/sig/gz-zstd:1`]);
    expect(zstd.code).toBe(125);
    expect(zstd.stderr).toContain('would invalidate its signatures: push with --remove-signatures');
    const pulled = await podman(path.join(rig.work, 'podman-pulls-2'), ['pull', '-q', '--tls-verify=false', '--signature-policy', aliceFor('sig/gz-by-carrier', 'sig/gz'), `${rig.reg.host}/sig/gz-by-carrier:1`]);
    expect(pulled.code, pulled.stderr).toBe(0);
  });

  it("Carrier's push carries the signature podman stored, and refuses, as podman does, to change a signed manifest", async () => {
    const store = path.join(rig.work, 'from-podman');
    for (const ref of [`${rig.reg.host}/sig/tar:1`, `${rig.reg.host}/sig/gz:1`]) {
      const p = await podman(store, ['pull', '-q', '--tls-verify=false', ref]);
      expect(p.code, p.stderr).toBe(0);
    }
    const r = await carrier(store, ['push', '-q', '--tls-verify=false', `${rig.reg.host}/sig/tar:1`, `${rig.reg.host}/sig/tar-by-carrier:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(lookasideDir('sig/tar-by-carrier', tar.manifestDigest), 'signature-1'))).toBe(true);
    const pulled = await podman(path.join(rig.work, 'podman-pulls-3'), ['pull', '-q', '--tls-verify=false', '--signature-policy', aliceFor('sig/tar-by-carrier', 'sig/tar'), `${rig.reg.host}/sig/tar-by-carrier:1`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    // podman's store has no compressed copy of the gzip layers (a store's blob cache is its own): they would be
    // rebuilt and compressed anew.
    const uncached = await carrier(store, ['push', '-q', '--tls-verify=false', `${rig.reg.host}/sig/gz:1`, `${rig.reg.host}/sig/gz-refused:1`]);
    expect(uncached.code).toBe(125);
    expect(uncached.stderr).toContain('is signed, but its layers are not in the blob cache as its manifest names them');
    const removed = await carrier(store, ['push', '-q', '--tls-verify=false', '--remove-signatures', `${rig.reg.host}/sig/gz:1`, `${rig.reg.host}/sig/gz-unsigned:1`]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(fs.existsSync(lookasideDir('sig/gz-unsigned', gzDigest))).toBe(false);
  });
});

describe('signing on push', () => {
  it('--sign-by signs with the GPG keyring, and podman under a policy requiring the signature pulls the image', async () => {
    const store = path.join(rig.work, 'sign-gpg');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`])).code).toBe(0);
    const r = await carrier(store, ['push', '-q', '--tls-verify=false', '--sign-by', alice.fingerprint, `${rig.reg.host}/plain/gz:1`, `${rig.reg.host}/signed/by-carrier:1`], { GNUPGHOME: gpg.dir });
    expect(r.code, r.stderr).toBe(0);
    const pulled = await podman(path.join(rig.work, 'podman-pulls-4'), ['pull', '-q', '--tls-verify=false', '--signature-policy', aliceFor('signed/by-carrier', 'signed/by-carrier'), `${rig.reg.host}/signed/by-carrier:1`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    // The signature names the reference pushed: pulled under another name, podman refuses it.
    const other = await podman(path.join(rig.work, 'podman-pulls-5'), ['pull', '-q', '--tls-verify=false', '--signature-policy', aliceFor('signed/by-carrier', 'signed/elsewhere'), `${rig.reg.host}/signed/by-carrier:1`]);
    expect(other.code).not.toBe(0);
  });

  it("--sign-by-sigstore-private-key writes a .sig attachment that Carrier's pull and openssl verify with the public key", async () => {
    const store = path.join(rig.work, 'sign-sigstore');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`])).code).toBe(0);
    const dest = `${rig.reg.host}/sigstore/by-carrier:1`;
    const r = await carrier(store, ['push', '-q', '--tls-verify=false', '--sign-by-sigstore-private-key', ecKey, '--sign-passphrase-file', passFile, `${rig.reg.host}/plain/gz:1`, dest]);
    expect(r.code, r.stderr).toBe(0);
    const sigstorePolicy = policy('sigstore', {
      default: [{ type: 'reject' }],
      transports: { docker: { [rig.reg.host]: [{ type: 'sigstoreSigned', keyPath: ecPub, signedIdentity: { type: 'matchRepoDigestOrExact' } }] } },
    });
    // Debian's podman refuses every sigstore requirement ("Debian-local change: sigstore disabled"): Carrier's own
    // verifier and openssl judge the signature.
    const mine = await carrier(path.join(rig.work, 'carrier-pulls-sigstore'), ['pull', '-q', '--tls-verify=false', '--signature-policy', sigstorePolicy, dest]);
    expect(mine.code, mine.stderr).toBe(0);
    // openssl checks the same signature over the attached payload.
    const sigTag = `${(await registryDigest('sigstore/by-carrier', '1')).replace(':', '-')}.sig`;
    const manifest = (await (await fetch(`${rig.reg.url}/v2/sigstore/by-carrier/manifests/${sigTag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as {
      layers: { digest: string; annotations: Record<string, string> }[];
    };
    expect(manifest.layers).toHaveLength(1);
    const layer = manifest.layers[0]!;
    const payload = Buffer.from(await (await fetch(`${rig.reg.url}/v2/sigstore/by-carrier/blobs/${layer.digest}`)).arrayBuffer());
    expect(JSON.parse(payload.toString()).critical.identity['docker-reference']).toBe(dest);
    fs.writeFileSync(path.join(rig.work, 'payload'), payload);
    fs.writeFileSync(path.join(rig.work, 'payload.sig'), Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64'));
    const ok = execFileSync('openssl', ['dgst', '-sha256', '-verify', ecPub, '-signature', path.join(rig.work, 'payload.sig'), path.join(rig.work, 'payload')]).toString();
    expect(ok.trim()).toBe('Verified OK');
    // Pulled by both, the sigstore signature is stored in the same bytes (`\0sigstore-json\n` and Go's JSON).
    const acceptAll = policy('accept', { default: [{ type: 'insecureAcceptAnything' }] });
    const theirs = path.join(rig.work, 'sigstore-podman');
    const p = await podman(theirs, ['pull', '-q', '--tls-verify=false', '--signature-policy', acceptAll, dest]);
    expect(p.code, p.stderr).toBe(0);
    const id = gz.configDigest.slice('sha256:'.length);
    const stored = bigData(path.join(rig.work, 'carrier-pulls-sigstore'), id, 'signatures');
    expect(stored.subarray(0, 15).toString('latin1')).toBe('\0sigstore-json\n');
    expect(stored).toEqual(bigData(theirs, id, 'signatures'));
    expect(imageRecord(path.join(rig.work, 'carrier-pulls-sigstore')).metadata).toBe(imageRecord(theirs).metadata);
  });

  it('refuses a sigstore signature where registries.d does not enable sigstore attachments, and writes no tag', async () => {
    const store = path.join(rig.work, 'sign-no-attach');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`])).code).toBe(0);
    const r = await carrier(store, ['push', '-q', '--tls-verify=false', '--sign-by-sigstore-private-key', ecKey, '--sign-passphrase-file', passFile, `${rig.reg.host}/plain/gz:1`, `${rig.reg.host}/nosig/x:1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('needs use-sigstore-attachments: true in registries.d');
    expect((await fetch(`${rig.reg.url}/v2/nosig/x/manifests/1`, { method: 'HEAD' })).status).toBe(404);
  });

  it("--sign-by-sigstore-private-key takes cosign's encrypted key, the passphrase from --sign-passphrase-file or typed at the prompt", async () => {
    const store = path.join(rig.work, 'sign-cosign-key');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`])).code).toBe(0);
    const cosignKey = path.join(rig.work, 'cosign.key');
    const ec = crypto.createPrivateKey({ key: fs.readFileSync(ecKey), passphrase: 'correct horse' });
    await writeCosignKey(cosignKey, ec, 'correct horse');
    const sigstorePolicy = policy('sigstore-cosign', { default: [{ type: 'sigstoreSigned', keyPath: ecPub }] });
    const fromFile = `${rig.reg.host}/sigstore/cosign-file:1`;
    const r = await carrier(store, ['push', '-q', '--tls-verify=false', '--sign-by-sigstore-private-key', cosignKey, '--sign-passphrase-file', passFile, `${rig.reg.host}/plain/gz:1`, fromFile]);
    expect(r.code, r.stderr).toBe(0);
    const pulled = await carrier(path.join(rig.work, 'carrier-pulls-cosign-file'), ['pull', '-q', '--tls-verify=false', '--signature-policy', sigstorePolicy, fromFile]);
    expect(pulled.code, pulled.stderr).toBe(0);
    // On a terminal, without a passphrase file, it asks as podman asks; what is typed is not echoed.
    const typed = `${rig.reg.host}/sigstore/cosign-typed:1`;
    const prompted = await onTerminal(
      [CLI, '--root', path.join(store, 'root'), '--runroot', runroot(store), 'push', '-q', '--tls-verify=false', '--sign-by-sigstore-private-key', cosignKey, `${rig.reg.host}/plain/gz:1`, typed],
      'Key Passphrase: ',
      'correct horse\r',
    );
    expect(prompted.code, prompted.output).toBe(0);
    expect(prompted.output).not.toContain('correct horse');
    const pulledTyped = await carrier(path.join(rig.work, 'carrier-pulls-cosign-typed'), ['pull', '-q', '--tls-verify=false', '--signature-policy', sigstorePolicy, typed]);
    expect(pulledTyped.code, pulledTyped.stderr).toBe(0);
    // A wrong passphrase signs nothing and writes no manifest.
    const wrongPass = path.join(rig.work, 'wrong-pass');
    fs.writeFileSync(wrongPass, 'battery staple\n');
    const wrong = await carrier(store, ['push', '-q', '--tls-verify=false', '--sign-by-sigstore-private-key', cosignKey, '--sign-passphrase-file', wrongPass, `${rig.reg.host}/plain/gz:1`, `${rig.reg.host}/sigstore/cosign-wrong:1`]);
    expect(wrong.code).toBe(125);
    expect(wrong.stderr).toContain(`cannot decrypt the private key in ${cosignKey}: wrong passphrase, or the file was altered`);
    expect((await fetch(`${rig.reg.url}/v2/sigstore/cosign-wrong/manifests/1`, { method: 'HEAD' })).status).toBe(404);
  });

  it('refuses a PKCS#8 key with the wrong passphrase, and a reference without tag or digest', async () => {
    const signer = sigstoreSigner({ privateKeyFile: ecKey, passphrase: Buffer.from('correct horse') });
    await expect(signer(gz.manifest, `${rig.reg.host}/x/y`)).rejects.toThrow(/neither a tag nor a digest/);
    await expect(sigstoreSigner({ privateKeyFile: ecKey, passphrase: Buffer.from('wrong') })(gz.manifest, `${rig.reg.host}/x/y:1`)).rejects.toThrow(/cannot read the private key/);
  });

  it('copy --all --sign-by signs every instance and the index; podman pulls the signed instance under the policy', async () => {
    const dest = `${rig.reg.host}/signed/multi:1`;
    const r = await carrier(path.join(rig.work, 'sign-all'), ['copy', '-q', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', '--sign-by', alice.fingerprint, `docker://${rig.reg.host}/plain/multi:1`, `docker://${dest}`], { GNUPGHOME: gpg.dir });
    expect(r.code, r.stderr).toBe(0);
    for (const digest of [multi.indexDigest, ...multi.images.map((i) => i.image.manifestDigest)]) {
      expect(fs.existsSync(path.join(lookasideDir('signed/multi', digest), 'signature-1')), digest).toBe(true);
    }
    const pulled = await podman(path.join(rig.work, 'podman-pulls-7'), ['pull', '-q', '--tls-verify=false', '--signature-policy', aliceFor('signed/multi', 'signed/multi'), dest]);
    expect(pulled.code, pulled.stderr).toBe(0);
  });
});

describe('the policy on a push from the store', () => {
  it('judges the image by containers-storage scopes ([driver@graphroot], [graphroot]) as podman push does', async () => {
    const store = path.join(rig.work, 'push-scopes');
    expect((await carrier(store, ['pull', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`])).code).toBe(0);
    const graphroot = path.join(store, 'root');
    const accept = { type: 'insecureAcceptAnything' };
    const reject = { type: 'reject' };
    const cases: { name: string; policy: unknown; allowed: boolean }[] = [
      { name: 'the store accepted under default reject', policy: { default: [reject], transports: { 'containers-storage': { [`[overlay@${graphroot}]`]: [accept] } } }, allowed: true },
      { name: 'the store rejected under default accept', policy: { default: [accept], transports: { 'containers-storage': { [`[overlay@${graphroot}]`]: [reject] } } }, allowed: false },
      { name: 'the graph root rejected under default accept', policy: { default: [accept], transports: { 'containers-storage': { [`[${graphroot}]`]: [reject] } } }, allowed: false },
      { name: 'another store rejected', policy: { default: [accept], transports: { 'containers-storage': { '[overlay@/elsewhere]': [reject] } } }, allowed: true },
      { name: 'the transport accepted under default reject', policy: { default: [reject], transports: { 'containers-storage': { '': [accept] } } }, allowed: true },
    ];
    // podman 4.3's push takes no --signature-policy (it reads the policy in force): it gets the file in its HOME.
    const podmanHome = path.join(rig.work, 'push-scopes-home');
    fs.mkdirSync(path.join(podmanHome, '.config/containers'), { recursive: true });
    for (const [i, c] of cases.entries()) {
      const file = policy(`push-scope-${i}`, c.policy);
      fs.copyFileSync(file, path.join(podmanHome, '.config/containers/policy.json'));
      const mine = await carrier(store, ['push', '-q', '--tls-verify=false', '--signature-policy', file, `${rig.reg.host}/plain/gz:1`, `${rig.reg.host}/scoped/carrier-${i}:1`]);
      const theirs = await exec(
        'podman',
        ['--root', graphroot, '--runroot', runroot(store), '--tmpdir', path.join(store, 'tmp'), 'push', '-q', '--tls-verify=false', `${rig.reg.host}/plain/gz:1`, `${rig.reg.host}/scoped/podman-${i}:1`],
        { HOME: podmanHome },
      );
      expect({ case: c.name, carrier: mine.code === 0, podman: theirs.code === 0 }, `${mine.stderr}\n${theirs.stderr}`).toEqual({ case: c.name, carrier: c.allowed, podman: c.allowed });
      if (!c.allowed) {
        expect(mine.code).toBe(125);
        expect(mine.stderr).toContain(`containers-storage:[overlay@${graphroot}]${rig.reg.host}/plain/gz:1 is refused by ${file}`);
        expect(theirs.stderr).toContain('is rejected by policy');
      }
    }
  });
});

// The signature policy where it is enforced: copyImage, for pull and load. A refused pull exits 125 with the reason,
// fetches no blob of the image, not even its config (every request counted through a proxy in front of the real
// registry), and leaves the store byte for byte as it was; an image signed as the policy requires is pulled. GPG
// signatures are made by `skopeo copy --sign-by` with a key made here; sigstore ones are attached in the registry
// (Debian's skopeo cannot make them).
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import crypto from 'node:crypto';
import { isBlobGet, isManifestGet } from './support/fault-proxy.js';
import { attachSigstoreSignatures, sigstorePayload, signPayload } from './support/sigstore-attach.js';
import { defaultLayers, toOciArchive, type TestImage } from './support/images.js';
import { snapshot } from './support/store.js';
import { GpgHome, type GpgKey } from './support/signing.js';
import { Store } from '../src/store/store.js';
import { pull } from '../src/pull.js';
import { CarrierError } from '../src/errors.js';
import { registryRig } from './support/registry-rig.js';

const CLI = path.resolve(__dirname, '../dist/cli/main.js');
let home: string;
let gpg: GpgHome;
let alice: GpgKey;
let bob: GpgKey;
let unsigned: TestImage;
let signed: TestImage;
let sigstored: TestImage;
let sigstoredDigest: string;
let sigstoreKey: string;
let otherSigstoreKey: string;
let rejectAll: string;
let byAlice: string;
let byBob: string;

function policy(name: string, p: unknown): string {
  const f = path.join(rig.work, `${name}.json`);
  fs.writeFileSync(f, JSON.stringify(p));
  return f;
}

function carrier(args: string[], root: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, '--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), ...args], { env: { ...process.env, HOME: home } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const rig = registryRig('trust-pull', { proxy: true, timeout: 300_000 }, async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  home = path.join(rig.work, 'home');
  const registriesD = path.join(home, '.config/containers/registries.d');
  fs.mkdirSync(registriesD, { recursive: true });
  // The lookaside is keyed by the registry name pulled: the proxy's, which is the name Carrier pulls by here.
  const lookaside = `file://${path.join(rig.work, 'lookaside')}`;
  const entry = `    lookaside: ${lookaside}\n    use-sigstore-attachments: true\n`;
  fs.writeFileSync(path.join(registriesD, 'test.yaml'), `docker:\n  ${rig.reg.host}:\n${entry}  ${rig.proxy.host}:\n${entry}`);
  // skopeo signs into the same lookaside; Debian's skopeo is built without sigstore, so it is not told of attachments.
  const skopeoD = path.join(rig.work, 'skopeo-registries.d');
  fs.mkdirSync(skopeoD);
  fs.writeFileSync(path.join(skopeoD, 'test.yaml'), `docker:\n  ${rig.reg.host}:\n    lookaside: ${lookaside}\n`);
  gpg = new GpgHome(path.join(rig.work, 'gnupg'));
  alice = gpg.newKey('alice');
  bob = gpg.newKey('bob');
  unsigned = rig.build('unsigned', { label: 'unsigned', layers: defaultLayers('u') });
  signed = rig.build('signed', { label: 'signed', layers: defaultLayers('s') });
  await rig.push(unsigned, 'trust/unsigned:1');
  await new Promise<void>((resolve, reject) =>
    execFile(
      'skopeo',
      ['copy', '-q', '--dest-tls-verify=false', '--registries.d', skopeoD, '--sign-by', alice.fingerprint, '--sign-identity', `${rig.proxy.host}/trust/signed:1`, `oci:${signed.ociDir}`, `docker://${rig.reg.host}/trust/signed:1`],
      { env: gpg.env },
      (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve()),
    ),
  );
  // A sigstore signature of trust/sigstored, attached in the registry, by a key made here.
  sigstored = rig.build('sigstored', { label: 'sigstored', layers: defaultLayers('c') });
  await rig.push(sigstored, 'trust/sigstored:1');
  sigstoredDigest = (await fetch(`${rig.reg.url}/v2/trust/sigstored/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).headers.get(
    'docker-content-digest',
  )!;
  const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  sigstoreKey = path.join(rig.work, 'sigstore.pub');
  fs.writeFileSync(sigstoreKey, pair.publicKey.export({ format: 'pem', type: 'spki' }));
  otherSigstoreKey = path.join(rig.work, 'other-sigstore.pub');
  fs.writeFileSync(otherSigstoreKey, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }));
  const payload = sigstorePayload(sigstoredDigest, `${rig.proxy.host}/trust/sigstored:1`);
  await attachSigstoreSignatures(rig.reg.url, 'trust/sigstored', sigstoredDigest, [{ payload, signature: signPayload(pair.privateKey, payload) }]);
  rejectAll = policy('reject', { default: [{ type: 'reject' }] });
  byAlice = policy('alice', { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: alice.publicKeyFile }] });
  byBob = policy('bob', { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: bob.publicKeyFile }] });
});

afterAll(() => {
  gpg?.close();
});

describe('a pull the signature policy refuses', () => {
  it('exits 125 with the reason, fetches no blob (not even the config) and leaves the store as it was', async () => {
    const store = path.join(rig.work, 'store-refused');
    const first = await carrier(['pull', '-q', '--tls-verify=false', '--signature-policy', byAlice, `${rig.proxy.host}/trust/signed:1`], store);
    expect(first.code, first.stderr).toBe(0);
    const before = snapshot(path.join(store, 'root'));
    rig.proxy.requests.length = 0;
    const r = await carrier(['pull', '-q', '--tls-verify=false', '--signature-policy', rejectAll, `${rig.proxy.host}/trust/unsigned:1`], store);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`docker://${rig.proxy.host}/trust/unsigned:1 is refused by ${rejectAll} (default): the policy rejects it`);
    // A refused image costs one manifest fetch (the policy judges it) and nothing else: no config, no layer.
    expect(rig.proxy.requests.filter(isManifestGet).map((q) => `${q.method} ${q.path}`)).toEqual([`GET /v2/trust/unsigned/manifests/1`]);
    expect(rig.proxy.requests.filter(isBlobGet)).toEqual([]);
    expect(snapshot(path.join(store, 'root'))).toEqual(before);
  });

  it('names the signature and the key when it is signed by a key the policy does not trust, having fetched no blob', async () => {
    const store = path.join(rig.work, 'store-wrong-key');
    rig.proxy.requests.length = 0;
    const r = await carrier(['pull', '-q', '--tls-verify=false', '--signature-policy', byBob, `${rig.proxy.host}/trust/signed:1`], store);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(new RegExp(`signature-1 is signed by key ${alice.fingerprint.slice(-16)}, which is not in ${bob.publicKeyFile}`));
    // The signature came from the lookaside (a directory here); the registry served the manifest and no blob.
    expect(rig.proxy.requests.filter(isBlobGet)).toEqual([]);
  });

  it('refuses a sigstore signature by another key having fetched the signature and no blob of the image', async () => {
    const store = path.join(rig.work, 'store-sigstore-wrong-key');
    const byOther = policy('sigstore-other', { default: [{ type: 'sigstoreSigned', keyPath: otherSigstoreKey }] });
    rig.proxy.requests.length = 0;
    const r = await carrier(['pull', '-q', '--tls-verify=false', '--signature-policy', byOther, `${rig.proxy.host}/trust/sigstored:1`], store);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`does not verify with any key in ${otherSigstoreKey}`);
    // The .sig attachment's manifest and its one payload blob were read; the image's config and layers were not.
    expect(rig.proxy.requests.some((q) => isManifestGet(q) && q.path.endsWith(`${sigstoredDigest.replace(':', '-')}.sig`))).toBe(true);
    const imageBlobs = [sigstored.configDigest, ...sigstored.layers.map((l) => l.digest)];
    expect(rig.proxy.requests.filter((q) => isBlobGet(q) && imageBlobs.some((d) => q.path.endsWith(d)))).toEqual([]);
    expect(rig.proxy.requests.filter(isBlobGet)).toHaveLength(1);
    // The same pull under the right key (one of keyPaths) goes on to the config and the layers.
    const bySigner = policy('sigstore-signer', { default: [{ type: 'sigstoreSigned', keyPaths: [otherSigstoreKey, sigstoreKey] }] });
    const ok = await carrier(['pull', '-q', '--tls-verify=false', '--signature-policy', bySigner, `${rig.proxy.host}/trust/sigstored:1`], store);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(sigstored.configDigest.slice('sha256:'.length));
  });

  it('says where it looked when an image has no signature', async () => {
    const store = path.join(rig.work, 'store-unsigned');
    const root = path.join(store, 'lib');
    const s = await Store.open({ graphroot: path.join(root, 'root'), runroot: path.join(root, 'run') });
    try {
      const err = await pull(s, `${rig.proxy.host}/trust/unsigned:1`, { tlsVerify: false, signaturePolicy: byAlice }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CarrierError);
      expect((err as CarrierError).code).toBe('CARRIER_POLICY_DENIED');
      // This process's own HOME has no registries.d entry: the lookaside is the built-in default one.
      expect((err as Error).message).toMatch(/no simple-signing signature was found at file:\/\/\S+\/trust\/unsigned@sha256=[0-9a-f]{64}\/signature-1$/);
      expect(await s.images()).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

describe('a pull the signature policy allows', () => {
  it('pulls an image signed by the trusted key', async () => {
    const store = path.join(rig.work, 'store-allowed');
    const r = await carrier(['pull', '--tls-verify=false', '--signature-policy', byAlice, `${rig.proxy.host}/trust/signed:1`], store);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(signed.configDigest.slice('sha256:'.length));
  });
});

describe('a load the signature policy refuses', () => {
  it('exits 125 and leaves the store as it was', async () => {
    const store = path.join(rig.work, 'store-load');
    const archive = path.join(rig.work, 'unsigned.tar');
    toOciArchive(unsigned, archive, 'trust/unsigned:1');
    const ok = await carrier(['pull', '-q', '--tls-verify=false', '--signature-policy', byAlice, `${rig.proxy.host}/trust/signed:1`], store);
    expect(ok.code, ok.stderr).toBe(0);
    const before = snapshot(path.join(store, 'root'));
    const r = await carrier(['load', '-q', '--signature-policy', rejectAll, '-i', archive], store);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`oci-archive:${fs.realpathSync(archive)} is refused by ${rejectAll}`);
    expect(snapshot(path.join(store, 'root'))).toEqual(before);
  });
});

describe('a copy the signature policy refuses', () => {
  it('carrier copy --signature-policy (or --policy, as skopeo) exits 125, fetches no blob and writes no layout', async () => {
    for (const flag of ['--signature-policy', '--policy']) {
      const layout = path.join(rig.work, `copied${flag}`);
      rig.proxy.requests.length = 0;
      const r = await carrier(['copy', '-q', '--src-tls-verify=false', flag, rejectAll, `docker://${rig.proxy.host}/trust/unsigned:1`, `oci:${layout}:1`], path.join(rig.work, 'store-copy'));
      expect(r.code, flag).toBe(125);
      expect(r.stderr).toContain(`docker://${rig.proxy.host}/trust/unsigned:1 is refused by ${rejectAll} (default): the policy rejects it`);
      expect(rig.proxy.requests.filter(isBlobGet)).toEqual([]);
      expect(fs.existsSync(path.join(layout, 'index.json'))).toBe(false);
    }
    const allowed = await carrier(['copy', '-q', '--src-tls-verify=false', '--signature-policy', byAlice, `docker://${rig.proxy.host}/trust/signed:1`, `oci:${path.join(rig.work, 'copied-signed')}:1`], path.join(rig.work, 'store-copy'));
    expect(allowed.code, allowed.stderr).toBe(0);
  });
});

// The signature policy decision matrix: for each policy.json (and the same registries.d), Carrier's evaluatePolicy
// and `podman pull --signature-policy` decide the same pull of the same image in the real CNCF registry the same way.
// GPG signatures are made by `skopeo copy --sign-by` with keys gpg makes here. Debian builds skopeo and podman with
// sigstore disabled ("Debian-local change: sigstore disabled": skopeo cannot sign, podman refuses every sigstore
// signature it finds), so sigstore signatures are written here in containers/image's format (node:crypto), and for
// the cases where upstream podman would accept one, podman's refusal is checked to be that Debian stub and nothing
// else, while the signature itself is checked by openssl.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { buildTestImage, defaultLayers, Podman, skopeoRaw, toDockerArchive, toOciArchive } from './support/images.js';
import { GpgHome, type GpgKey } from './support/signing.js';
import { attachSigstoreSignatures, sigstorePayload, signPayload, sha256 } from './support/sigstore-attach.js';
import { RegistryClient } from '../src/registry/index.js';
import { checkSignaturePolicy } from '../src/trust/index.js';
import { registryRig } from './support/registry-rig.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DEBIAN_SIGSTORE_STUB = 'Debian-local change: sigstore disabled';

let podman: Podman;
let gpg: GpgHome;
let alice: GpgKey;
let bob: GpgKey;
let dave: GpgKey;
/** registries.d with a file:// lookaside (HOME for both tools), and one with the same signatures served over http. */
let fileHome: string;
let httpHome: string;
let lookaside: string;
let httpServer: http.Server;
let sigKey: crypto.KeyObject;
let sigPub: string;
let otherPub: string;
const digests: Record<string, string> = {};

async function manifestDigest(repoTag: string): Promise<string> {
  const [repo, tag] = repoTag.split(':') as [string, string];
  const res = await fetch(`${rig.reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  return sha256(Buffer.from(await res.arrayBuffer()));
}

function skopeoSigned(src: string, repoTag: string, key: GpgKey, identity?: string): Promise<void> {
  const args = ['copy', '-q', '--retry-times', '0', '--dest-tls-verify=false', '--registries.d', path.join(fileHome, '.config/containers/registries.d')];
  args.push('--sign-by', key.fingerprint);
  if (identity !== undefined) args.push('--sign-identity', identity);
  args.push(`oci:${src}`, `docker://${rig.reg.host}/${repoTag}`);
  return new Promise((resolve, reject) => {
    execFile('skopeo', args, { env: gpg.env, timeout: 60_000 }, (err, _o, stderr) => (err ? reject(new Error(`skopeo ${args.join(' ')}: ${stderr}`)) : resolve()));
  });
}

function writeRegistriesD(home: string, lookasideUrl: string): void {
  const dir = path.join(home, '.config/containers/registries.d');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'carrier-test.yaml'), `docker:\n  ${rig.reg.host}:\n    lookaside: ${lookasideUrl}\n    use-sigstore-attachments: true\n`);
}

const rig = registryRig('trust-matrix', { timeout: 300_000 }, async () => {
  podman = new Podman(path.join(rig.work, 'podman'));
  lookaside = path.join(rig.work, 'lookaside');
  fileHome = path.join(rig.work, 'home-file');
  writeRegistriesD(fileHome, `file://${lookaside}`);
  httpServer = http.createServer((req, res) => {
    const file = path.join(lookaside, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!file.startsWith(lookaside + '/') || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(fs.readFileSync(file));
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  httpHome = path.join(rig.work, 'home-http');
  writeRegistriesD(httpHome, `http://127.0.0.1:${(httpServer.address() as net.AddressInfo).port}`);

  gpg = new GpgHome(path.join(rig.work, 'gnupg'));
  alice = gpg.newKey('alice');
  bob = gpg.newKey('bob');
  dave = gpg.newKeyWithSigningSubkey('dave');

  // One image per repository, each with its own content, so that every manifest digest differs.
  const img = (name: string): string => buildTestImage(path.join(rig.work, 'img', name), { label: name, layers: defaultLayers(name.slice(0, 1)) }).ociDir;
  await skopeoSigned(img('gpg'), 'trust/gpg:1', alice);
  await skopeoSigned(img('bob'), 'trust/bob:1', bob);
  await skopeoSigned(img('dave'), 'trust/dave:1', dave);
  await skopeoSigned(img('other'), 'trust/other:1', alice, `${rig.reg.host}/trust/elsewhere:1`);
  await skopeoSigned(img('remap'), 'trust/remap:1', alice, 'mirror.example.com/trust/remap:1');
  await rig.push(img('unsigned'), 'trust/unsigned:1');
  // A signature for another manifest: sign one image as trust/stale:1, then push another image under that tag and
  // give it the first one's signature.
  await skopeoSigned(img('stale-old'), 'trust/stale:1', alice);
  const oldDigest = await manifestDigest('trust/stale:1');
  await rig.push(img('stale-new'), 'trust/stale:1');
  const newDigest = await manifestDigest('trust/stale:1');
  const sigDir = (d: string): string => path.join(lookaside, `trust/stale@${d.replace(':', '=')}`);
  fs.cpSync(sigDir(oldDigest), sigDir(newDigest), { recursive: true });

  // sigstore: a key pair, and another key's public half.
  const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  sigKey = pair.privateKey;
  sigPub = path.join(rig.work, 'sigstore.pub');
  fs.writeFileSync(sigPub, pair.publicKey.export({ format: 'pem', type: 'spki' }));
  otherPub = path.join(rig.work, 'other.pub');
  fs.writeFileSync(otherPub, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }));
  for (const name of ['cos', 'cos-tampered', 'cos-stale', 'cos-other']) await rig.push(img(name), `trust/${name}:1`);
  for (const name of ['gpg', 'bob', 'other', 'remap', 'unsigned', 'stale', 'cos', 'cos-tampered', 'cos-stale', 'cos-other']) {
    digests[name] = await manifestDigest(`trust/${name}:1`);
  }
  const sign = (digest: string, ref: string): { payload: Buffer; signature: string } => {
    const payload = sigstorePayload(digest, ref);
    return { payload, signature: signPayload(sigKey, payload) };
  };
  await attachSigstoreSignatures(rig.reg.url, 'trust/cos', digests.cos!, [sign(digests.cos!, `${rig.reg.host}/trust/cos:1`)]);
  const good = sign(digests['cos-tampered']!, `${rig.reg.host}/trust/cos-tampered:1`);
  const tampered = Buffer.from(good.payload.toString().replace('"timestamp":1700000000', '"timestamp":1700000001'));
  await attachSigstoreSignatures(rig.reg.url, 'trust/cos-tampered', digests['cos-tampered']!, [{ payload: tampered, signature: good.signature }]);
  await attachSigstoreSignatures(rig.reg.url, 'trust/cos-stale', digests['cos-stale']!, [sign(digests.cos!, `${rig.reg.host}/trust/cos-stale:1`)]);
  await attachSigstoreSignatures(rig.reg.url, 'trust/cos-other', digests['cos-other']!, [sign(digests['cos-other']!, `${rig.reg.host}/trust/elsewhere:1`)]);
});

afterAll(async () => {
  gpg?.close();
  podman?.reset();
  await new Promise((r) => (httpServer ? httpServer.close(r) : r(undefined)));
});

type Decision = { allowed: true } | { allowed: false; reason: string };

function writePolicy(name: string, policy: unknown): string {
  const file = path.join(rig.work, 'policies', `${name.replace(/[^a-z0-9]+/gi, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof policy === 'string' ? policy : JSON.stringify(policy, null, 2));
  return file;
}

function podmanDecides(policyFile: string, ref: string, home: string): Promise<Decision> {
  const args = ['--root', podman.root, '--runroot', podman.runroot, '--storage-driver', podman.driver];
  args.push('pull', '-q', '--tls-verify=false', '--signature-policy', policyFile, ref);
  return new Promise((resolve) => {
    execFile('podman', args, { env: { ...podman.env, HOME: home }, timeout: 120_000 }, (err, _o, stderr) =>
      resolve(err ? { allowed: false, reason: stderr.trim() } : { allowed: true }),
    );
  });
}

/** Carrier's decision for a pull: the manifest as the registry serves it, then the policy check copyImage runs. */
async function carrierDecides(policyFile: string, ref: string, home: string): Promise<Decision> {
  const client = new RegistryClient({ tlsVerify: false });
  try {
    const got = await client.getManifest(ref);
    await checkSignaturePolicy(
      { reference: `docker://${ref}`, manifest: got.bytes, manifestDigest: got.digest, ...(got.list ? { list: got.list } : {}) },
      { signaturePolicy: policyFile, home, registry: client },
    );
    return { allowed: true };
  } catch (err) {
    return refusal(err);
  } finally {
    await client.close();
  }
}

function refusal(err: unknown): Decision {
  const e = err as { code?: string; message: string };
  if (e.code !== 'CARRIER_POLICY_DENIED' && e.code !== 'CARRIER_INVALID_POLICY') throw err;
  return { allowed: false, reason: e.message };
}

interface Case {
  name: string;
  policy: () => unknown;
  image: string;
  allowed: boolean;
  /** The reference pulled (default `HOST/trust/<image>:1`). */
  ref?: () => string;
  home?: 'file' | 'http';
  /** Upstream podman accepts this sigstore signature; Debian's refuses it with its stub. */
  sigstoreAccept?: boolean;
  /** Part of Carrier's reason. */
  reason?: RegExp;
}

const accept = { type: 'insecureAcceptAnything' };
const reject = { type: 'reject' };
const byAlice = (extra: Record<string, unknown> = {}): unknown => ({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: alice.publicKeyFile, ...extra }] });
const bySigstore = (extra: Record<string, unknown> = {}): unknown => ({ default: [{ type: 'sigstoreSigned', keyPath: sigPub, ...extra }] });
const docker = (scopes: Record<string, unknown[]>, dflt: unknown = reject): unknown => ({ default: [dflt], transports: { docker: scopes } });

const cases: Case[] = [
  { name: 'default insecureAcceptAnything accepts an unsigned image', policy: () => ({ default: [accept] }), image: 'unsigned', allowed: true },
  { name: 'default reject refuses an unsigned image', policy: () => ({ default: [reject] }), image: 'unsigned', allowed: false, reason: /rejects it/ },
  { name: 'a repository scope accepts under default reject', policy: () => docker({ [`${rig.reg.host}/trust/unsigned`]: [accept] }), image: 'unsigned', allowed: true },
  { name: 'a namespace scope accepts under default reject', policy: () => docker({ [`${rig.reg.host}/trust`]: [accept] }), image: 'unsigned', allowed: true },
  { name: 'a registry scope accepts under default reject', policy: () => docker({ [rig.reg.host]: [accept] }), image: 'unsigned', allowed: true },
  { name: 'a *.domain wildcard scope applies to the registry host', policy: () => docker({ '*.0.1': [reject] }, accept), image: 'unsigned', allowed: false },
  { name: 'the transport\'s "" scope applies before default', policy: () => docker({ '': [reject] }, accept), image: 'unsigned', allowed: false },
  {
    name: 'the tag scope is more specific than the repository scope',
    policy: () => docker({ [`${rig.reg.host}/trust/unsigned:1`]: [reject], [`${rig.reg.host}/trust/unsigned`]: [accept] }, accept),
    image: 'unsigned',
    allowed: false,
  },
  { name: "another repository's scope does not apply", policy: () => docker({ [`${rig.reg.host}/trust/gpg`]: [reject] }, accept), image: 'unsigned', allowed: true },
  { name: 'signedBy accepts a signature by the right key', policy: () => byAlice(), image: 'gpg', allowed: true },
  { name: 'signedBy accepts an ASCII-armored key file', policy: () => ({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: alice.armoredFile }] }), image: 'gpg', allowed: true },
  { name: 'signedBy refuses a signature by another key', policy: () => byAlice(), image: 'bob', allowed: false, reason: /signed by key [0-9A-F]+, which is not in/ },
  {
    name: 'signedBy refuses a signature by a subkey of the trusted key',
    policy: () => byAlice({ keyPath: dave.publicKeyFile }),
    image: 'dave',
    allowed: false,
    reason: /signed by subkey [0-9A-F]+ of [0-9A-F]{40}; only signatures by a primary key/,
  },
  { name: 'signedBy keyPaths accepts any listed key', policy: () => byAlice({ keyPath: undefined, keyPaths: [alice.publicKeyFile, bob.publicKeyFile] }), image: 'bob', allowed: true },
  { name: 'signedBy keyData accepts the right key', policy: () => byAlice({ keyPath: undefined, keyData: fs.readFileSync(alice.publicKeyFile).toString('base64') }), image: 'gpg', allowed: true },
  { name: 'signedBy refuses an unsigned image', policy: () => byAlice(), image: 'unsigned', allowed: false, reason: /no simple-signing signature was found at file:\/\// },
  { name: 'signedBy refuses a signature for another repository', policy: () => byAlice(), image: 'other', allowed: false, reason: /is for 127\.0\.0\.1:\d+\/trust\/elsewhere:1, not / },
  { name: 'signedBy exactRepository accepts the repository signed for', policy: () => byAlice({ signedIdentity: { type: 'exactRepository', dockerRepository: `${rig.reg.host}/trust/elsewhere` } }), image: 'other', allowed: true },
  { name: 'signedBy exactReference accepts the reference signed for', policy: () => byAlice({ signedIdentity: { type: 'exactReference', dockerReference: `${rig.reg.host}/trust/elsewhere:1` } }), image: 'other', allowed: true },
  { name: 'signedBy matchRepository refuses another repository', policy: () => byAlice({ signedIdentity: { type: 'matchRepository' } }), image: 'other', allowed: false },
  { name: 'signedBy refuses a signature for another manifest digest', policy: () => byAlice(), image: 'stale', allowed: false, reason: /is for manifest sha256:[0-9a-f]+, not the manifest pulled/ },
  { name: 'remapIdentity accepts a signature made for the mirrored name', policy: () => byAlice({ signedIdentity: { type: 'remapIdentity', prefix: `${rig.reg.host}/trust`, signedPrefix: 'mirror.example.com/trust' } }), image: 'remap', allowed: true },
  { name: 'remapIdentity with another prefix refuses it', policy: () => byAlice({ signedIdentity: { type: 'remapIdentity', prefix: `${rig.reg.host}/elsewhere`, signedPrefix: 'mirror.example.com/trust' } }), image: 'remap', allowed: false },
  { name: 'a digest pull accepts a tag signature (matchRepoDigestOrExact)', policy: () => byAlice(), image: 'gpg', ref: () => `${rig.reg.host}/trust/gpg@${digests.gpg}`, allowed: true },
  { name: 'a digest pull under matchExact refuses a tag signature', policy: () => byAlice({ signedIdentity: { type: 'matchExact' } }), image: 'gpg', ref: () => `${rig.reg.host}/trust/gpg@${digests.gpg}`, allowed: false },
  { name: 'signedBy reads an http:// lookaside', policy: () => byAlice(), image: 'gpg', home: 'http', allowed: true },
  { name: 'signedBy refuses another key over an http:// lookaside', policy: () => byAlice(), image: 'bob', home: 'http', allowed: false },
  { name: 'a scope requiring signatures does not touch other repositories', policy: () => docker({ [`${rig.reg.host}/trust/gpg`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: alice.publicKeyFile }] }, accept), image: 'unsigned', allowed: true },
  { name: 'sigstoreSigned accepts a signature by the right key', policy: () => bySigstore(), image: 'cos', allowed: true, sigstoreAccept: true },
  { name: 'sigstoreSigned keyData accepts the right key', policy: () => bySigstore({ keyPath: undefined, keyData: fs.readFileSync(sigPub).toString('base64') }), image: 'cos', allowed: true, sigstoreAccept: true },
  { name: 'sigstoreSigned refuses a signature by another key', policy: () => bySigstore({ keyPath: otherPub }), image: 'cos', allowed: false, reason: /does not verify with any key in/ },
  { name: 'sigstoreSigned refuses a tampered payload', policy: () => bySigstore(), image: 'cos-tampered', allowed: false, reason: /does not verify/ },
  { name: 'sigstoreSigned refuses a payload for another digest', policy: () => bySigstore(), image: 'cos-stale', allowed: false, reason: /is for manifest sha256:/ },
  { name: 'sigstoreSigned refuses a payload for another repository', policy: () => bySigstore(), image: 'cos-other', allowed: false, reason: /trust\/elsewhere:1, not / },
  { name: 'sigstoreSigned refuses an unsigned image', policy: () => bySigstore(), image: 'unsigned', allowed: false, reason: /no sigstore signature was found at .*sha256-[0-9a-f]+\.sig/ },
  { name: 'sigstoreSigned refuses an image that has only a GPG signature', policy: () => bySigstore(), image: 'gpg', allowed: false },
  { name: 'signedBy refuses an image that has only a sigstore signature', policy: () => byAlice(), image: 'cos', allowed: false },
  { name: 'an unknown requirement type rejects the policy', policy: () => ({ default: [{ type: 'signedByMagic' }] }), image: 'unsigned', allowed: false, reason: /unknown policy requirement type "signedByMagic"/ },
  { name: 'malformed JSON rejects the policy', policy: () => '{"default": [{"type": "insecureAcceptAnything"}]', image: 'unsigned', allowed: false, reason: /malformed JSON/ },
  { name: 'an unknown key rejects the policy', policy: () => ({ default: [{ type: 'insecureAcceptAnything', comment: 'x' }] }), image: 'unsigned', allowed: false, reason: /unknown key "comment"/ },
  { name: 'a key given twice rejects the policy', policy: () => '{"default": [{"type": "reject"}], "default": [{"type": "insecureAcceptAnything"}]}', image: 'unsigned', allowed: false, reason: /duplicate key "default"/ },
  { name: 'an empty requirement list rejects the policy', policy: () => ({ default: [accept], transports: { docker: { [rig.reg.host]: [] } } }), image: 'unsigned', allowed: false },
  { name: 'a scope the transport cannot have rejects the policy', policy: () => ({ default: [accept], transports: { 'docker-archive': { '/tmp/x.tar': [accept] } } }), image: 'unsigned', allowed: false },
  { name: 'a missing default rejects the policy', policy: () => ({ transports: { docker: { '': [accept] } } }), image: 'unsigned', allowed: false, reason: /default policy is missing/ },
  { name: 'a Fulcio requirement is refused', policy: () => ({ default: [{ type: 'sigstoreSigned', fulcio: { caPath: '/nonexistent', oidcIssuer: 'https://x', subjectEmail: 'a@b' } }] }), image: 'cos', allowed: false, reason: /policy requirement fulcio is not supported/ },
];

describe('signature policy: Carrier decides every pull as podman does', () => {
  it('has at least 24 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(24);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const file = writePolicy(c.name, c.policy());
      const ref = c.ref?.() ?? `${rig.reg.host}/trust/${c.image}:1`;
      const home = c.home === 'http' ? httpHome : fileHome;
      const [mine, theirs] = [await carrierDecides(file, ref, home), await podmanDecides(file, ref, home)];
      expect(mine.allowed, mine.allowed ? 'Carrier allowed' : mine.reason).toBe(c.allowed);
      if (c.sigstoreAccept) {
        expect(theirs.allowed).toBe(false);
        expect(theirs.allowed ? '' : theirs.reason).toContain(DEBIAN_SIGSTORE_STUB);
      } else {
        expect(theirs.allowed, theirs.allowed ? 'podman allowed' : theirs.reason).toBe(c.allowed);
      }
      if (!mine.allowed && c.reason) expect(mine.reason).toMatch(c.reason);
    });
  }

  it('the accepted sigstore signature verifies with openssl too', () => {
    const payload = sigstorePayload(digests.cos!, `${rig.reg.host}/trust/cos:1`);
    const sig = Buffer.from(signPayload(sigKey, payload), 'base64');
    fs.writeFileSync(path.join(rig.work, 'payload'), payload);
    fs.writeFileSync(path.join(rig.work, 'payload.sig'), sig);
    const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', sigPub, '-signature', path.join(rig.work, 'payload.sig'), path.join(rig.work, 'payload')]).toString();
    expect(out).toContain('Verified OK');
  });
});

describe('signature policy for load: Carrier decides every archive as podman load does', () => {
  let ociArchive: string;
  let dockerArchive: string;
  beforeAll(() => {
    const img = buildTestImage(path.join(rig.work, 'img', 'archived'), { label: 'archived', layers: defaultLayers('r') });
    fs.mkdirSync(path.join(rig.work, 'archives'));
    ociArchive = path.join(rig.work, 'archives', 'image.oci.tar');
    dockerArchive = path.join(rig.work, 'archives', 'image.docker.tar');
    toOciArchive(img, ociArchive);
    toDockerArchive(img, dockerArchive, 'localhost/trust/archived:1');
  });

  function podmanLoads(policyFile: string, file: string): Promise<Decision> {
    const args = ['--root', podman.root, '--runroot', podman.runroot, '--storage-driver', podman.driver];
    args.push('load', '-q', '--signature-policy', policyFile, '-i', file);
    return new Promise((resolve) => {
      execFile('podman', args, { env: { ...podman.env, HOME: fileHome }, timeout: 120_000 }, (err, _o, stderr) =>
        resolve(err ? { allowed: false, reason: stderr.trim() } : { allowed: true }),
      );
    });
  }

  async function carrierLoads(policyFile: string, reference: string): Promise<Decision> {
    const manifest = skopeoRaw(reference);
    try {
      await checkSignaturePolicy({ reference, manifest, manifestDigest: sha256(manifest) }, { signaturePolicy: policyFile, home: fileHome });
      return { allowed: true };
    } catch (err) {
      return refusal(err);
    }
  }

  const loadCases: { name: string; policy: () => unknown; archive: 'oci' | 'docker'; allowed: boolean; reason?: RegExp }[] = [
    { name: 'default reject refuses an oci-archive', policy: () => ({ default: [reject] }), archive: 'oci', allowed: false, reason: /oci-archive:.*rejects it/ },
    { name: 'an oci-archive file scope accepts it under default reject', policy: () => ({ default: [reject], transports: { 'oci-archive': { [ociArchive]: [accept] } } }), archive: 'oci', allowed: true },
    { name: "an oci-archive directory scope refuses the files below it", policy: () => ({ default: [accept], transports: { 'oci-archive': { [path.dirname(ociArchive)]: [reject] } } }), archive: 'oci', allowed: false },
    { name: 'a docker scope does not apply to an oci-archive', policy: () => ({ default: [accept], transports: { docker: { '': [reject] } } }), archive: 'oci', allowed: true },
    { name: 'signedBy refuses an oci-archive (archives carry no signatures)', policy: () => byAlice(), archive: 'oci', allowed: false, reason: /no simple-signing signature was found/ },
    { name: "docker-archive's own default scope refuses it", policy: () => ({ default: [accept], transports: { 'docker-archive': { '': [reject] } } }), archive: 'docker', allowed: false },
    { name: 'default accept loads a docker-archive', policy: () => ({ default: [accept] }), archive: 'docker', allowed: true },
  ];

  for (const c of loadCases) {
    it(c.name, async () => {
      const file = writePolicy(`load ${c.name}`, c.policy());
      const archive = c.archive === 'oci' ? ociArchive : dockerArchive;
      const mine = await carrierLoads(file, `${c.archive}-archive:${archive}`);
      const theirs = await podmanLoads(file, archive);
      expect(mine.allowed, mine.allowed ? 'Carrier allowed' : mine.reason).toBe(c.allowed);
      expect(theirs.allowed, theirs.allowed ? 'podman allowed' : theirs.reason).toBe(c.allowed);
      if (!mine.allowed && c.reason) expect(mine.reason).toMatch(c.reason);
    });
  }
});

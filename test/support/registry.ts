/**
 * A real CNCF distribution registry (Debian `docker-registry`) started per test file on 127.0.0.1, with optional
 * htpasswd basic auth, token auth (an in-process token issuer signing RS256 JWTs with a certificate the registry
 * trusts), TLS with a self-signed certificate, and pull-through-cache (mirror) mode. Images are pushed with the real
 * skopeo.
 *
 * Debian packages used: docker-registry, skopeo, openssl, perl (bcrypt through libcrypt for the htpasswd file).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import * as H from './hostile.js';
import { buildTestImage, sha256, type TestImage, type TestImageOptions } from './images.js';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  tls?: boolean;
  /** Run as a pull-through cache of this registry URL (`http://127.0.0.1:PORT`). */
  proxyRemote?: string;
  /** Token mode: anonymous token requests get `pull` on every repository (default false: nothing). */
  anonymousPull?: boolean;
  /** Token mode: token lifetime announced as `expires_in` (default 300). */
  tokenExpiresIn?: number;
}

export interface TokenRequest {
  /** Scopes asked for (`repository:NAME:ACTIONS`), in order. */
  scopes: string[];
  service: string | null;
  /** The Basic user name, when credentials came. */
  user?: string;
  /** Credentials came and were wrong: answered 401. */
  rejected: boolean;
}

export interface TokenIssuer {
  url: string;
  service: string;
  requests: TokenRequest[];
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http(s)://127.0.0.1:PORT` */
  url: string;
  users: { user: string; pass: string };
  /** PEM of the self-signed certificate when `tls`. */
  caCert?: string;
  tokenIssuer?: TokenIssuer;
  dir: string;
  stop(): Promise<void>;
}

export const TEST_USER = 'carrier';

function requireRegistryTools(): void {
  const missing: string[] = [];
  for (const [tool, args] of [
    ['docker-registry', ['--version']],
    ['skopeo', ['--version']],
    ['openssl', ['version']],
  ] as const) {
    try {
      execFileSync(tool, [...args], { stdio: 'ignore' });
    } catch {
      missing.push(tool);
    }
  }
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not found: run \`apt-get install docker-registry skopeo openssl\``);
}

/** A free TCP port on 127.0.0.1 (bound then released). */
/** The start of a distribution registry config.yml: filesystem storage in `dataDir`, plain http on `host`. */
export function registryConfigLines(dataDir: string, host: string, opts: { deleteEnabled?: boolean } = {}): string[] {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    ...(opts.deleteEnabled ? ['  delete:', '    enabled: true'] : []),
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${host}`,
    `  secret: ${crypto.randomBytes(16).toString('hex')}`,
  ];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A self-signed certificate (RSA 2048) for `CN`, valid for 127.0.0.1 and localhost. */
export function selfSignedCert(dir: string, name: string): { cert: string; key: string; certPem: string; keyPem: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { stdio: 'pipe' },
  );
  return { cert, key, certPem: fs.readFileSync(cert, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') };
}

/** bcrypt (`$2b$`, cost 5) through the system libcrypt, as htpasswd -B would write it. */
function bcrypt(pass: string): string {
  const salt = crypto.randomBytes(16).toString('base64').replace(/[^A-Za-z0-9]/g, '').padEnd(22, 'a').slice(0, 22).replace(/.$/, 'e');
  const out = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', '--', pass, `$2b$05$${salt}`]).toString();
  if (!out.startsWith('$2b$05$')) throw new Error(`libcrypt has no bcrypt (got ${JSON.stringify(out)}): install apache2-utils`);
  return out;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function startTokenIssuer(
  keyPem: string,
  certPem: string,
  service: string,
  issuer: string,
  users: { user: string; pass: string },
  opts: StartRegistryOptions,
): Promise<TokenIssuer & { server: http.Server }> {
  const requests: TokenRequest[] = [];
  const der = new crypto.X509Certificate(certPem).raw;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const entry: TokenRequest = { scopes, service: u.searchParams.get('service'), rejected: false };
    requests.push(entry);
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      entry.user = name!;
      if (name !== users.user || rest.join(':') !== users.pass) {
        entry.rejected = true;
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      user = name;
    }
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const s of scopes) {
      const m = /^([a-z]+):(.+):([a-z*,]+)$/.exec(s);
      if (!m) continue;
      const wanted = m[3]!.split(',');
      const allowed = user !== undefined ? wanted : opts.anonymousPull ? wanted.filter((a) => a === 'pull') : [];
      access.push({ type: m[1]!, name: m[2]!, actions: allowed });
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = opts.tokenExpiresIn ?? 300;
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(signingInput), keyPem);
    const token = `${signingInput}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({ url: `http://127.0.0.1:${port}/token`, service, requests, server });
    });
  });
}

async function waitForRegistry(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode}): ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    const status = await new Promise<number>((resolve) => {
      const mod = url.startsWith('https:') ? https : http;
      const req = mod.get(`${url}/v2/`, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
    });
    if (status === 200 || status === 401) return;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Registries still running: killed when the test process exits without stop(). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Starts `docker-registry serve` with a generated config; `stop()` kills it and removes its storage. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  requireRegistryTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-registry-'));
  const port = await freePort();
  const auth = opts.auth ?? 'none';
  const users = { user: TEST_USER, pass: crypto.randomBytes(9).toString('base64url') };
  const scheme = opts.tls ? 'https' : 'http';
  const host = `127.0.0.1:${port}`;
  const lines = registryConfigLines(path.join(dir, 'data'), host, { deleteEnabled: true });
  let caCert: string | undefined;
  if (opts.tls) {
    const c = selfSignedCert(dir, 'registry');
    caCert = c.certPem;
    lines.push('  tls:', `    certificate: ${c.cert}`, `    key: ${c.key}`);
  }
  let issuer: (TokenIssuer & { server: http.Server }) | undefined;
  if (auth === 'htpasswd') {
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, `${users.user}:${bcrypt(users.pass)}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: carrier-test', `    path: ${file}`);
  } else if (auth === 'token') {
    const c = selfSignedCert(dir, 'token-signer');
    const service = 'carrier-test-registry';
    const iss = 'carrier-test-issuer';
    issuer = await startTokenIssuer(c.keyPem, c.certPem, service, iss, users, opts);
    lines.push('auth:', '  token:', `    realm: ${issuer.url}`, `    service: ${service}`, `    issuer: ${iss}`, `    rootcertbundle: ${c.cert}`);
  }
  if (opts.proxyRemote) lines.push('proxy:', `  remoteurl: ${opts.proxyRemote}`);
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, lines.join('\n') + '\n');
  const logFile = path.join(dir, 'registry.log');
  const log = fs.openSync(logFile, 'w');
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  live.add(child);
  child.once('exit', () => live.delete(child));
  const url = `${scheme}://${host}`;
  try {
    await waitForRegistry(url, child, logFile);
  } catch (err) {
    child.kill('SIGKILL');
    issuer?.server.close();
    throw err;
  }
  const reg: TestRegistry = {
    host,
    url,
    users,
    dir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      if (issuer) {
        issuer.server.closeAllConnections();
        await new Promise((r) => issuer!.server.close(r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  if (caCert !== undefined) reg.caCert = caCert;
  if (issuer) reg.tokenIssuer = { url: issuer.url, service: issuer.service, requests: issuer.requests };
  return reg;
}

// ---------------------------------------------------------------------------------------------------------------
// Pushing

export interface PushOptions {
  /** Manifest format skopeo writes (default: as the source has it). */
  format?: 'oci' | 'v2s2';
  /** Recompress every layer (default: layers are copied as they are). */
  compress?: 'gzip' | 'zstd' | 'none';
  creds?: { user: string; pass: string };
  /** Copy every instance of an index (skopeo `--multi-arch all`). */
  multiArch?: boolean;
}

/**
 * `skopeo copy SRC docker://HOST/REPO:TAG` with `--dest-tls-verify=false`. `src` is an OCI layout directory (its
 * only image unless `dir:tag` is given as `oci:`-less `DIR:TAG`), or any skopeo transport reference
 * (`oci-archive:...`, `docker-archive:...`, `oci:DIR:TAG`).
 */
export async function pushImage(registryHost: string, src: string, repoTag: string, opts: PushOptions = {}): Promise<void> {
  const source = /^(oci|oci-archive|docker-archive|dir|docker):/.test(src) ? src : `oci:${src}`;
  const args = ['copy', '-q', '--retry-times', '0', '--dest-tls-verify=false'];
  if (opts.format) args.push('--format', opts.format);
  if (opts.compress === 'none') args.push('--dest-decompress');
  else if (opts.compress) args.push('--dest-compress', '--dest-compress-format', opts.compress);
  if (opts.creds) args.push('--dest-creds', `${opts.creds.user}:${opts.creds.pass}`);
  if (opts.multiArch) args.push('--multi-arch', 'all');
  args.push(source, `docker://${registryHost}/${repoTag}`);
  // Asynchronous: the token issuer (and any proxy in front) answer skopeo from this process's event loop.
  await new Promise<void>((resolve, reject) => {
    execFile('skopeo', args, { env: { ...process.env, LC_ALL: 'C.UTF-8' }, timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`skopeo ${args.join(' ')} failed (${err.code ?? err.signal}): ${stderr}`));
      else resolve();
    });
  });
}

export interface MultiArchImage {
  ociDir: string;
  tag: string;
  index: Buffer;
  indexDigest: string;
  images: { platform: { os: string; architecture: string; variant?: string }; image: TestImage }[];
}

/**
 * An OCI layout whose `tag` names an OCI image index with one image per platform (each with its own layers and
 * config naming that platform). Push it with `pushImage(..., { multiArch: true })`.
 */
export function buildMultiArchLayout(
  dir: string,
  platforms: { os?: string; architecture: string; variant?: string }[],
  opts: { tag?: string } = {},
): MultiArchImage {
  const tag = opts.tag ?? 'latest';
  fs.mkdirSync(path.join(dir, 'blobs/sha256'), { recursive: true });
  const images: MultiArchImage['images'] = [];
  platforms.forEach((p, i) => {
    const sub = path.join(dir, `.build-${i}`);
    const platform: { os: string; architecture: string; variant?: string } = { os: p.os ?? 'linux', architecture: p.architecture };
    if (p.variant) platform.variant = p.variant;
    const o: TestImageOptions = { architecture: p.architecture, os: p.os ?? 'linux', label: `${p.architecture}${p.variant ?? ''}` };
    const image = buildTestImage(sub, {
      ...o,
      layers: [{ compression: 'gzip', entries: [H.file('platform', `${platform.os}/${platform.architecture}${p.variant ? '/' + p.variant : ''}\n`, { mtime: 1_700_000_000 })] }],
    });
    for (const f of fs.readdirSync(path.join(sub, 'blobs/sha256'))) {
      fs.copyFileSync(path.join(sub, 'blobs/sha256', f), path.join(dir, 'blobs/sha256', f));
    }
    fs.rmSync(sub, { recursive: true, force: true });
    image.ociDir = dir;
    images.push({ platform, image });
  });
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: images.map(({ platform, image }) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: image.manifestDigest,
        size: image.manifest.length,
        platform,
      })),
    }),
  );
  const indexDigest = sha256(index);
  fs.writeFileSync(path.join(dir, 'blobs/sha256', indexDigest.slice(7)), index);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': tag } },
      ],
    }),
  );
  return { ociDir: dir, tag, index, indexDigest, images };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading back what the registry holds (anonymous, plain http): skopeo may recompress layers on push, so tests
// take the manifest and blobs as the registry serves them.

export interface StoredImage {
  manifest: Buffer;
  digest: string;
  mediaType: string;
  layers: { digest: string; size: number; blob: Buffer }[];
  config: { digest: string; size: number };
}

const ACCEPT_ALL = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export async function storedImage(reg: { url: string }, repo: string, ref: string): Promise<StoredImage> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT_ALL } });
  if (!res.ok) throw new Error(`GET manifest ${repo}:${ref}: ${res.status}`);
  const manifest = Buffer.from(await res.arrayBuffer());
  const doc = JSON.parse(manifest.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  const layers = await Promise.all(
    (doc.layers ?? []).map(async (l) => {
      const r = await fetch(`${reg.url}/v2/${repo}/blobs/${l.digest}`);
      if (!r.ok) throw new Error(`GET blob ${l.digest}: ${r.status}`);
      return { digest: l.digest, size: l.size, blob: Buffer.from(await r.arrayBuffer()) };
    }),
  );
  return { manifest, digest: sha256(manifest), mediaType: res.headers.get('content-type') ?? '', layers, config: doc.config };
}

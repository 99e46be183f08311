/**
 * Registry errors a user can act on (issue 17 item 4): `carrier pull` of the built CLI (`node dist/cli/main.js`; run
 * `npx tsc -p tsconfig.json` first) against the real CNCF registry, a port nothing listens on, and small in-process
 * web servers where the peer must be something that is not a registry. Each failure ends in one line that says what
 * failed, where, and what to do.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { freePort } from './support/registry.js';
import type { TestImage } from './support/images.js';
import { prng } from './support/fixtures.js';
import * as H from './support/hostile.js';
import { registryRig } from './support/registry-rig.js';
import { requireCli, runCli, type CliResult } from './support/reliability.js';


let img: TestImage;
let n = 0;

/** `carrier pull` into a store of its own, asynchronously (a server in this process may have to answer it). */
function pull(args: string[]): Promise<CliResult> {
  const store = path.join(rig.work, `store${n++}`);
  return runCli(['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', 'vfs', 'pull', ...args], { LC_ALL: 'C.UTF-8' });
}

/** The error line: the CLI prints one `Error: ...` line last. */
function errorLine(r: CliResult): string {
  const lines = r.stderr.trimEnd().split('\n');
  const last = lines[lines.length - 1]!;
  expect(last, r.stderr).toMatch(/^Error: /);
  return last;
}

/** A web server on 127.0.0.1 that answers every request with `answer`. */
async function webServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ host: string; close(): Promise<void> }> {
  const server = http.createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const HTML = '<!DOCTYPE HTML>\n<html lang="en"><head><title>Error response</title></head><body><h1>Not Found</h1></body></html>\n';

const rig = registryRig('registry-errors', { requireTools: false }, async () => {
  requireCli();
  img = await rig.buildAndPush('img', 'errors/a:1', {
    layers: [{ compression: 'gzip', entries: [H.file('data.bin', prng(256 * 1024, 'registry-errors'))] }],
  });
});

describe('registry errors a user can act on', () => {
  it('a plain-http registry reached over https says it gave an HTTP response to an HTTPS client, and names --tls-verify=false', async () => {
    const r = await pull([`${rig.reg.host}/errors/a:1`]);
    expect(r.code).toBe(125);
    const line = errorLine(r);
    expect(line).toContain(rig.reg.host);
    expect(line).toMatch(/HTTP response to an HTTPS client/);
    expect(line).toContain('--tls-verify=false');
    expect(line).not.toMatch(/ssl3_|SSL routines|ERR_SSL/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    // and the flag it names does fix it
    const fixed = await pull(['-q', '--tls-verify=false', `${rig.reg.host}/errors/a:1`]);
    expect(fixed.code, fixed.stderr).toBe(0);
  });

  it('a web server answering /v2/ with an HTML 404 is reported as not a registry, with no HTML in the message', async () => {
    const web = await webServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end(HTML));
    try {
      for (const tls of [['--tls-verify=false'], []]) {
        const r = await pull([...tls, `${web.host}/errors/a:1`]);
        expect(r.code).toBe(125);
        const line = errorLine(r);
        expect(line).toContain(web.host);
        if (tls.length === 0) {
          expect(line).toMatch(/HTTP response to an HTTPS client/);
          continue;
        }
        expect(line).toMatch(/not a container registry/);
        expect(line).toMatch(/404/);
        expect(line).not.toMatch(/<!DOCTYPE|<html|manifest .* not found/i);
      }
    } finally {
      await web.close();
    }
  });

  it('a web server answering every path with an HTML 200 is reported as not a registry', async () => {
    const web = await webServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(HTML));
    try {
      const r = await pull(['--tls-verify=false', `${web.host}/errors/a:1`]);
      expect(r.code).toBe(125);
      const line = errorLine(r);
      expect(line).toContain(web.host);
      expect(line).toMatch(/not a container registry/);
      expect(line).not.toMatch(/<!DOCTYPE|<html/i);
    } finally {
      await web.close();
    }
  });

  it('connection refused with --tls-verify=false names plain http, not https, and says it retried once', async () => {
    const port = await freePort();
    const r = await pull(['--tls-verify=false', `127.0.0.1:${port}/errors/a:1`]);
    expect(r.code).toBe(125);
    const line = errorLine(r);
    expect(line).toContain(`http://127.0.0.1:${port}`);
    expect(line).not.toContain('https://');
    expect(line).toMatch(/connection refused/);
    expect(line).toMatch(/is a registry running/);
    const retries = r.stderr.split('\n').filter((l) => /retrying/.test(l));
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(/^WARN.*connection refused/);
  });

  it('connection refused over https names https and the address', async () => {
    const port = await freePort();
    const r = await pull([`127.0.0.1:${port}/errors/a:1`]);
    expect(r.code).toBe(125);
    const line = errorLine(r);
    expect(line).toContain(`https://127.0.0.1:${port}`);
    expect(line).toMatch(/connection refused/);
  });

  it('a corrupt blob in the registry ends in an error naming the blob digest and the image', async () => {
    const layer = img.layers[0]!;
    const blobFile = path.join(rig.reg.dir, 'data/docker/registry/v2/blobs/sha256', layer.digest.slice(7, 9), layer.digest.slice(7), 'data');
    const bytes = fs.readFileSync(blobFile);
    const corrupt = Buffer.from(bytes);
    // a byte in the middle of the deflate stream: same size, other content
    corrupt[Math.floor(corrupt.length / 2)]! ^= 0xff;
    fs.writeFileSync(blobFile, corrupt);
    try {
      const r = await pull([`--tls-verify=false`, `${rig.reg.host}/errors/a:1`]);
      expect(r.code).toBe(125);
      const line = errorLine(r);
      expect(line).toContain(layer.digest);
      expect(line).toContain(`${rig.reg.host}/errors/a:1`);
    } finally {
      fs.writeFileSync(blobFile, bytes);
    }
  });
});

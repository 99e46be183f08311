// Rootless without a login session: `su - user -c 'carrier pull …'` on a machine where root has used podman. There
// XDG_RUNTIME_DIR is unset, so the default auth file is /run/containers/<uid>/containers/auth.json, under a
// /run/containers that root made 0700: the pull must skip that unreadable default (as podman does), while an auth
// file the user names is still read or refused. Run for real through su(1) as an unprivileged user; the machine's
// /run/containers is put back as it was.
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registryRig } from './support/registry-rig.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
const USER = 'carrier-nosession';
const RUN_CONTAINERS = '/run/containers';

let home: string;
let uid: number;
let ref: string;
let configId: string;
/** How /run/containers was before the test: absent, or its mode and owner. */
let before: { mode: number; uid: number; gid: number } | undefined;

const sh = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** `su - USER -c …` with no session: a login shell's environment, XDG_RUNTIME_DIR unset, HOME the user's own. */
function asUser(args: string[]): { status: number; stdout: string; stderr: string } {
  const command = [
    'unset XDG_RUNTIME_DIR;',
    `HOME=${sh(home)} TMPDIR=${sh(path.join(home, 'tmp'))} exec`,
    sh(process.execPath),
    sh(CLI),
    ...args.map(sh),
  ].join(' ');
  const r = spawnSync('su', ['-', USER, '-s', '/bin/sh', '-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const rig = registryRig('nosession', {}, async () => {
  expect(process.geteuid?.(), 'this test creates a user and must start as root').toBe(0);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  if (spawnSync('id', ['-u', USER]).status !== 0) {
    const made = spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER]);
    if (made.status !== 0) throw new Error(`useradd failed (install Debian 'passwd'): ${made.stderr}`);
  }
  uid = Number(execFileSync('id', ['-u', USER]).toString());
  const gid = Number(execFileSync('id', ['-g', USER]).toString());

  fs.chmodSync(rig.work, 0o755);
  home = path.join(rig.work, 'home');
  fs.mkdirSync(path.join(home, 'tmp'), { recursive: true });
  for (const d of [home, path.join(home, 'tmp')]) fs.chownSync(d, uid, gid);

  const img = rig.build('img', { label: 'nosession' });
  await rig.push(img, 'nosession/a:1');
  ref = `${rig.reg.host}/nosession/a:1`;
  configId = img.configDigest.slice(7);

  const st = fs.statSync(RUN_CONTAINERS, { throwIfNoEntry: false });
  before = st ? { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } : undefined;
  if (!st) fs.mkdirSync(RUN_CONTAINERS);
  fs.chownSync(RUN_CONTAINERS, 0, 0);
  fs.chmodSync(RUN_CONTAINERS, 0o700); // as root's podman leaves it
});

afterAll(() => {
  if (before === undefined) fs.rmSync(RUN_CONTAINERS, { recursive: true, force: true });
  else if (fs.existsSync(RUN_CONTAINERS)) {
    fs.chownSync(RUN_CONTAINERS, before.uid, before.gid);
    fs.chmodSync(RUN_CONTAINERS, before.mode);
  }
});

describe('rootless pull through su, with no login session', () => {
  it('pulls into the default store: the unreadable default auth file under /run/containers is skipped', () => {
    // The premise: this user cannot even look into /run/containers.
    const probe = spawnSync('su', ['-', USER, '-s', '/bin/sh', '-c', `test -z "$XDG_RUNTIME_DIR" && ls ${RUN_CONTAINERS}/${uid}`], { encoding: 'utf8' });
    expect(probe.status).not.toBe(0);
    expect(probe.stderr).toMatch(/Permission denied/);

    const r = asUser(['pull', '-q', '--tls-verify=false', ref]);
    expect(r.stderr).not.toMatch(/EACCES|auth file/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${configId}\n`);
    const images = asUser(['images', '--format', 'json']);
    expect(images.status, images.stderr).toBe(0);
    expect((JSON.parse(images.stdout) as { Id: string }[]).map((i) => i.Id)).toEqual([configId]);
    expect(fs.existsSync(path.join(home, '.local/share/carrier/storage/overlay-images', configId))).toBe(true);
  });

  it('an auth file named with --authfile that cannot be read is still an error', () => {
    const named = `${RUN_CONTAINERS}/${uid}/containers/auth.json`;
    const r = asUser(['pull', '-q', '--tls-verify=false', '--authfile', named, ref]);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain(`cannot read auth file ${named}`);
    expect(r.stderr).toContain('EACCES');
  });
});

/**
 * validateStoredName against the real podman (4.3.1 here): every name it accepts is one `podman tag` writes byte for
 * byte and `podman images` lists; every tag-form name it refuses is one podman refuses or would store differently;
 * and the names it refuses that podman cannot read break `podman images` for the whole store when planted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { validateStoredName, validateStoredNames, MAX_NAMES_PER_IMAGE } from '../src/reference.js';
import { CarrierError } from '../src/errors.js';
import { tempDir } from './support/fixtures.js';
import { seeded } from './support/reliability.js';

const HEX = 'a'.repeat(64);

/** Names podman writes itself, in every shape the grammar allows. */
const ACCEPTED = [
  'localhost/foo:latest',
  'localhost:5000/x:1',
  'FOO.com/bar:1',
  'x.y/a__b:1',
  'a.b/c--d:1',
  'docker.io/library/alpine:3.19',
  'quay.io/a/b/c/d:Tag_x.y-z',
  'reg-1.example.com:65535/a-b.c_d/e:' + 'T'.repeat(128),
  'localhost/' + 'a'.repeat(245) + ':1', // repository of exactly 255 characters
  '1.2.3.4:80/a:_x',
  `docker.io/library/alpine@sha256:${HEX}`,
  `x.y/a@sha512:${'b'.repeat(128)}`,
];

/** Names refused, each with the podman verdict it stands for. */
const REFUSED: { name: string; podmanBreaks?: boolean }[] = [
  { name: '[::1]:5000/x:1', podmanBreaks: true },
  { name: '[::1]/x:1', podmanBreaks: true },
  { name: 'x.y/a___b:1', podmanBreaks: true },
  { name: 'x.y/A:1', podmanBreaks: true },
  { name: 'x.y/a:1\n', podmanBreaks: true },
  { name: 'x.y/a\u0000b:1', podmanBreaks: true },
  { name: 'x.y/a b:1', podmanBreaks: true },
  { name: 'x.y/é:1', podmanBreaks: true },
  { name: '-a.b/c:1', podmanBreaks: true },
  { name: 'x.y/a:-t', podmanBreaks: true },
  { name: 'localhost/' + 'a'.repeat(246) + ':1', podmanBreaks: true },
  { name: 'x.y/a:' + 'T'.repeat(129), podmanBreaks: true },
  { name: 'x.y/a@sha256:abc', podmanBreaks: true },
  { name: `x.y/a@md5:${HEX.slice(0, 32)}` , podmanBreaks: true },
  { name: `x.y/a@sha256:${HEX.toUpperCase()}`, podmanBreaks: true },
  { name: 'x.y//a:1', podmanBreaks: true },
  { name: '' },
  { name: 'foo:1' }, // podman stores localhost/foo:1
  { name: 'a/b:1' }, // no registry
  { name: 'Host/bar:1' }, // podman 4.3: a path, and not lowercase
  { name: 'x.y/a' }, // podman stores x.y/a:latest
  { name: 'docker.io/alpine:1' }, // podman stores docker.io/library/alpine:1
  { name: 'index.docker.io/library/alpine:1' },
  { name: `x.y/a:1@sha256:${HEX}` }, // podman strips the tag of a digested name
  { name: 'x'.repeat(100_000) },
];

let dir: string;
let seq = 0;

function podman(store: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('podman', ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--tmpdir', path.join(store, 'tmp'), '--storage-driver', 'vfs', ...args], {
    encoding: 'utf8',
    env: { ...process.env, CONTAINERS_STORAGE_CONF: path.join(store, 'storage.conf') },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A vfs store with one image, `localhost/base:1`. */
function newStore(): string {
  const store = path.join(dir, `s${seq++}`);
  fs.mkdirSync(path.join(store, 'layer'), { recursive: true });
  fs.writeFileSync(path.join(store, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${path.join(store, 'root')}"\nrunroot = "${path.join(store, 'run')}"\n`);
  fs.writeFileSync(path.join(store, 'layer', 'f'), 'f\n');
  execFileSync('tar', ['-cf', path.join(store, 'l.tar'), '-C', path.join(store, 'layer'), 'f']);
  const r = podman(store, ['import', path.join(store, 'l.tar'), 'localhost/base:1']);
  if (r.status !== 0) throw new Error(`podman import: ${r.stderr}`);
  return store;
}

function recordNames(store: string): string[] {
  const doc = JSON.parse(fs.readFileSync(path.join(store, 'root', 'vfs-images', 'images.json'), 'utf8')) as { names?: string[] }[];
  return doc[0]!.names ?? [];
}

/** Plants `names` into the image record directly, as a damaged or foreign writer would. */
function plant(store: string, names: string[]): void {
  const file = path.join(store, 'root', 'vfs-images', 'images.json');
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { names?: string[] }[];
  doc[0]!.names = ['localhost/base:1', ...names];
  fs.writeFileSync(file, JSON.stringify(doc));
}

function listedNames(store: string): string[] {
  const r = podman(store, ['images', '--format', 'json']);
  if (r.status !== 0) throw new Error(`podman images: ${r.stderr.trim()}`);
  // one row per name, each row with all the image's names
  return [...new Set((JSON.parse(r.stdout) as { Names?: string[] }[]).flatMap((i) => i.Names ?? []))];
}

function accepts(name: string): boolean {
  figures.tried++;
  try {
    validateStoredName(name);
    figures.accepted++;
    return true;
  } catch (err) {
    figures.refused++;
    expect(err).toBeInstanceOf(CarrierError);
    expect((err as CarrierError).code).toBe('CARRIER_INVALID_REFERENCE');
    expect((err as CarrierError).message.length).toBeLessThan(400);
    return false;
  }
}

beforeAll(() => {
  dir = tempDir('reference-store');
});

const figures = { tried: 0, accepted: 0, refused: 0, unreadableRecords: 0 };

afterAll(() => {
  console.log(`reference-store summary ${JSON.stringify(figures)}`);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('validateStoredName', () => {
  it('accepts the names podman writes, and podman lists every one of them from a record', () => {
    for (const n of ACCEPTED) expect(accepts(n), n).toBe(true);
    const store = newStore();
    plant(store, ACCEPTED);
    expect(listedNames(store).sort()).toEqual(['localhost/base:1', ...ACCEPTED].sort());
  });

  it('refuses the rest; those podman cannot parse break `podman images` for the whole store when planted', () => {
    for (const { name } of REFUSED) expect(accepts(name), JSON.stringify(name.slice(0, 40))).toBe(false);
    const store = newStore();
    for (const { name } of REFUSED.filter((r) => r.podmanBreaks)) {
      plant(store, [name]);
      const r = podman(store, ['images']);
      expect(r.status, JSON.stringify(name)).not.toBe(0);
      expect(r.stderr).toMatch(/invalid reference format|must be lowercase|more than 255|invalid checksum digest|unsupported digest algorithm/);
    }
    plant(store, []);
    expect(listedNames(store)).toEqual(['localhost/base:1']);
  });

  it('agrees with `podman tag` on generated names: accepted exactly when podman writes the name unchanged', () => {
    const rnd = seeded(18);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const word = (alphabet: string, max: number): string => Array.from({ length: 1 + Math.floor(rnd() * max) }, () => pick([...alphabet])).join('');
    const domains = ['localhost', 'localhost:5000', 'FOO.com', 'a.b', 'reg-1.example.com:443', 'quay.io', 'docker.io', '1.2.3.4:80'];
    const hostile = ['x', 'X.y', '[::1]:5000', '[::1]', 'a_b.c', '-a.b', 'a.b-', 'index.docker.io', 'Ab', 'a.b:x'];
    const store = newStore();
    const verdicts = { accepted: 0, refused: 0 };
    for (let i = 0; i < 150; i++) {
      const x = rnd();
      const domain = x < 0.55 ? pick(domains) : x < 0.8 ? pick(hostile) : word('abcXY019.-_:', 12);
      const comps = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => (rnd() < 0.85 ? word('abcz09', 8) + (rnd() < 0.3 ? pick(['.', '_', '__', '-', '--', '___', '..']) + word('abc09', 4) : '') : word('abcAZ09._-', 8)));
      const tag = rnd() < 0.1 ? '' : ':' + (rnd() < 0.8 ? word('abcXYZ019_', 10) : word('abcXYZ019_.-', 10));
      const name = `${domain}/${comps.join('/')}${tag}`;
      const verdict = accepts(name);
      const r = podman(store, ['tag', 'localhost/base:1', name]);
      const writtenAsIs = r.status === 0 && recordNames(store).includes(name);
      expect(verdict, `${JSON.stringify(name)}: podman tag ${r.status === 0 ? 'ok' : r.stderr.trim()}`).toBe(writtenAsIs);
      verdicts[verdict ? 'accepted' : 'refused']++;
    }
    // both sides of the property were exercised
    expect(verdicts.accepted).toBeGreaterThan(20);
    expect(verdicts.refused).toBeGreaterThan(20);
    // and podman still reads the store with everything it was given
    expect(listedNames(store).length).toBe(recordNames(store).length);
  }, 120_000);

  it('caps the names of one image', () => {
    const names = Array.from({ length: MAX_NAMES_PER_IMAGE }, (_, i) => `localhost/n${i}:1`);
    expect(() => validateStoredNames(names)).not.toThrow();
    expect(() => validateStoredNames([...names, 'localhost/one-more:1'])).toThrow(/at most 100 names/);
    expect(() => validateStoredNames(['localhost/ok:1', '[::1]:5000/x:1'])).toThrow(/IPv6/);
  });
});

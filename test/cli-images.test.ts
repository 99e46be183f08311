/**
 * The image commands of the built CLI (`node dist/cli/main.js`), each compared with podman 4.3.1 on the same store
 * (or on a twin store that podman itself loaded from the same archive): load, images, inspect, tag, untag, rmi,
 * image exists — outputs and exit codes.
 *
 * Needs: podman, skopeo (Debian packages), root (podman's overlay store), and `npx tsc -p tsconfig.json` first.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir, run } from './support/fixtures.js';
import { buildTestImage, requireTools, toDockerArchive, toOciArchive, Podman, type TestImage, removeWorkDir } from './support/images.js';

const T = 180_000;
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

class Twin {
  readonly podman: Podman;
  constructor(dir: string) {
    this.podman = new Podman(dir);
  }
  private env(): NodeJS.ProcessEnv {
    return { ...process.env, CONTAINERS_STORAGE_CONF: this.podman.conf, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
  }
  carrier(args: string[]): Result {
    const r = spawnSync(process.execPath, [CLI, '--root', this.podman.root, '--runroot', this.podman.runroot, ...args], { env: this.env(), encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  pm(args: string[]): Result {
    const r = spawnSync('podman', [...this.podman.globalArgs, ...args], {
      env: this.env(),
      encoding: 'utf8',
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  records(): { id: string; names?: string[]; 'names-history'?: string[]; digest?: string; created?: string }[] {
    const f = path.join(this.podman.root, 'overlay-images', 'images.json');
    return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : [];
  }
}

/** Rewrites a docker-archive's manifest.json RepoTags (extract, edit, re-tar with GNU tar). */
function withRepoTags(src: string, out: string, tags: string[] | null): void {
  const dir = tempDir('retag');
  run('tar', ['-C', dir, '-xf', src]);
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { RepoTags: string[] | null }[];
  m[0]!.RepoTags = tags;
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
  run('tar', ['-C', dir, '-cf', out, ...fs.readdirSync(dir)]);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Strips podman's progress lines, keeping what a user reads. */
function loaded(out: string): string[] {
  return out.split('\n').filter((l) => l.startsWith('Loaded image'));
}

let work: string;
let img: TestImage;
let multi: string;
let untagged: string;
let id: string;

beforeAll(() => {
  requireTools();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  work = tempDir('cli-images');
  img = buildTestImage(path.join(work, 'oci'), { tag: 'v1' });
  id = img.configDigest.slice(7);
  const plain = path.join(work, 'plain.tar');
  toDockerArchive(img, plain, 'foo:1');
  multi = path.join(work, 'multi.tar');
  withRepoTags(plain, multi, ['foo:1', 'localhost/foo:1', 'docker.io/library/alpine:latest', 'quay.io/x/y:2']);
  untagged = path.join(work, 'untagged.tar');
  withRepoTags(plain, untagged, null);
}, T);

afterAll(() => removeWorkDir(work));

describe('carrier load', () => {
  it('names docker-archive images as podman load does, with the same records', () => {
    const a = new Twin(path.join(work, 'load-a'));
    const b = new Twin(path.join(work, 'load-b'));
    const c = a.carrier(['load', '-i', multi]);
    expect(c.stderr).not.toMatch(/Error/);
    expect(c.status).toBe(0);
    const p = b.pm(['load', '-i', multi]);
    expect(p.status).toBe(0);
    // podman prints localhost/foo:1 twice (once per RepoTag); Carrier once per distinct name.
    expect(loaded(c.stdout)).toEqual([...new Set(loaded(p.stdout))]);
    expect(loaded(c.stdout)).toEqual([
      'Loaded image: localhost/foo:1',
      'Loaded image: docker.io/library/alpine:latest',
      'Loaded image: quay.io/x/y:2',
    ]);
    const [ra] = a.records();
    const [rb] = b.records();
    expect(ra!.id).toBe(id);
    expect(ra!.names).toEqual(rb!.names);
    expect(ra!['names-history']).toEqual(rb!['names-history']);
    expect(ra!.digest).toBe(rb!.digest);
    expect(ra!.created).toBe(rb!.created);
    // What podman itself reports about the two stores is identical.
    expect(a.pm(['images', '--format', 'json']).stdout).toBe(b.pm(['images', '--format', 'json']).stdout);
    expect(a.pm(['image', 'inspect', 'foo:1']).stdout.replaceAll(a.podman.root, 'ROOT')).toBe(
      b.pm(['image', 'inspect', 'foo:1']).stdout.replaceAll(b.podman.root, 'ROOT'),
    );
  }, T);

  it('loads an unnamed image as sha256:<id>, and a docker-archive RepoTag without a tag fails', () => {
    const a = new Twin(path.join(work, 'load-unnamed'));
    const c = a.carrier(['load', '-q', '-i', untagged]);
    expect(c.status).toBe(0);
    expect(c.stdout).toBe(`Loaded image: sha256:${id}\n`);
    expect(a.pm(['images', '--format', '{{.Repository}}:{{.Tag}}']).stdout).toBe('<none>:<none>\n');
    const bad = path.join(work, 'notag.tar');
    withRepoTags(untagged, bad, ['bar']);
    const f = a.carrier(['image', 'load', '-i', bad]);
    expect(f.status).toBe(125);
    expect(f.stderr).toMatch(/does not contain a tag/);
    expect(a.pm(['load', '-i', bad]).status).toBe(125);
  }, T);

  it('names oci-archive images from ref.name like podman, and leaves them unnamed without it', () => {
    const cases: [string, string | undefined][] = [
      ['oci-full.tar', 'quay.io/x/y:2'],
      ['oci-short.tar', 'myname'],
      ['oci-tagonly.tar', 'latest'],
      ['oci-none.tar', undefined],
    ];
    for (const [i, [file, ref]] of cases.entries()) {
      const archive = path.join(work, file);
      toOciArchive(img, archive, ref);
      // Short directory names: podman refuses a runroot longer than 50 characters.
      const a = new Twin(path.join(work, `o${i}a`));
      const b = new Twin(path.join(work, `o${i}b`));
      const c = a.carrier(['load', '-i', archive]);
      const p = b.pm(['load', '-i', archive]);
      expect({ file, status: c.status, stderr: c.stderr }).toMatchObject({ status: 0 });
      expect({ file, status: p.status, stderr: p.stderr }).toMatchObject({ status: 0 });
      expect(loaded(c.stdout)).toEqual(loaded(p.stdout));
      expect(a.records()[0]!.names).toEqual(b.records()[0]!.names);
      expect(a.records()[0]!.digest).toBe(b.records()[0]!.digest);
    }
  }, T);
});

describe('carrier images / inspect / tag / untag / exists / rmi against podman', () => {
  let a: Twin;
  let b: Twin;
  /** The same command on both twins: same exit code, same stdout, same stderr (modulo the store paths). */
  const both = (cargs: string[], pargs: string[] = cargs): { c: Result; p: Result } => {
    const c = a.carrier(cargs);
    const p = b.pm(pargs);
    const norm = (s: string, t: Twin): string => s.replaceAll(t.podman.root, 'ROOT').replaceAll(t.podman.runroot, 'RUNROOT');
    expect({ status: c.status, stdout: norm(c.stdout, a), stderr: norm(c.stderr, a) }).toEqual({
      status: p.status,
      stdout: norm(p.stdout, b),
      stderr: norm(p.stderr, b),
    });
    return { c, p };
  };

  beforeAll(() => {
    a = new Twin(path.join(work, 'cmp-a'));
    b = new Twin(path.join(work, 'cmp-b'));
    expect(a.carrier(['load', '-q', '-i', multi]).status).toBe(0);
    expect(b.pm(['load', '-q', '-i', multi]).status).toBe(0);
    // A second, unnamed image with other layers.
    const other = buildTestImage(path.join(work, 'oci2'), { tag: 'v2', label: 'second' });
    const otherArchive = path.join(work, 'other.tar');
    toOciArchive(other, otherArchive);
    expect(a.carrier(['load', '-q', '-i', otherArchive]).status).toBe(0);
    expect(b.pm(['load', '-q', '-i', otherArchive]).status).toBe(0);
  }, T);

  it('images: table, --digests, --no-trunc, -q, -a, --format json', () => {
    const t = both(['images']);
    expect(t.c.stdout.split('\n')[0]).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
    expect(t.c.stdout).toMatch(/<none> +<none> +[0-9a-f]{12} /);
    both(['images', '--digests']);
    both(['images', '--no-trunc']);
    both(['images', '-q']);
    both(['images', '-q', '--no-trunc']);
    both(['images', '-a']);
    both(['image', 'ls'], ['image', 'ls']);
    both(['images', '--noheading']);
    both(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    both(['images', '--format', 'json']);
    // And Carrier's JSON equals podman's on the very same store.
    expect(a.carrier(['images', '--format', 'json']).stdout).toBe(a.pm(['images', '--format', 'json']).stdout);
  }, T);

  it('inspect / image inspect', () => {
    both(['image', 'inspect', 'foo:1']);
    both(['image', 'inspect', id.slice(0, 12), 'quay.io/x/y:2']);
    both(['inspect', 'alpine']);
    const untaggedId = a.records().find((r) => !r.names)!.id;
    both(['image', 'inspect', untaggedId]);
    const d = JSON.parse(a.carrier(['image', 'inspect', 'foo:1']).stdout) as { Id: string; RootFS: { Layers: string[] } }[];
    expect(d[0]!.Id).toBe(id);
    expect(d[0]!.RootFS.Layers).toEqual(img.diffIDs);
    // not found: what was found still printed, error on stderr, 125
    const nf = both(['image', 'inspect', 'foo:1', 'nope']);
    expect(nf.c.status).toBe(125);
    expect(nf.c.stderr).toBe('Error: inspecting object: nope: image not known\n');
    both(['inspect', 'nope']);
  }, T);

  it('image exists', () => {
    expect(both(['image', 'exists', 'foo:1']).c.status).toBe(0);
    expect(both(['image', 'exists', id.slice(0, 5)]).c.status).toBe(0);
    const r = both(['image', 'exists', 'nope']);
    expect(r.c.status).toBe(1);
    expect(r.c.stdout + r.c.stderr).toBe('');
  }, T);

  it('tag and untag', () => {
    both(['tag', 'foo:1', 'bar', 'reg.example:5000/team/app:7']);
    both(['images']);
    expect(a.records().find((r) => r.id === id)!.names).toEqual(b.records().find((r) => r.id === id)!.names);
    expect(both(['tag', 'nope', 'x']).c.status).toBe(125);
    both(['untag', 'foo:1', 'bar']);
    expect(both(['untag', 'foo:1', 'zz']).c.stderr).toBe('Error: localhost/zz:latest: tag not known\n');
    expect(both(['untag', 'nope']).c.status).toBe(125);
    both(['image', 'untag', 'foo:1', 'reg.example:5000/team/app:7']);
    both(['images']);
  }, T);

  it('rmi: by name untags only, by id with several names refuses, not found 1, in use 2, -f, -a', () => {
    both(['tag', 'foo:1', 'extra:1']);
    expect(both(['rmi', 'extra:1']).c.stdout).toBe('Untagged: localhost/extra:1\n');
    const byId = both(['rmi', id.slice(0, 12)]);
    expect(byId.c.status).toBe(125);
    expect(byId.c.stderr).toMatch(/by ID with more than one tag/);
    const nf = both(['rmi', 'nope']);
    expect(nf.c.status).toBe(1);
    expect(nf.c.stderr).toBe('Error: nope: image not known\n');
    // in use: a container made by podman on each store
    both(['untag', id.slice(0, 12)]);
    both(['tag', id.slice(0, 12), 'only:1']);
    expect(a.pm(['create', '--name', 'c1', 'only:1', 'true']).status).toBe(0);
    expect(b.pm(['create', '--name', 'c1', 'only:1', 'true']).status).toBe(0);
    const used = a.carrier(['rmi', 'only:1']);
    const usedP = b.pm(['rmi', 'only:1']);
    expect(used.status).toBe(2);
    expect(usedP.status).toBe(2);
    expect(used.stderr).toMatch(/^Error: image used by [0-9a-f]{64}: image is in use by a container/);
    expect(a.pm(['ps', '-a', '-q']).stdout.trim()).not.toBe('');
    expect(both(['rmi', '-f', 'only:1']).c.stdout).toBe(`Untagged: localhost/only:1\nDeleted: ${id}\n`);
    // Carrier removes the storage container (containers.json); podman's own container database (libpod's, outside
    // containers/storage) still lists it until `podman rm` — a known limit of a storage-only tool.
    const ctrs = JSON.parse(fs.readFileSync(path.join(a.podman.root, 'overlay-containers', 'containers.json'), 'utf8')) as unknown[];
    expect(ctrs).toEqual([]);
    expect(a.pm(['ps', '-a', '-q']).stdout.trim()).not.toBe('');
    a.pm(['rm', '-f', 'c1']);
    expect(b.pm(['ps', '-a', '-q']).stdout.trim()).toBe('');
    // a mix: one removed, one not known → both reported, exit 1
    expect(a.carrier(['tag', a.records()[0]!.id, 'gone']).status).toBe(0);
    expect(b.pm(['tag', b.records()[0]!.id, 'gone']).status).toBe(0);
    both(['rmi', 'gone', 'nope']);
    expect(a.carrier(['load', '-q', '-i', multi]).status).toBe(0);
    expect(b.pm(['load', '-q', '-i', multi]).status).toBe(0);
    const all = both(['rmi', '-a']);
    expect(all.c.stdout).toMatch(/Deleted: /);
    expect(a.records()).toEqual([]);
    both(['images']);
    expect(a.carrier(['rmi']).status).toBe(125);
    expect(b.pm(['rmi']).status).toBe(125);
  }, T);
});

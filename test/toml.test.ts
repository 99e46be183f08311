import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { CarrierError } from '../src/errors.js';
import { TomlDate } from 'smol-toml';
import { MAX_TOML_DEPTH, parseToml } from '../src/config-toml.js';

function expectTomlError(text: string, msg?: RegExp, line?: number): void {
  let caught: unknown;
  try {
    parseToml(text, 'test.toml');
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected an error for ${JSON.stringify(text)}`).toBeInstanceOf(CarrierError);
  const e = caught as CarrierError;
  expect(e.code).toBe('CARRIER_INVALID_CONFIG');
  expect(e.message).toMatch(/^test\.toml:\d+: /);
  if (msg) expect(e.message).toMatch(msg);
  if (line !== undefined) expect(e.message.startsWith(`test.toml:${line}: `)).toBe(true);
}

// The TOML grammar itself is smol-toml's to get right (it runs the toml-test suite); these cases pin down what
// Carrier relies on: how values map to JS, and that every malformed file is a CARRIER_INVALID_CONFIG naming the
// file and line, with the reason and without smol-toml's code excerpt.
describe('parseToml: values', () => {
  const cases: Array<[string, string, unknown]> = [
    ['dotted and quoted keys', 'a.b.c = 1\n"a.b" = 2\nsite."google.com" = true', { a: { b: { c: 1 } }, 'a.b': 2, site: { 'google.com': true } }],
    ['strings of every style', 's = "a\\tb"\nl = \'C:\\x\'\nm = """\nline1\nline2"""\nr = \'\'\'\nraw \\n\'\'\'', {
      s: 'a\tb', l: 'C:\\x', m: 'line1\nline2', r: 'raw \\n',
    }],
    ['integers are numbers', 'a = 42\nb = -5\nc = 0xff\nd = 1_000', { a: 42, b: -5, c: 255, d: 1000 }],
    ['integers beyond 2^53 are bigints', 'a = 9223372036854775807\nb = -9223372036854775808\nc = 9007199254740991', {
      a: 9223372036854775807n, b: -9223372036854775808n, c: 9007199254740991,
    }],
    ['floats and booleans', 'a = 3.14\nb = -inf\nc = true', { a: 3.14, b: -Infinity, c: true }],
    ['arrays and inline tables', 'a = [1, "x", [2]]\np = { x = 1, y.z = "w" }', { a: [1, 'x', [2]], p: { x: 1, y: { z: 'w' } } }],
    ['tables and arrays of tables', '[t]\nx = 1\n[[p]]\nn = 1\n[[p]]\nn = 2\n[t.u]\ny = 2', { t: { x: 1, u: { y: 2 } }, p: [{ n: 1 }, { n: 2 }] }],
    ['CRLF, BOM and comments', '\uFEFF# top\r\na = 1 # c\r\n[t]\r\nb = "#x"\r\n', { a: 1, t: { b: '#x' } }],
    ['empty', '', {}],
  ];
  it.each(cases)('%s', (_name, text, want) => {
    expect(parseToml(text)).toEqual(want);
  });

  it('dates and times are TomlDate values, which a string check refuses', () => {
    const v = parseToml('a = 1979-05-27T07:32:00Z\nb = 1979-05-27\nc = 07:32:00');
    for (const d of [v.a, v.b, v.c]) expect(d).toBeInstanceOf(TomlDate);
    expect((v.a as TomlDate).toISOString()).toBe('1979-05-27T07:32:00.000Z');
    expect((v.b as TomlDate).toISOString()).toBe('1979-05-27');
    expect(typeof v.a).not.toBe('string');
  });

  it('__proto__ and constructor are ordinary keys, tables have no prototype, and none is polluted', () => {
    const v = parseToml('__proto__.polluted = 1\n[a.__proto__]\nb = 2\n[constructor]\nx = 3');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).toBe(null);
    expect(Object.getPrototypeOf(v.a)).toBe(null);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(v.toString).toBeUndefined();
    expect(v).toEqual(JSON.parse('{"__proto__":{"polluted":1},"a":{"__proto__":{"b":2}},"constructor":{"x":3}}'));
  });
});

describe('parseToml: errors', () => {
  const cases: Array<[string, string, RegExp, number]> = [
    ['duplicate key', 'a = 1\na = 2', /redefine/, 2],
    ['duplicate key via quoting', 'a = 1\n"a" = 2', /redefine/, 2],
    ['duplicate table', '[a]\nx = 1\n[b]\n[a]', /redefine/, 4],
    ['table onto inline table', 'a = { b = 1 }\n[a]', /redefine/, 2],
    ['missing value', 'x = 1\na =', /invalid value/, 2],
    ['two values on a line', 'a = 1 b = 2', /end-of-line/, 1],
    ['unterminated string', '\n\ns = "abc', /unfinished string/, 3],
    ['bad escape', String.raw`s = "\q"`, /escape/, 1],
    ['control char in a comment', 'a = 1 # \u0000', /control character/, 1],
    ['leading zero', 'a = 01', /leading zero/, 1],
    ['unterminated array', 'a = [1, 2', /unfinished array|comma/, 1],
    ['unclosed header', '[a\nb = 1', /.+/, 1],
    ['bare CR', 'a = 1\rb = 2', /end-of-line/, 1],
  ];
  it.each(cases)('%s', (_name, text, msg, line) => {
    expectTomlError(text, msg, line);
  });

  it('names the file and line, and leaves out the code excerpt', () => {
    let caught: unknown;
    try {
      parseToml('[storage]\ndriver = "overlay"\n\n  graphroot = \n', '/etc/x/storage.conf');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CarrierError);
    expect((caught as CarrierError).message).toBe('/etc/x/storage.conf:4: invalid value');
    expect((caught as CarrierError).path).toBe('/etc/x/storage.conf');
  });

  it(`refuses arrays nested deeper than ${MAX_TOML_DEPTH} levels with CARRIER_INVALID_CONFIG`, () => {
    const n = MAX_TOML_DEPTH + 1;
    expectTomlError(`a = ${'['.repeat(n)}1${']'.repeat(n)}`, /nested/, 1);
    expectTomlError(`a = ${'{ b = '.repeat(n)}1${' }'.repeat(n)}`, /nested/, 1);
  });
});

describe('parseToml: realistic configuration files', () => {
  it('storage.conf', () => {
    const text = `
# This file is the configuration file for all tools
# that use the containers/storage library.
[storage]

# Default Storage Driver, Must be set for proper operation.
driver = "overlay"

# Temporary storage location
runroot = "/run/containers/storage"

# Primary Read/Write location of container storage
graphroot = "/var/lib/containers/storage"

# rootless_storage_path = "$HOME/.local/share/containers/storage"

[storage.options]
# Storage options to be passed to underlying storage drivers

# AdditionalImageStores is used to pass paths to additional Read/Only image stores
# Must be comma separated list.
additionalimagestores = [
  "/usr/lib/containers/storage",
]

pull_options = {enable_partial_images = "false", use_hard_links = "false", ostree_repos=""}

# remap-uids = 0:1668442479:65536

[storage.options.overlay]
#mount_program = "/usr/bin/fuse-overlayfs"
mountopt = "nodev,metacopy=on"
force_mask = "0000"

[storage.options.thinpool]
# autoextend_percent = "20"
`;
    expect(parseToml(text, 'storage.conf')).toEqual({
      storage: {
        driver: 'overlay',
        runroot: '/run/containers/storage',
        graphroot: '/var/lib/containers/storage',
        options: {
          additionalimagestores: ['/usr/lib/containers/storage'],
          pull_options: { enable_partial_images: 'false', use_hard_links: 'false', ostree_repos: '' },
          overlay: { mountopt: 'nodev,metacopy=on', force_mask: '0000' },
          thinpool: {},
        },
      },
    });
  });

  it('registries.conf (v2 with registry/mirror arrays of tables and aliases)', () => {
    const text = `
unqualified-search-registries = ["registry.fedoraproject.org", "quay.io", "docker.io"]
short-name-mode = "enforcing"

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
pull-from-mirror = "digest-only"

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.gcr.io"

[aliases]
  # centos
  "centos" = "quay.io/centos/centos"
  "podman" = "quay.io/podman/stable"
`;
    expect(parseToml(text, 'registries.conf')).toEqual({
      'unqualified-search-registries': ['registry.fedoraproject.org', 'quay.io', 'docker.io'],
      'short-name-mode': 'enforcing',
      registry: [
        {
          prefix: 'example.com/foo',
          insecure: false,
          blocked: false,
          location: 'internal-registry-for-example.com/bar',
          mirror: [
            { location: 'example-mirror-0.local/mirror-for-foo' },
            { location: 'example-mirror-1.local/mirrors/foo', insecure: true, 'pull-from-mirror': 'digest-only' },
          ],
        },
        { location: 'docker.io', mirror: [{ location: 'mirror.gcr.io' }] },
      ],
      aliases: { centos: 'quay.io/centos/centos', podman: 'quay.io/podman/stable' },
    });
  });

  it('registries.conf v1 style', () => {
    const text = '[registries.search]\nregistries = [\'docker.io\', "quay.io"]\n\n[registries.insecure]\nregistries = []\n\n[registries.block]\nregistries = []\n';
    expect(parseToml(text)).toEqual({
      registries: { search: { registries: ['docker.io', 'quay.io'] }, insecure: { registries: [] }, block: { registries: [] } },
    });
  });

  it('duplicate alias across lines is an error', () => {
    expectTomlError('[aliases]\n"centos" = "a"\ncentos = "b"\n', /redefine/, 3);
  });

  // The system files shipped by Debian's containers-common, when present on this machine.
  for (const f of [
    '/usr/share/containers/storage.conf',
    '/etc/containers/registries.conf',
    '/etc/containers/registries.conf.d/shortnames.conf',
    '/usr/share/containers/containers.conf',
  ]) {
    it.skipIf(!existsSync(f))(`parses ${f}`, () => {
      const v = parseToml(readFileSync(f, 'utf8'), f);
      expect(typeof v).toBe('object');
      if (f.endsWith('storage.conf')) expect((v.storage as Record<string, unknown>).driver).toBe('overlay');
      if (f.endsWith('shortnames.conf')) expect((v.aliases as Record<string, unknown>).centos).toBe('quay.io/centos/centos');
    });
  }
});

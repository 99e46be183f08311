import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { CarrierError } from '../src/errors.js';
import { parseToml } from '../src/toml.js';

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

describe('parseToml: values', () => {
  const cases: Array<[string, string, unknown]> = [
    ['bare key', 'a = 1', { a: 1 }],
    ['dash/underscore keys', 'a-b_c = 1\n1234 = 2', { 'a-b_c': 1, '1234': 2 }],
    ['quoted keys', '"a.b" = 1\n\'c d\' = 2\n"" = 3', { 'a.b': 1, 'c d': 2, '': 3 }],
    ['dotted keys', 'a.b.c = 1\na.b.d = 2\na . e = 3', { a: { b: { c: 1, d: 2 }, e: 3 } }],
    ['quoted dotted', 'site."google.com" = true', { site: { 'google.com': true } }],
    ['basic string escapes', String.raw`s = "a\tb\nc\"d\\e\u00e9\U0001F600\b\f\r"`, { s: 'a\tb\nc"d\\eé😀\b\f\r' }],
    ['literal string', String.raw`s = 'C:\Users\x'`, { s: 'C:\\Users\\x' }],
    ['multi-line basic', 's = """\nline1\nline2"""', { s: 'line1\nline2' }],
    ['multi-line basic CRLF', 's = """\r\nline1\r\nline2"""', { s: 'line1\nline2' }],
    ['line-ending backslash', 's = """\\\n   The quick \\\n\n   brown"""', { s: 'The quick brown' }],
    ['line-ending backslash with trailing ws', 's = """a \\   \n   b"""', { s: 'a b' }],
    ['quotes before closing', 's = """He said ""hi"""""', { s: 'He said ""hi""' }],
    ['multi-line literal', "s = '''\nraw \\n text\n'''", { s: 'raw \\n text\n' }],
    ['multi-line literal quotes', "s = ''''that''''", { s: "'that'" }],
    ['integers', 'a = 42\nb = +17\nc = -5\nd = 0\ne = 1_000\nf = -0', { a: 42, b: 17, c: -5, d: 0, e: 1000, f: 0 }],
    ['hex/oct/bin', 'a = 0xDEAD_beef\nb = 0o755\nc = 0b1101', { a: 0xdeadbeef, b: 0o755, c: 13 }],
    ['big integers', 'a = 9223372036854775807\nb = -9223372036854775808', { a: 9223372036854775807n, b: -9223372036854775808n }],
    ['floats', 'a = 3.14\nb = -0.01\nc = 5e+22\nd = 1e06\ne = -2E-2\nf = 6.626e-34\ng = 224_617.445_991', {
      a: 3.14, b: -0.01, c: 5e22, d: 1e6, e: -0.02, f: 6.626e-34, g: 224617.445991,
    }],
    ['inf', 'a = inf\nb = +inf\nc = -inf', { a: Infinity, b: Infinity, c: -Infinity }],
    ['booleans', 'a = true\nb = false', { a: true, b: false }],
    ['dates as strings', 'a = 1979-05-27T07:32:00Z\nb = 1979-05-27 07:32:00.999-07:00\nc = 1979-05-27\nd = 07:32:00\ne = 1979-05-27T00:32:00.5', {
      a: '1979-05-27T07:32:00Z', b: '1979-05-27 07:32:00.999-07:00', c: '1979-05-27', d: '07:32:00', e: '1979-05-27T00:32:00.5',
    }],
    ['arrays', 'a = [1, 2, 3]\nb = ["x", \'y\']\nc = []\nd = [[1, 2], ["a"]]\ne = [1, "mixed", 2.5]', {
      a: [1, 2, 3], b: ['x', 'y'], c: [], d: [[1, 2], ['a']], e: [1, 'mixed', 2.5],
    }],
    ['multi-line array with comments and trailing comma', 'a = [\n  1, # one\n  # lone comment\n  2,\n]\n', { a: [1, 2] }],
    ['inline tables', 'p = { x = 1, y.z = "w" }\ne = {}\nn = { a = { b = [1] } }', {
      p: { x: 1, y: { z: 'w' } }, e: {}, n: { a: { b: [1] } },
    }],
    ['array of inline tables', 'a = [ { x = 1 }, { x = 2 } ]', { a: [{ x: 1 }, { x: 2 }] }],
    ['tables', '[a]\nx = 1\n[b.c]\ny = 2\n[ d . "e" ]\nz = 3', { a: { x: 1 }, b: { c: { y: 2 } }, d: { e: { z: 3 } } }],
    ['super-table after sub-table', '[x.y.z.w]\na = 1\n[x]\nb = 2', { x: { y: { z: { w: { a: 1 } } }, b: 2 } }],
    ['sub-table of dotted table', '[fruit]\napple.color = "red"\n[fruit.apple.texture]\nsmooth = true', {
      fruit: { apple: { color: 'red', texture: { smooth: true } } },
    }],
    ['array of tables', '[[p]]\nn = 1\n[[p]]\n[[p]]\nn = 3', { p: [{ n: 1 }, {}, { n: 3 }] }],
    ['nested array of tables', '[[r]]\nl = "a"\n[[r.m]]\nl = "a1"\n[[r.m]]\nl = "a2"\n[r.t]\nx = 1\n[[r]]\nl = "b"\n[[r.m]]\nl = "b1"', {
      r: [
        { l: 'a', m: [{ l: 'a1' }, { l: 'a2' }], t: { x: 1 } },
        { l: 'b', m: [{ l: 'b1' }] },
      ],
    }],
    ['comments everywhere', '# top\na = 1 # trailing\n[t] # header comment\n  b = "#not a comment" # c\n', { a: 1, t: { b: '#not a comment' } }],
    ['CRLF line endings', 'a = 1\r\n[t]\r\nb = 2\r\n', { a: 1, t: { b: 2 } }],
    ['BOM', '\uFEFFa = 1', { a: 1 }],
    ['empty', '', {}],
    ['whitespace only', '  \n\t\n# c\n', {}],
    ['__proto__ key stays data', '__proto__ = 1\n[constructor]\nx = 2', JSON.parse('{"__proto__":1,"constructor":{"x":2}}')],
  ];
  it.each(cases)('%s', (_name, text, want) => {
    expect(parseToml(text)).toEqual(want);
  });

  it('nan', () => {
    const v = parseToml('a = nan\nb = -nan');
    expect(Number.isNaN(v.a)).toBe(true);
    expect(Number.isNaN(v.b)).toBe(true);
  });

  it('does not pollute prototypes', () => {
    const v = parseToml('__proto__.polluted = 1\n[a.__proto__]\nb = 2');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
  });
});

describe('parseToml: errors', () => {
  const cases: Array<[string, string, RegExp?, number?]> = [
    ['duplicate key', 'a = 1\na = 2', /duplicate key a/, 2],
    ['duplicate key via quoting', 'a = 1\n"a" = 2', /duplicate key/, 2],
    ['duplicate table', '[a]\nx = 1\n[b]\n[a]', /duplicate table \[a\]/, 4],
    ['table redefines key', 'a = 1\n[a]', /already has a value/, 2],
    ['dotted then table', '[fruit]\napple.color = "red"\n[fruit.apple]', /dotted keys/, 3],
    ['dotted onto value', 'a = 1\na.b = 2', /already defined/],
    ['dotted into header table', '[a.b.c]\nz = 1\n[a]\nb.c.t = 2', /already defined/, 4],
    ['dotted into inline table', 'a = { b = 1 }\na.c = 2', /already defined/],
    ['table onto inline table', 'a = { b = 1 }\n[a]', /inline/],
    ['sub-table of inline table', 'a = { b = 1 }\n[a.c]', /immutable/],
    ['dotted within inline collides', 'a = { b = { c = 1 }, b.d = 2 }', /already defined/],
    ['inline duplicate', 'a = { b = 1, b = 2 }', /duplicate key/],
    ['array of tables onto static array', 'a = [1]\n[[a]]', /not an array of tables/],
    ['array of tables onto table', '[a]\n[[a]]', /not an array of tables/],
    ['table onto array of tables', '[[a]]\n[a]', /already has a value/],
    ['extend static array', 'a = [{ b = 1 }]\n[a.c]', /static array/],
    ['missing value', 'a =', /missing value/],
    ['missing =', 'a 1', /expected '='/],
    ['two values on a line', 'a = 1 b = 2', /end of line/],
    ['key without value at EOF', 'a', /expected '='/],
    ['bare key with bad char', 'a$ = 1', /expected '='/],
    ['empty bare key', '= 1', /expected a key/],
    ['unterminated string', 's = "abc', /unterminated/],
    ['newline in basic string', 's = "a\nb"', /newline/],
    ['newline in literal string', "s = 'a\nb'", /newline/],
    ['bad escape', String.raw`s = "\x41"`, /invalid escape/],
    ['bad unicode escape', String.raw`s = "\u12"`, /\\u escape/],
    ['surrogate escape', String.raw`s = "\uD800"`, /scalar/],
    ['out-of-range escape', String.raw`s = "\U00110000"`, /scalar/],
    ['control char in string', 's = "a\u0001b"', /control character/],
    ['control char in comment', 'a = 1 # \u0000', /control character/],
    ['unterminated multi-line', 's = """abc', /unterminated/],
    ['too many closing quotes', 's = """a""""""', /too many quotes|end of line/],
    ['multi-line key', '"""a""" = 1', /multi-line/],
    ['leading zero', 'a = 01', /invalid value/],
    ['double underscore', 'a = 1__0', /invalid value/],
    ['trailing underscore', 'a = 1_', /invalid value/],
    ['signed hex', 'a = +0x1', /invalid value/],
    ['bad hex digit', 'a = 0xG', /invalid value/],
    ['float without digit after dot', 'a = 1.', /invalid value/],
    ['float without leading digit', 'a = .5', /invalid value/],
    ['int64 overflow', 'a = 9223372036854775808', /64 bits/],
    ['bad boolean case', 'a = True', /invalid value/],
    ['bad date', 'a = 1979-02-30', /invalid date/],
    ['bad time', 'a = 1979-05-27T25:00:00Z', /invalid time/],
    ['unterminated array', 'a = [1, 2', /unterminated array|expected ','/],
    ['array missing comma', 'a = [1 2]', /expected ','/],
    ['array double comma', 'a = [1,,2]', /unexpected|missing value/],
    ['inline trailing comma', 'a = { b = 1, }', /trailing comma/],
    ['inline newline', 'a = { b = 1,\n c = 2 }', /newline/],
    ['unclosed header', '[a\nb = 1', /expected '\]'/],
    ['unclosed array header', '[[a]\nb = 1', /expected '\]\]'/],
    ['empty header', '[]', /expected a key/],
    ['text after header', '[a] b = 1', /end of line/],
    ['bare CR', 'a = 1\rb = 2', /end of line/],
  ];
  it.each(cases)('%s', (_name, text, msg, line) => {
    expectTomlError(text, msg, line);
  });

  it('uses the file name and the right line number', () => {
    expect(() => parseToml('[storage]\ndriver = "overlay"\n\n  graphroot = \n', '/etc/x/storage.conf')).toThrow(
      /^\/etc\/x\/storage\.conf:4: missing value/,
    );
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
    expectTomlError('[aliases]\n"centos" = "a"\ncentos = "b"\n', /duplicate key centos/, 3);
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

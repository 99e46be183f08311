import { describe, it, expect } from 'vitest';
import { CarrierError } from '../src/errors.js';
import {
  formatReference,
  idQuery,
  isFullId,
  isShortId,
  isShortName,
  isValidDigest,
  matchesIdPrefix,
  normalizeLocalName,
  normalizePullName,
  parseReference,
  resolveIdPrefix,
  type ImageReference,
} from '../src/reference.js';

const A64 = 'a'.repeat(64);
const B64 = 'b'.repeat(64);
const D256 = `sha256:${A64}`;
const D512 = `sha512:${'c'.repeat(128)}`;
const D384 = `sha384:${'d'.repeat(96)}`;

function expectInvalid(fn: () => unknown, msg?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CarrierError);
  expect((caught as CarrierError).code).toBe('CARRIER_INVALID_REFERENCE');
  if (msg) expect((caught as CarrierError).message).toMatch(msg);
}

describe('parseReference: valid', () => {
  const cases: Array<[string, ImageReference]> = [
    ['alpine', { domain: 'docker.io', path: 'library/alpine' }],
    ['alpine:3.19', { domain: 'docker.io', path: 'library/alpine', tag: '3.19' }],
    ['docker.io/alpine', { domain: 'docker.io', path: 'library/alpine' }],
    ['index.docker.io/alpine', { domain: 'docker.io', path: 'library/alpine' }],
    ['index.docker.io/foo/bar:1', { domain: 'docker.io', path: 'foo/bar', tag: '1' }],
    ['docker.io/library/alpine:latest', { domain: 'docker.io', path: 'library/alpine', tag: 'latest' }],
    ['user/repo', { domain: 'docker.io', path: 'user/repo' }],
    ['a/b/c', { domain: 'docker.io', path: 'a/b/c' }],
    ['quay.io/podman/stable:v4', { domain: 'quay.io', path: 'podman/stable', tag: 'v4' }],
    ['localhost/foo', { domain: 'localhost', path: 'foo' }],
    ['localhost:5000/foo/bar:t', { domain: 'localhost:5000', path: 'foo/bar', tag: 't' }],
    ['myregistry:5000/x', { domain: 'myregistry:5000', path: 'x' }],
    ['127.0.0.1/foo', { domain: '127.0.0.1', path: 'foo' }],
    ['[::1]:5000/foo', { domain: '[::1]:5000', path: 'foo' }],
    ['[2001:db8::1]/foo:1', { domain: '[2001:db8::1]', path: 'foo', tag: '1' }],
    ['FOO.com/bar', { domain: 'FOO.com', path: 'bar' }],
    ['Host/bar', { domain: 'Host', path: 'bar' }], // uppercase first component is a domain (current rule)
    ['localhost', { domain: 'docker.io', path: 'library/localhost' }],
    ['localhost:5000', { domain: 'docker.io', path: 'library/localhost', tag: '5000' }],
    ['foo.com', { domain: 'docker.io', path: 'library/foo.com' }],
    ['foo--bar', { domain: 'docker.io', path: 'library/foo--bar' }],
    ['foo__bar', { domain: 'docker.io', path: 'library/foo__bar' }],
    ['foo_bar.baz-qux', { domain: 'docker.io', path: 'library/foo_bar.baz-qux' }],
    ['foo:_x', { domain: 'docker.io', path: 'library/foo', tag: '_x' }],
    ['foo:TAG.1-rc', { domain: 'docker.io', path: 'library/foo', tag: 'TAG.1-rc' }],
    [`foo:${'t'.repeat(128)}`, { domain: 'docker.io', path: 'library/foo', tag: 't'.repeat(128) }],
    [`foo@${D256}`, { domain: 'docker.io', path: 'library/foo', digest: D256 }],
    [`foo:1@${D256}`, { domain: 'docker.io', path: 'library/foo', tag: '1', digest: D256 }],
    [`r.io/x@${D512}`, { domain: 'r.io', path: 'x', digest: D512 }],
    [`r.io/x@${D384}`, { domain: 'r.io', path: 'x', digest: D384 }],
    [`${'a'.repeat(63)}`, { domain: 'docker.io', path: `library/${'a'.repeat(63)}` }],
    [`sha256`, { domain: 'docker.io', path: 'library/sha256' }],
    [`app:${'f'.repeat(40)}`, { domain: 'docker.io', path: 'library/app', tag: 'f'.repeat(40) }], // git sha as tag
    [`localhost/${'a'.repeat(245)}`, { domain: 'localhost', path: 'a'.repeat(245) }], // exactly 255
  ];
  it.each(cases)('%s', (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it('defaultDomain replaces docker.io for names without a domain, without library/', () => {
    expect(parseReference('foo', { defaultDomain: 'registry.example.com' })).toEqual({
      domain: 'registry.example.com',
      path: 'foo',
    });
    expect(parseReference('quay.io/foo', { defaultDomain: 'registry.example.com' })).toEqual({ domain: 'quay.io', path: 'foo' });
    expect(parseReference('foo', { defaultDomain: 'index.docker.io' })).toEqual({ domain: 'docker.io', path: 'library/foo' });
  });
});

describe('parseReference: invalid', () => {
  const cases: Array<[string, RegExp?]> = [
    ['', /at least one component/],
    ['Foo', /lowercase/],
    ['foo/Bar', /lowercase/],
    ['quay.io/Foo/bar', /lowercase/],
    ['localhost/Host/bar', /lowercase/],
    [A64, /64-byte hexadecimal/],
    [`sha256:${A64}`, /digest or image id/],
    [`sha512:${'c'.repeat(128)}`, /digest or image id/],
    ['foo:', /invalid tag/],
    ['foo@', /digest/],
    ['/foo'],
    ['foo/'],
    ['foo//bar'],
    ['-foo'],
    ['foo-'],
    ['foo___bar'],
    ['foo.-bar'],
    ['foo..bar'],
    ['.foo'],
    ['foo:.x', /invalid tag/],
    ['foo:-x', /invalid tag/],
    [`foo:${'t'.repeat(129)}`, /invalid tag/],
    ['a:b:c'],
    ['foo:bar/baz', /invalid domain/],
    ['-bad.com/foo', /invalid domain/],
    ['bad-.com/foo', /invalid domain/],
    ['ba_d.com/foo', /invalid domain/],
    ['host:port/foo', /invalid domain/],
    ['[::1/foo'],
    ['foo bar'],
    ['foo\tbar'],
    ['föö'],
    ['foo@sha256:abc', /digest/],
    [`foo@sha256:${'A'.repeat(64)}`, /lowercase/],
    [`foo@sha256:${'a'.repeat(63)}`, /64 hex/],
    [`foo@sha512:${A64}`, /128 hex/],
    [`foo@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
    [`foo@${D256}@${D256}`],
    [`foo@${D256}:tag`],
    [`${'a'.repeat(250)}`, /255/], // docker.io/library/ + 250 > 255
    [`localhost/${'a'.repeat(246)}`, /255/],
  ];
  it.each(cases)('%s', (input, msg) => {
    expectInvalid(() => parseReference(input), msg);
  });

  it('rejects a default domain that is not a domain', () => {
    expectInvalid(() => parseReference('foo', { defaultDomain: 'bad domain' }));
  });
});

describe('formatReference', () => {
  it('round-trips', () => {
    for (const s of ['docker.io/library/alpine', 'quay.io/a/b:1', `r.io/x@${D256}`, `r.io/x:t@${D256}`]) {
      expect(formatReference(parseReference(s))).toBe(s);
    }
  });
});

describe('normalizePullName', () => {
  const cases: Array<[string, string]> = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3', 'docker.io/library/alpine:3'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['index.docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['user/repo', 'docker.io/user/repo:latest'],
    ['quay.io/a/b', 'quay.io/a/b:latest'],
    ['localhost:5000/x:1', 'localhost:5000/x:1'],
    [`foo@${D256}`, `docker.io/library/foo@${D256}`],
    [`quay.io/a/b:t@${D256}`, `quay.io/a/b@${D256}`], // podman strips the tag of tagged+digested references
  ];
  it.each(cases)('%s → %s', (input, want) => {
    expect(normalizePullName(input)).toBe(want);
  });
  it('uses defaultDomain', () => {
    expect(normalizePullName('foo', { defaultDomain: 'mirror.example' })).toBe('mirror.example/foo:latest');
  });
  it('rejects invalid names', () => {
    expectInvalid(() => normalizePullName('Foo'));
    expectInvalid(() => normalizePullName(A64));
  });
});

describe('normalizeLocalName (observed podman 4.3.1 behaviour)', () => {
  const cases: Array<[string, string]> = [
    ['foo', 'localhost/foo:latest'],
    ['foo:TAG_x', 'localhost/foo:TAG_x'],
    ['a/b/c', 'localhost/a/b/c:latest'],
    ['registry/foo', 'localhost/registry/foo:latest'],
    ['myhost/a/b', 'localhost/myhost/a/b:latest'],
    ['localhost', 'localhost/localhost:latest'],
    ['localhost:5000', 'localhost/localhost:5000'],
    ['foo.com', 'localhost/foo.com:latest'],
    ['localhost/loc', 'localhost/loc:latest'],
    ['localhost:5000/lp', 'localhost:5000/lp:latest'],
    ['docker.io/foo', 'docker.io/library/foo:latest'],
    ['docker.io/library/bar', 'docker.io/library/bar:latest'],
    ['index.docker.io/baz', 'docker.io/library/baz:latest'],
    ['quay.io/x/y:2', 'quay.io/x/y:2'],
    ['127.0.0.1/foo', '127.0.0.1/foo:latest'],
    ['FOO.com/bar', 'FOO.com/bar:latest'],
    ['foo--bar', 'localhost/foo--bar:latest'],
    ['foo__bar', 'localhost/foo__bar:latest'],
    [`foo:${'t'.repeat(128)}`, `localhost/foo:${'t'.repeat(128)}`],
    [`${'a'.repeat(245)}`, `localhost/${'a'.repeat(245)}:latest`],
    [`foo@${D256}`, `localhost/foo@${D256}`],
    [`foo:t@${D256}`, `localhost/foo@${D256}`],
  ];
  it.each(cases)('%s → %s', (input, want) => {
    expect(normalizeLocalName(input)).toBe(want);
  });

  const bad: Array<[string, RegExp?]> = [
    ['Foo', /lowercase/],
    ['Host/bar', /lowercase/], // podman: localhost/Host/bar → "repository name must be lowercase"
    [`${'a'.repeat(246)}`, /255/],
    [A64, /64-byte hexadecimal/], // podman 4.3.1 accepts this; Carrier refuses the id/name ambiguity
    [`sha256:${A64}`, /digest or image id/], // podman tag: "tag by digest not supported"
    ['sha256:abc', /digest or image id/],
    ['foo:'],
    ['foo___bar'],
    ['foo:bar/baz'],
    [''],
  ];
  it.each(bad)('rejects %s', (input, msg) => {
    expectInvalid(() => normalizeLocalName(input), msg);
  });
  it('reports the input as written', () => {
    expectInvalid(() => normalizeLocalName('Foo'), /"Foo"/);
  });
});

describe('isShortName', () => {
  it.each([
    ['foo', true],
    ['foo:1', true],
    ['a/b', true],
    ['Host/bar', true],
    ['localhost/foo', false],
    ['quay.io/foo', false],
    ['reg:5000/foo', false],
    [`foo@${D256}`, true],
  ])('%s → %s', (s, want) => {
    expect(isShortName(s)).toBe(want);
  });
});

describe('digests', () => {
  it.each([
    [D256, true],
    [D384, true],
    [D512, true],
    [`sha256:${'A'.repeat(64)}`, false],
    [`sha256:${A64}0`, false],
    [`sha512:${A64}`, false],
    [`md5:${'a'.repeat(32)}`, false],
    ['sha256:', false],
    [A64, false],
  ])('%s → %s', (d, want) => {
    expect(isValidDigest(d)).toBe(want);
  });
});

describe('ids', () => {
  const ID1 = 'ecad012e993ea019837374e8a3e061d882a642ce74d5957a7fc19a9b0befba92';
  const ID2 = '2b7d5739894a9ff4fe428534459c2ba507fa15e58eb03dcc3baeeafad952137d';
  const ID3 = 'ecad999999999999999999999999999999999999999999999999999999999999';

  it('isFullId / isShortId', () => {
    expect(isFullId(ID1)).toBe(true);
    expect(isFullId(`sha256:${ID1}`)).toBe(false);
    expect(isFullId(ID1.toUpperCase())).toBe(false);
    expect(isShortId('e')).toBe(true);
    expect(isShortId('ecad012e993e')).toBe(true);
    expect(isShortId(ID1)).toBe(false);
    expect(isShortId('')).toBe(false);
    expect(isShortId('ecadX')).toBe(false);
    expect(isShortId('ECAD')).toBe(false);
  });

  it('idQuery follows what podman accepts', () => {
    expect(idQuery(ID1)).toBe(ID1);
    expect(idQuery(`sha256:${ID1}`)).toBe(ID1);
    expect(idQuery('eca')).toBe('eca');
    expect(idQuery('e')).toBe('e');
    expect(idQuery('sha256:ecad012e993e')).toBeUndefined(); // podman: "no 64-byte hexadecimal value"
    expect(idQuery(ID1.toUpperCase())).toBeUndefined();
    expect(idQuery('')).toBeUndefined();
    expect(idQuery('alpine')).toBeUndefined();
    expect(idQuery(`${ID1}0`)).toBeUndefined();
  });

  it('matchesIdPrefix', () => {
    expect(matchesIdPrefix(ID1, ID1)).toBe(true);
    expect(matchesIdPrefix(ID1, `sha256:${ID1}`)).toBe(true);
    expect(matchesIdPrefix(`sha256:${ID1}`, 'ecad')).toBe(true);
    expect(matchesIdPrefix(ID1, 'e')).toBe(true);
    expect(matchesIdPrefix(ID1, '2b')).toBe(false);
    expect(matchesIdPrefix(ID1, 'sha256:ecad')).toBe(false);
    expect(matchesIdPrefix(ID1, '')).toBe(false);
    expect(matchesIdPrefix('not-an-id', 'no')).toBe(false);
  });

  it('resolveIdPrefix', () => {
    const ids = [ID1, ID2, ID3];
    expect(resolveIdPrefix(ids, '2')).toEqual({ kind: 'unique', id: ID2 });
    expect(resolveIdPrefix(ids, 'ecad0')).toEqual({ kind: 'unique', id: ID1 });
    expect(resolveIdPrefix(ids, 'ecad')).toEqual({ kind: 'ambiguous', ids: [ID1, ID3] });
    expect(resolveIdPrefix(ids, 'f')).toEqual({ kind: 'none' });
    expect(resolveIdPrefix(ids, `sha256:${ID3}`)).toEqual({ kind: 'unique', id: ID3 });
    expect(resolveIdPrefix(ids, 'sha256:ecad')).toEqual({ kind: 'none' });
    expect(resolveIdPrefix([`sha256:${B64}`], 'bbb')).toEqual({ kind: 'unique', id: `sha256:${B64}` });
  });
});

/** registries.conf (v2) parsing and the endpoint resolution the registry client uses. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { loadRegistriesConf, parseRegistriesConf, resolveRegistry, defaultRegistriesConf } from '../src/registries-conf.js';
import { parseChallenges } from '../src/registry/challenge.js';
import { parseRetryAfter } from '../src/registry/http.js';
import { CarrierError } from '../src/errors.js';
import { tempDir } from './support/fixtures.js';

const CONF = `
unqualified-search-registries = ["registry.example.com", "docker.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]
colour = "blue"

[aliases]
"myapp" = "registry.example.com/apps/myapp"

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000"
insecure = true
[[registry.mirror]]
location = "digests.local/hub"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"

[[registry]]
prefix = "docker.io/library/busybox"
location = "quay.io/mirrored/busybox"
insecure = true

[[registry]]
location = "blocked.example.com"
blocked = true

[[registry]]
prefix = "*.corp.example"
insecure = true
[[registry.mirror]]
location = "cache.corp.example:5000"

[[registry]]
prefix = "example.com:5000"
location = "other.example.com"
unknown-key = 1
`;

describe('parseRegistriesConf', () => {
  it('reads the v2 format and warns about unknown keys', () => {
    const c = parseRegistriesConf(CONF, 'reg.conf');
    expect(c.unqualifiedSearchRegistries).toEqual(['registry.example.com', 'docker.io']);
    expect(c.shortNameMode).toBe('enforcing');
    expect(c.aliases).toEqual({ myapp: 'registry.example.com/apps/myapp' });
    expect(c.registries.map((r) => r.prefix)).toEqual(['docker.io', 'docker.io/library/busybox', 'blocked.example.com', '*.corp.example', 'example.com:5000']);
    expect(c.registries[0]!.mirrors.map((m) => m.pullFromMirror)).toEqual(['all', 'digest-only', 'tag-only']);
    expect(c.warnings.join('\n')).toMatch(/unknown key "colour"/);
    expect(c.warnings.join('\n')).toMatch(/unknown key "unknown-key"/);
  });

  it('refuses bad values with CARRIER_INVALID_CONFIG', () => {
    for (const bad of [
      'short-name-mode = "sometimes"',
      'short-name-mode = 9223372036854775807',
      'short-name-mode = 1979-05-27',
      'unqualified-search-registries = "docker.io"',
      '[[registry]]\nprefix = "example.com"',
      '[[registry]]\nlocation = "a.com"\ninsecure = "yes"',
      '[[registry]]\nlocation = "a.com"\n[[registry]]\nlocation = "a.com"',
      '[[registry]]\nprefix = "foo.*.com"\nlocation = "a.com"',
      '[[registry]]\nlocation = "a.com"\n[[registry.mirror]]\ninsecure = true',
      '[[registry]]\nlocation = "a.com"\n[[registry.mirror]]\nlocation = "b.com"\npull-from-mirror = "never"',
      '[[registry]]\nlocation = "https://a.com"',
      '[aliases]\nx = "not a//ref"',
    ]) {
      expect(() => parseRegistriesConf(bad), bad).toThrow(CarrierError);
      try {
        parseRegistriesConf(bad);
      } catch (err) {
        expect((err as CarrierError).code).toBe('CARRIER_INVALID_CONFIG');
      }
    }
  });

  it('is read only from the file given or CONTAINERS_REGISTRIES_CONF', async () => {
    expect(await loadRegistriesConf({ env: {} })).toEqual(defaultRegistriesConf());
    const dir = tempDir('regconf');
    const f = path.join(dir, 'registries.conf');
    fs.writeFileSync(f, 'unqualified-search-registries = ["quay.io"]\n');
    expect((await loadRegistriesConf({ env: { CONTAINERS_REGISTRIES_CONF: f } })).unqualifiedSearchRegistries).toEqual(['quay.io']);
    expect((await loadRegistriesConf({ file: f, env: {} })).file).toBe(f);
    await expect(loadRegistriesConf({ file: path.join(dir, 'missing.conf') })).rejects.toThrow(/cannot read/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('resolveRegistry', () => {
  const c = parseRegistriesConf(CONF);
  const locs = (ref: string): string[] => resolveRegistry(c, ref).endpoints.map((e) => `${e.mirror ? 'M ' : ''}${e.location}${e.insecure ? ' (insecure)' : ''}`);

  it('puts matching mirrors first, filtered by pull-from-mirror', () => {
    expect(locs('docker.io/library/alpine:3')).toEqual(['M mirror.local:5000/library/alpine (insecure)', 'M tags.local/library/alpine', 'docker.io/library/alpine']);
    expect(locs(`docker.io/library/alpine@sha256:${'a'.repeat(64)}`)).toEqual([
      'M mirror.local:5000/library/alpine (insecure)',
      'M digests.local/hub/library/alpine',
      'docker.io/library/alpine',
    ]);
  });

  it('uses the longest prefix and rewrites the location', () => {
    expect(locs('docker.io/library/busybox:latest')).toEqual(['quay.io/mirrored/busybox (insecure)']);
    const ep = resolveRegistry(c, 'docker.io/library/busybox').endpoints[0]!;
    expect(ep).toMatchObject({ registry: 'quay.io', repository: 'mirrored/busybox' });
    expect(locs('docker.io/library/busyboxes')).toEqual(['M mirror.local:5000/library/busyboxes (insecure)', 'M tags.local/library/busyboxes', 'docker.io/library/busyboxes']);
    expect(locs('example.com:5000/a/b')).toEqual(['other.example.com/a/b']);
    // A bare-host prefix does not match the same host with a port.
    expect(locs('blocked.example.com:443/x')).toEqual(['blocked.example.com:443/x']);
  });

  it('matches wildcard prefixes on subdomains only', () => {
    expect(locs('a.corp.example/team/app')).toEqual(['M cache.corp.example:5000/team/app', 'a.corp.example/team/app (insecure)']);
    expect(locs('x.y.corp.example:5000/app')).toEqual(['M cache.corp.example:5000/app', 'x.y.corp.example:5000/app (insecure)']);
    expect(locs('corp.example/app')).toEqual(['corp.example/app']);
  });

  it('reports blocked registries and leaves unmatched references alone', () => {
    expect(resolveRegistry(c, 'blocked.example.com/x/y:1').blocked).toBe(true);
    expect(resolveRegistry(c, 'quay.io/x/y').blocked).toBe(false);
    expect(locs('quay.io/x/y')).toEqual(['quay.io/x/y']);
    expect(locs('localhost:5000/x')).toEqual(['localhost:5000/x']);
    expect(resolveRegistry(undefined, 'alpine').endpoints[0]).toMatchObject({ registry: 'docker.io', repository: 'library/alpine' });
  });
});

describe('challenges and Retry-After', () => {
  it('parses WWW-Authenticate with quoted commas and several challenges', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges(['Basic realm="Registry Realm"', 'Bearer realm="x", service=y'])).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'x', service: 'y' } },
    ]);
    expect(parseChallenges('Basic realm="a\\"b", Bearer realm="r"').map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(parseChallenges(undefined)).toEqual([]);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

// Which scopes each transport can have in policy.json (its ValidatePolicyConfigurationScope in containers/image).
import path from 'node:path';

/**
 * Why `scope` cannot be a scope of `transport`, or undefined when it can. Transports containers/image does not know
 * take any scope (it does not check them either).
 */
export function validateScope(transport: string, scope: string): string | undefined {
  switch (transport) {
    case 'docker':
      return undefined;
    case 'oci':
    case 'oci-archive':
    case 'dir':
    case 'sif':
      if (!scope.startsWith('/')) return 'must be an absolute path';
      if (scope === '/') return 'use the default scope "" instead of "/"';
      if (path.posix.normalize(scope).replace(/(.)\/$/, '$1') !== scope) return 'uses a non-canonical path';
      return undefined;
    case 'docker-archive':
    case 'tarball':
      return `${transport} does not support any scope except the default ""`;
    case 'docker-daemon':
      return /^[a-z0-9]+:[a-f0-9]+$/i.test(scope) ? 'a digest cannot be a namespace' : undefined;
    case 'containers-storage':
      return /^\[[^\]]+\]/.test(scope) ? undefined : 'must start with a store specification "[…]"';
    default:
      return undefined;
  }
}

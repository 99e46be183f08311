// The registry client's connection pools: one that verifies certificates against Node's authorities, one that does
// not (insecure registries, --tls-verify=false), and one per host that has certificates of its own (certs.d or
// --cert-dir, src/registry/certs.ts), which trusts them as well.
import { createSecureContext, type SecureContext } from 'node:tls';
import { hostTls, type HostTls } from './certs.js';
import { newAgent, type Agent } from './http.js';

const POOL = { keepAliveTimeout: 30_000, connections: 32 };

export class RegistryAgents {
  private readonly secure = newAgent(POOL);
  private readonly insecure = newAgent({ ...POOL, connect: { rejectUnauthorized: false } });
  private readonly perHost = new Map<string, Promise<Agent>>();

  constructor(private readonly certDir?: string) {}

  /** The pool for `host` (`name[:port]`): unverified when `insecure`, else one that trusts the host's certificates. */
  for(insecure: boolean, host: string): Agent | Promise<Agent> {
    if (insecure) return this.insecure;
    let p = this.perHost.get(host);
    if (!p) {
      p = hostTls(host, this.certDir).then((tls) => (tls ? newAgent({ ...POOL, connect: { secureContext: secureContextFor(tls) } }) : this.secure));
      this.perHost.set(host, p);
      p.catch(() => this.perHost.delete(host));
    }
    return p;
  }

  async close(): Promise<void> {
    const own = await Promise.all([...this.perHost.values()].map((p) => p.catch(() => undefined)));
    const all = new Set([this.secure, this.insecure, ...own.filter((a): a is Agent => a !== undefined)]);
    await Promise.all([...all].map((a) => a.close()));
  }
}

/**
 * One TLS context per host, made once: Node's authorities with the host's added, and its client certificate. Given as
 * `ca`, the authorities would replace Node's, and each connection would parse all ~140 of them again (~50-150 ms of
 * the main thread per connection); a context whose store starts as Node's root store copies the parsed roots instead.
 */
function secureContextFor(tls: HostTls): SecureContext {
  const context = createSecureContext(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {});
  const native = (context as unknown as { context: { addCACert(pem: string): void } }).context;
  for (const pem of tls.ca) native.addCACert(pem);
  return context;
}

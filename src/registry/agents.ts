// The registry client's connection pools: one that verifies certificates against Node's authorities, one that does
// not (insecure registries, --tls-verify=false), and one per host that has certificates of its own (certs.d or
// --cert-dir, src/registry/certs.ts), which trusts them as well.
import { hostTls } from './certs.js';
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
      p = hostTls(host, this.certDir).then((tls) =>
        tls ? newAgent({ ...POOL, connect: { ca: tls.ca, ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}) } }) : this.secure,
      );
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

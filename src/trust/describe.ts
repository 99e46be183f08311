/**
 * The policy as `podman image trust show` lists it: one row per requirement (the default's first, then each
 * transport's scopes in name order), with the GPG identities of signedBy keys and the lookaside registries.d gives
 * the scope.
 */
import { readFile } from 'node:fs/promises';
import { openpgpModule } from './gpg.js';
import { keyFiles } from './key-files.js';
import type { Policy, PolicyRequirement } from './policy.js';
import type { RegistriesD, RegistryNamespace } from './registries-d.js';

export interface TrustRow {
  /** `all` for the default, `repository` for docker scopes, else the transport's name. */
  transport: string;
  /** `* (default)` for the default, else the scope. */
  name: string;
  /** `default` for the default, else the scope: what the table shows. */
  repoName: string;
  /** `accept`, `reject`, `signed`, `sigstoreSigned`, or "" for requirement types podman does not name. */
  type: string;
  /** The e-mail addresses (else user ids) of signedBy keys; `N/A` for sigstoreSigned. */
  gpgId: string;
  /** The lookaside URL registries.d gives the scope. */
  signatureStore: string;
}

function typeName(req: PolicyRequirement): string {
  switch (req.type) {
    case 'insecureAcceptAnything':
      return 'accept';
    case 'reject':
      return 'reject';
    case 'signedBy':
      return 'signed';
    case 'sigstoreSigned':
      return 'sigstoreSigned';
    default:
      return '';
  }
}

async function keyIdentities(data: Buffer): Promise<string[]> {
  try {
    const text = data.toString('latin1');
    const keys = text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')
      ? await (await openpgpModule()).readKeys({ armoredKeys: data.toString('utf8') })
      : await (await openpgpModule()).readKeys({ binaryKeys: new Uint8Array(data) });
    return keys.flatMap((k) => k.getUserIDs().map((uid) => /<([^>]*)>/.exec(uid)?.[1] ?? uid));
  } catch {
    return [];
  }
}

async function gpgIds(req: PolicyRequirement): Promise<string> {
  if (req.type === 'sigstoreSigned') return 'N/A';
  if (req.type !== 'signedBy') return '';
  const ids: string[] = [];
  for (const f of keyFiles(req)) {
    const data = await readFile(f).catch(() => undefined);
    if (data !== undefined) ids.push(...(await keyIdentities(data)));
  }
  if (req.keyData !== undefined) ids.push(...(await keyIdentities(req.keyData)));
  return ids.join(', ');
}

/** The registries.d namespace for a scope: the scope, then its parents, then default-docker. */
function namespaceFor(scope: string, conf: RegistriesD): RegistryNamespace | undefined {
  for (let s = scope; s !== ''; s = s.includes('/') ? s.slice(0, s.lastIndexOf('/')) : '') {
    const ns = Object.hasOwn(conf.docker, s) ? conf.docker[s] : undefined;
    if (ns !== undefined) return ns;
  }
  return conf.defaultDocker;
}

export async function describePolicy(policy: Policy, registries: RegistriesD): Promise<TrustRow[]> {
  const rows: TrustRow[] = [];
  for (const req of policy.default) {
    rows.push({ transport: 'all', name: '* (default)', repoName: 'default', type: typeName(req), gpgId: await gpgIds(req), signatureStore: '' });
  }
  for (const transport of Object.keys(policy.transports).sort()) {
    const scopes = policy.transports[transport]!;
    for (const scope of Object.keys(scopes).sort()) {
      for (const req of scopes[scope]!) {
        const ns = namespaceFor(scope, registries);
        rows.push({
          transport: transport === 'docker' ? 'repository' : transport,
          name: scope,
          repoName: scope,
          type: typeName(req),
          gpgId: await gpgIds(req),
          signatureStore: ns?.lookaside ?? '',
        });
      }
    }
  }
  return rows;
}

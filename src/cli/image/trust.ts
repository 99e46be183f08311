// `carrier image trust show`: the signature policy in force, as `podman image trust show` lists it.
import { readFile } from 'node:fs/promises';
import { describePolicy, findPolicyFile, loadPolicy, loadRegistriesD } from '../../index.js';
import type { Context } from '../command.js';
import { goJson, renderTable } from '../format.js';

export async function trustShow(ctx: Context): Promise<number> {
  const policyPath = ctx.flags.string('policypath');
  const registryPath = ctx.flags.string('registrypath');
  const file = await findPolicyFile(policyPath === undefined ? {} : { signaturePolicy: policyPath });
  if (ctx.flags.bool('raw')) {
    if (file === undefined) {
      process.stderr.write('no signature policy file exists: every image is accepted\n');
      return 0;
    }
    process.stdout.write(await readFile(file, 'utf8'));
    return 0;
  }
  const source = await loadPolicy(policyPath === undefined ? {} : { signaturePolicy: policyPath });
  const policy = source.policy ?? { default: [{ type: 'insecureAcceptAnything' as const }], transports: {} };
  if (source.policy === undefined) process.stderr.write('no signature policy file exists: every image is accepted\n');
  const rows = await describePolicy(policy, await loadRegistriesD(registryPath === undefined ? {} : { registriesDir: registryPath }));
  if (ctx.flags.bool('json')) {
    const out = rows.map((r) => ({
      transport: r.transport,
      ...(r.name === '' ? {} : { name: r.name }),
      ...(r.repoName === '' ? {} : { repo_name: r.repoName }),
      ...(r.signatureStore === '' ? {} : { sigstore: r.signatureStore }),
      type: r.type,
      ...(r.gpgId === '' ? {} : { gpg_id: r.gpgId }),
    }));
    process.stdout.write(goJson(out, 2) + '\n');
    return 0;
  }
  const table = rows.map((r) => [r.transport, r.repoName, r.type, r.gpgId, r.signatureStore]);
  if (!ctx.flags.bool('noheading')) table.unshift(['TRANSPORT', 'NAME', 'TYPE', 'ID', 'STORE']);
  process.stdout.write(renderTable(table));
  return 0;
}

// `carrier info` (system info): where the store is, how layers get mounted here, and which runtime runs containers —
// the choices Carrier detected (once per process) on this machine.
import os from 'node:os';
import { findPolicyFile, findRegistriesDir, findRuntime, overlaySupport, version } from '../../index.js';
import { UsageError, type Context } from '../command.js';
import { goJson } from '../format.js';
import { openStore } from '../open-store.js';

export async function info(ctx: Context): Promise<number> {
  const format = ctx.flags.string('format');
  if (format !== undefined && format !== 'json') throw new UsageError(`unknown --format '${format}' (json)`);
  const store = await openStore(ctx.globals);
  try {
    const support = await overlaySupport().catch((err: Error) => ({ error: err.message }));
    const method =
      store.config.mountProgram !== undefined
        ? 'fuse (mount_program)'
        : 'error' in support
          ? 'unknown'
          : support.fsopen && support.lowerdirPlus
            ? 'fsopen (lowerdir+ per layer, up to 500 layers)'
            : support.fsopen
              ? 'fsopen'
              : support.fuseOverlayfs
                ? 'fuse-overlayfs (native overlay not permitted here)'
                : 'mount(2)';
    const runtime = await findRuntime().catch((err: Error) => ({ error: err.message }));
    const policyFile = await findPolicyFile();
    const report = {
      host: { kernel: os.release(), arch: process.arch, rootless: store.rootless, node: process.version, native: version },
      store: {
        graphRoot: store.graphroot,
        runRoot: store.runroot,
        driver: store.driverName,
        blobCache: store.config.blobCache,
        configFile: store.config.configFile ?? null,
        additionalImageStores: store.config.additionalImageStores,
        mountProgram: store.config.mountProgram ?? null,
        mountOptions: store.config.mountOpt ?? null,
        images: (await store.images()).length,
        containers: (await store.containers()).length,
        warnings: store.warnings,
      },
      overlay: { method, ...support },
      runtime,
      signaturePolicy: {
        policyFile: policyFile ?? 'none: every image is accepted (no ~/.config/containers/policy.json nor /etc/containers/policy.json)',
        registriesD: await findRegistriesDir(),
      },
    };
    process.stdout.write(format === 'json' ? goJson(report, 2) + '\n' : yaml(report, 0));
    return 0;
  } finally {
    await store.close();
  }
}

function yaml(value: unknown, indent: number): string {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out += `${pad}${k}:\n${yaml(v, indent + 2)}`;
    else if (Array.isArray(v)) out += v.length === 0 ? `${pad}${k}: []\n` : `${pad}${k}:\n${v.map((x) => `${pad}- ${String(x)}\n`).join('')}`;
    else out += `${pad}${k}: ${v === null || v === undefined ? '""' : String(v)}\n`;
  }
  return out;
}

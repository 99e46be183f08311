// `carrier info`: where the store is, how layers get mounted here, and which runtime runs containers — the choices
// Carrier detected (once per process) on this machine.
import os from 'node:os';
import { parseArgs, stringFlag, UsageError } from './args.js';
import { openStore } from './open-store.js';
import type { GlobalOptions } from './errors.js';
import { goJson } from './format.js';
import { overlaySupport } from '../drivers/mount.js';
import { findRuntime } from '../runtime/runtime.js';
import { version } from '../version.js';

export async function infoCommand(g: GlobalOptions, argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['--format', '-f']);
  if (args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write('Usage: carrier info [--format json]\n\nShow the store, the overlay mount method and the OCI runtime Carrier uses here.\n');
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError('info takes no arguments');
  const format = stringFlag(args, '--format') ?? stringFlag(args, '-f');
  const store = await openStore(g);
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
    const info = {
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
    };
    if (format === 'json') {
      process.stdout.write(goJson(info, 2) + '\n');
    } else if (format === undefined) {
      process.stdout.write(yaml(info, 0));
    } else {
      throw new UsageError(`unknown --format '${format}' (json)`);
    }
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

#!/usr/bin/env node
// The thin `carrier` CLI: parses arguments, calls the public API, renders results. All terminal output lives here.
import { CarrierError, version } from '../index.js';
import { layerCommand } from './layer.js';
import { UsageError } from './args.js';

const HELP = `Usage: carrier <command> [options]

Commands:
  layer apply [options] BLOB DIR     extract a compressed layer blob into the empty directory DIR
  layer assemble TARSPLIT DIR        rebuild a layer's original tar from its tar-split and extracted DIR
  version                            print versions

Run 'carrier <command> --help' for a command's options.
Exit codes: 0 success, 125 Carrier's own error (podman's convention).
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`carrier ${packageVersion()}\n${version}\n`);
      return 0;
    case 'layer':
      return layerCommand(rest);
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function packageVersion(): string {
  return process.env.npm_package_version ?? '0.1.0';
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message}\nSee 'carrier --help'.\n`);
    } else if (err instanceof CarrierError) {
      process.stderr.write(`Error: ${err.message}${err.path ? ` (at ${err.path})` : ''} [${err.code}]\n`);
    } else {
      process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 125;
  },
);

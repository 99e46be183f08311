// The flags of a pull, defined once: `carrier pull` takes them, and so do `run` and `create`, which pull a missing
// image the same way. One list gives the parser and the help its flags; one function maps them to PullOptions.
// Loads none of the library (a command's definition must not): PullOptions is a type only.
import type { PullOptions } from '../../index.js';
import { UsageError, type FlagDef, type Flags } from '../command.js';

/** `--signature-policy`: pull's, and load's, push's and copy's. */
export const signaturePolicyFlag: FlagDef = {
  name: 'signature-policy',
  type: 'string',
  value: 'FILE',
  help: 'the policy.json to enforce (default: ~/.config/containers/policy.json, else /etc/containers/policy.json, else accept)',
};

/** Every flag that says how to pull, in the order the help lists them (`--quiet` is each command's own). */
export const pullFlags: readonly FlagDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', help: 'the platform to choose from a multi-platform image (default: this machine)' },
  { name: 'arch', type: 'string', value: 'ARCH', help: 'the platform, one part at a time: the architecture' },
  { name: 'os', type: 'string', value: 'OS', help: 'the operating system' },
  { name: 'variant', type: 'string', value: 'VARIANT', help: 'the variant' },
  { name: 'creds', type: 'string', value: 'USER:PASS', help: 'credentials for the registry' },
  { name: 'authfile', type: 'string', value: 'FILE', help: 'auth.json to read (default: $REGISTRY_AUTH_FILE, containers and docker auth files)' },
  { name: 'tls-verify', type: 'bool', default: true, help: 'require https and a trusted certificate (--tls-verify=false allows plain http)' },
  { name: 'cert-dir', type: 'string', value: 'DIR', help: "certificates for the registry (*.crt, *.cert, *.key; default: the registry's certs.d directory)" },
  { name: 'timeout', type: 'string', value: 'DURATION', help: 'give up on the registry after this long (e.g. 90s, 5m; default: no deadline)' },
  {
    name: 'no-sync',
    type: 'bool',
    help: "do not flush layers to disk before recording them (podman's durability: faster, but a power loss soon after can leave a layer with files missing)",
  },
  {
    name: 'partial',
    type: 'string',
    value: 'auto|never',
    help: 'zstd:chunked layers: fetch only the files the store lacks when cheaper (auto, the default), or always whole (never)',
  },
  signaturePolicyFlag,
];

/**
 * The PullOptions the pull flags ask for (those the command line gave; the library's defaults for the rest). A flag
 * that cannot be read is a UsageError, raised before anything is pulled.
 */
export function pullOptionsOf(flags: Flags): PullOptions {
  const platform = platformFlag(flags);
  const creds = flags.string('creds');
  const authfile = flags.string('authfile');
  const certDir = flags.string('cert-dir');
  const timeout = flags.string('timeout');
  const signaturePolicy = flags.string('signature-policy');
  const partial = flags.string('partial');
  if (partial !== undefined && partial !== 'auto' && partial !== 'never') throw new UsageError('--partial must be auto or never');
  return {
    ...(platform !== undefined ? { platform } : {}),
    // podman spells it --tls-verify=false; left out, the registry's configuration decides.
    ...(flags.given('tls-verify') ? { tlsVerify: flags.bool('tls-verify') } : {}),
    ...(creds !== undefined ? { creds } : {}),
    ...(authfile !== undefined ? { authfile } : {}),
    ...(certDir !== undefined ? { certDir } : {}),
    ...(timeout !== undefined ? { timeout: parseDuration(timeout, '--timeout') } : {}),
    ...(flags.bool('no-sync') ? { sync: false } : {}),
    ...(partial !== undefined ? { partial } : {}),
    ...(signaturePolicy !== undefined ? { signaturePolicy } : {}),
  };
}

function platformFlag(flags: Flags): string | undefined {
  const whole = flags.string('platform');
  const os = flags.string('os');
  const arch = flags.string('arch');
  const variant = flags.string('variant');
  if (whole !== undefined) {
    if (os || arch || variant) throw new UsageError('--platform cannot be combined with --os, --arch or --variant');
    return whole;
  }
  if (!os && !arch && !variant) return undefined;
  const host = process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'amd64' : process.arch;
  return [os ?? 'linux', arch ?? host, ...(variant ? [variant] : [])].join('/');
}

/** A Go-style duration (`90s`, `5m`, `1h30m`, `500ms`) or plain seconds, in milliseconds. */
function parseDuration(text: string, flag: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new UsageError(`invalid argument "${text}" for "${flag}" flag: time: invalid duration "${text}"`);
  }
  const ms = parts.reduce((n, p) => n + Number(p[1]) * units[p[2]!]!, 0);
  if (!(ms > 0)) throw new UsageError(`invalid argument "${text}" for "${flag}" flag: must be more than zero`);
  return ms;
}

// The flags of the commands that talk to a registry, each defined once with the function that reads it: the registry
// access flags (pull, push, copy's per-side ones, run and create), and pull's whole set, which `run` and `create`
// take as they are because they pull a missing image the same way. Loads none of the library (a command's
// definition must not): the option types are types only.
import type { PullOptions } from '../../index.js';
import { UsageError, type FlagDef, type Flags } from '../command.js';

/** `--signature-policy`: pull's, and load's, push's and copy's. */
export const signaturePolicyFlag: FlagDef = {
  name: 'signature-policy',
  type: 'string',
  value: 'FILE',
  help: 'the policy.json to enforce (default: ~/.config/containers/policy.json, else /etc/containers/policy.json, else accept)',
};

/** `--creds`, `--authfile` and `--tls-verify`, or with a prefix (copy's `--src-creds`, …). */
export function registryFlags(prefix = ''): FlagDef[] {
  return [
    { name: `${prefix}creds`, type: 'string', value: 'USER:PASS', help: 'credentials for the registry' },
    { name: `${prefix}authfile`, type: 'string', value: 'FILE', help: 'auth.json to read (default: $REGISTRY_AUTH_FILE, containers and docker auth files)' },
    { name: `${prefix}tls-verify`, type: 'bool', default: true, help: `require https and a trusted certificate (--${prefix}tls-verify=false allows plain http)` },
  ];
}

/** The registry access the registryFlags(prefix) ask for; left out, a setting is the registry configuration's. */
export function registryAccessOf(flags: Flags, prefix = ''): Pick<PullOptions, 'creds' | 'authfile' | 'tlsVerify'> {
  const creds = flags.string(`${prefix}creds`);
  const authfile = flags.string(`${prefix}authfile`);
  return {
    // podman spells it --tls-verify=false; only a given flag overrides registries.conf's insecure setting.
    ...(flags.given(`${prefix}tls-verify`) ? { tlsVerify: flags.bool(`${prefix}tls-verify`) } : {}),
    ...(creds !== undefined ? { creds } : {}),
    ...(authfile !== undefined ? { authfile } : {}),
  };
}

/** Every flag that says how to pull, in the order the help lists them (`--quiet` is each command's own). */
export const pullFlags: readonly FlagDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', help: 'the platform to choose from a multi-platform image (default: this machine)' },
  { name: 'arch', type: 'string', value: 'ARCH', help: 'the platform, one part at a time: the architecture' },
  { name: 'os', type: 'string', value: 'OS', help: 'the operating system' },
  { name: 'variant', type: 'string', value: 'VARIANT', help: 'the variant' },
  ...registryFlags(),
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
  const certDir = flags.string('cert-dir');
  const timeout = flags.string('timeout');
  const signaturePolicy = flags.string('signature-policy');
  const partial = flags.string('partial');
  if (partial !== undefined && partial !== 'auto' && partial !== 'never') throw new UsageError('--partial must be auto or never');
  return {
    ...(platform !== undefined ? { platform } : {}),
    ...registryAccessOf(flags),
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

// `--change` for commit: Dockerfile instructions read the way podman 4.3 reads them (its GetImageConfig), so the same
// strings give the same image settings. Each instruction is `NAME value` (or `NAME=value`); names are
// case-insensitive. CMD and ENTRYPOINT take a JSON array or a shell form (`/bin/sh -c …`); VOLUME a JSON array or
// space-separated paths; ENV and LABEL `key=value` with one pair of surrounding quotes removed from each side.
import { constants } from 'node:os';
import { CarrierError } from '../errors.js';

/** The settings `--change` instructions ask for; only what was given is set. */
export interface ImageChanges {
  user?: string;
  /** `PORT/PROTO`, protocol tcp or udp. */
  exposedPorts: string[];
  /** `K=V`, in the order given. */
  env: string[];
  entrypoint?: string[];
  cmd?: string[];
  volumes: string[];
  workingDir?: string;
  labels: [string, string][];
  /** The signal's number, as a string (podman stores it so). */
  stopSignal?: string;
  onBuild: string[];
}

/** The instructions `--change` takes. */
export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

function invalid(change: string, why: string): CarrierError {
  return new CarrierError('CARRIER_INVALID_ARGUMENT', `invalid change "${change}" - ${why}`);
}

/** A JSON array of strings, or undefined when `value` is not one (Go's json.Unmarshal into []string). */
function jsonStrings(value: string): string[] | undefined {
  try {
    const v: unknown = JSON.parse(value);
    if (v === null) return [];
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  } catch {
    return undefined;
  }
  return undefined;
}

const unquote = (s: string): string => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s === '"' ? '' : s);

/** Go's filepath.Join of two paths: joined, cleaned, no trailing slash. */
function joinClean(a: string, b: string): string {
  const joined = [a, b].filter((p) => p !== '').join('/');
  if (joined === '') return '';
  const abs = joined.startsWith('/');
  const out: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(part);
  }
  const body = out.join('/');
  return abs ? `/${body}` : body || '.';
}

/** A signal name (`TERM`, `SIGTERM`, `-HUP`) or number, 1 to 64. */
function signalNumber(change: string, raw: string): number {
  const base = raw.replace(/^-/, '');
  let n: number | undefined;
  if (/^\d+$/.test(base)) n = Number(base);
  else {
    const name = base.toUpperCase().replace(/^SIG/, '');
    n = (constants.signals as Record<string, number>)[`SIG${name}`];
  }
  if (n === undefined) throw invalid(change, `STOPSIGNAL must be given a valid signal: invalid signal: ${raw}`);
  if (n < 1 || n > 64) throw invalid(change, 'STOPSIGNAL must be given a valid signal: valid signals are 1 through 64');
  return n;
}

/** Reads `--change` instructions as podman does; throws CARRIER_INVALID_ARGUMENT naming the one it cannot read. */
export function parseChanges(changes: readonly string[]): ImageChanges {
  const out: ImageChanges = { exposedPorts: [], env: [], volumes: [], labels: [], onBuild: [] };
  for (const change of changes) {
    let at = change.indexOf(' ');
    if (at < 0) at = change.indexOf('=');
    if (at < 0) throw invalid(change, 'must be formatted as KEY VALUE');
    const key = change.slice(0, at).trim().toUpperCase();
    const value = change.slice(at + 1).trim();
    switch (key) {
      case 'USER':
        if (value === '') throw invalid(change, 'must provide a value to USER');
        out.user = value;
        break;
      case 'EXPOSE': {
        const parts = value.split('/');
        if (parts.length > 2) throw invalid(change, 'EXPOSE port must be formatted as PORT[/PROTO]');
        if (!/^[+-]?\d+$/.test(parts[0]!)) throw invalid(change, 'EXPOSE port must be an integer');
        const port = Number(parts[0]);
        if (port > 65535 || port <= 0) throw invalid(change, 'EXPOSE port must be a valid port number');
        const proto = parts.length > 1 ? parts[1]!.toLowerCase() : 'tcp';
        if (proto !== 'tcp' && proto !== 'udp') throw invalid(change, 'EXPOSE protocol must be TCP or UDP');
        out.exposedPorts.push(`${port}/${proto}`);
        break;
      }
      case 'ENV': {
        const eq = value.indexOf('=');
        const k = eq < 0 ? value : value.slice(0, eq);
        if (k === '') throw invalid(change, 'ENV must have at least one argument');
        const v = eq < 0 ? '' : value.slice(eq + 1);
        out.env.push(`${unquote(k)}=${unquote(v)}`);
        break;
      }
      case 'ENTRYPOINT': {
        const json = jsonStrings(value);
        out.entrypoint = json ?? (value !== '' ? ['/bin/sh', '-c', value] : []);
        break;
      }
      case 'CMD': {
        const json = jsonStrings(value);
        out.cmd = json ?? ['/bin/sh', '-c', ...(value !== '' ? [value] : [])];
        break;
      }
      case 'VOLUME': {
        const paths = jsonStrings(value) ?? value.split(' ');
        if (paths.length === 0) throw invalid(change, 'must provide at least one argument to VOLUME');
        for (const p of paths) {
          if (p === '') throw invalid(change, 'VOLUME paths must not be empty');
          out.volumes.push(p);
        }
        break;
      }
      case 'WORKDIR':
        if (value === '') throw invalid(change, 'must provide a non-empty WORKDIR');
        out.workingDir = joinClean(out.workingDir ?? '', value);
        break;
      case 'LABEL': {
        const eq = value.indexOf('=');
        if (eq < 0) throw invalid(change, 'LABEL must be formatted key=value');
        const k = unquote(value.slice(0, eq));
        if (k === '') throw invalid(change, 'LABEL must have a non-empty key');
        out.labels.push([k, unquote(value.slice(eq + 1))]);
        break;
      }
      case 'STOPSIGNAL':
        out.stopSignal = String(signalNumber(change, value));
        break;
      case 'ONBUILD':
        if (value === '') throw invalid(change, 'ONBUILD must be given an argument');
        out.onBuild.push(value);
        break;
      default:
        throw invalid(change, `invalid instruction ${key}`);
    }
  }
  return out;
}

/**
 * Reading tar-split files (gzip of JSON lines, as containers/storage writes them) and an independent
 * JavaScript reassembly, to check the format itself and not only the engine's own assembleLayer.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export interface TarSplitEntry {
  type: 1 | 2;
  name?: string;
  name_raw?: string;
  size?: number;
  payload: string | null;
  position: number;
}

export function readTarSplit(file: string): TarSplitEntry[] {
  const text = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TarSplitEntry);
}

const T_HI = new Uint32Array(256);
const T_LO = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const bit = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (bit) hi = (hi ^ 0xd8000000) >>> 0;
  }
  T_HI[i] = hi;
  T_LO[i] = lo;
}

/** CRC-64/ISO as Go's hash/crc64 computes it (reflected, init and xorout all ones), 8 bytes big-endian. */
export function crc64iso(buf: Uint8Array): Buffer {
  let hi = 0xffffffff;
  let lo = 0xffffffff;
  for (let i = 0; i < buf.length; i++) {
    const idx = (lo ^ buf[i]!) & 0xff;
    const nlo = ((lo >>> 8) | (hi << 24)) >>> 0;
    const nhi = hi >>> 8;
    lo = (nlo ^ T_LO[idx]!) >>> 0;
    hi = (nhi ^ T_HI[idx]!) >>> 0;
  }
  const out = Buffer.alloc(8);
  out.writeUInt32BE(~hi >>> 0, 0);
  out.writeUInt32BE(~lo >>> 0, 4);
  return out;
}

/** Raw bytes of an entry's name. */
export function entryName(e: TarSplitEntry): Buffer {
  if (e.name_raw) return Buffer.from(e.name_raw, 'base64');
  return Buffer.from(e.name ?? '');
}

/** Rebuilds the tar the way podman does: segments verbatim, file contents read from diffDir by name. */
export function assembleInJs(entries: TarSplitEntry[], diffDir: string): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.type === 2) {
      parts.push(Buffer.from(e.payload ?? '', 'base64'));
    } else if ((e.size ?? 0) > 0) {
      const rel = entryName(e);
      const abs = Buffer.concat([Buffer.from(path.resolve(diffDir) + '/'), rel]);
      parts.push(fs.readFileSync(abs));
    }
  }
  return Buffer.concat(parts);
}

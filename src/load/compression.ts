import zlib from 'node:zlib';
import { Transform, type TransformCallback } from 'node:stream';
import { CarrierError } from '../errors.js';

export type ArchiveCompression = 'gzip' | 'zstd' | 'none';

/** Compression named by a blob's first bytes; 'xz'/'bzip2' are recognised to be refused clearly. */
export function sniffCompression(head: Buffer): ArchiveCompression | 'xz' | 'bzip2' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

type ZstdModule = {
  Decompress: new (ondata?: (data: Uint8Array, final?: boolean) => unknown) => { push(chunk: Uint8Array, final?: boolean): void };
};

/** Stream decoder of zstd frames: node:zlib's when this Node has one (≥ 22.15), else the fzstd package. */
async function zstdDecompressor(): Promise<Transform> {
  const native = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (typeof native === 'function') return native();
  let mod: ZstdModule;
  try {
    const name = 'fzstd';
    mod = (await import(name)) as ZstdModule;
  } catch (err) {
    throw new CarrierError(
      'CARRIER_BAD_COMPRESSION',
      'zstd-compressed archives need Node >= 22.15 or the fzstd package installed',
      { cause: err },
    );
  }
  let push: Transform['push'] | undefined;
  const decoder = new mod.Decompress((data) => void push?.(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback): void {
      try {
        decoder.push(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback): void {
      try {
        decoder.push(new Uint8Array(0), true);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  push = t.push.bind(t);
  return t;
}

/** A Transform decoding `kind`; errors it raises are turned into CARRIER_BAD_COMPRESSION by {@link compressionError}. */
export async function decompressor(kind: 'gzip' | 'zstd'): Promise<Transform> {
  // gunzip handles concatenated members (as pigz and `cat a.gz b.gz` write them).
  return kind === 'gzip' ? zlib.createGunzip() : zstdDecompressor();
}

export function compressionError(kind: string, err: unknown): unknown {
  if (err instanceof CarrierError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError' || e?.code === 'ABORT_ERR') return err;
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) && e.code !== 'EPIPE') return err; // I/O errors stay as they are
  return new CarrierError('CARRIER_BAD_COMPRESSION', `corrupt ${kind} data: ${e?.message ?? String(err)}`, { cause: err });
}

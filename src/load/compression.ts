import zlib from 'node:zlib';
import { Duplex } from 'node:stream';
import { CarrierError, fromNative } from '../errors.js';
import { native, type DecompressEvent, type NativeDecompressJob } from '../native.js';

export type ArchiveCompression = 'gzip' | 'zstd' | 'none';

/** Compression named by a blob's first bytes; 'xz'/'bzip2' are recognised to be refused clearly. */
export function sniffCompression(head: Buffer): ArchiveCompression | 'xz' | 'bzip2' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  // A zstd stream may open with a skippable frame (magic 0x184d2a50..5f), as zstd:chunked blobs do.
  if (head.length >= 4 && (head.readUInt32LE(0) === 0xfd2fb528 || (head.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50)) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/**
 * The addon's streaming zstd decoder (multi-frame) as a Duplex — a Transform's own _read would hide the readable
 * side's demand, which is what grants the native decoder credit. Compressed bytes are written, decoded on a native
 * thread, and read back in ~1 MiB chunks. Backpressure holds both ways (a write waits while the native input queue is full; the decoder
 * waits for credit while the reader is behind), so memory stays flat whatever the stream's length.
 */
class ZstdDecompressor extends Duplex {
  private readonly job: NativeDecompressJob;
  /** 'data' chunks pushed while the readable side was full; acknowledged when it asks for more. */
  private owed = 0;
  private pendingWrite: ((err?: Error | null) => void) | undefined;
  private pendingFinal: ((err?: Error | null) => void) | undefined;
  private settled = false;

  constructor() {
    super();
    this.job = new native.DecompressJob('zstd', (event) => this.onEvent(event));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.job.push(chunk)) callback();
    else this.pendingWrite = callback;
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.pendingFinal = callback;
    this.job.end();
  }

  override _read(): void {
    if (this.owed === 0) return;
    const n = this.owed;
    this.owed = 0;
    this.job.ack(n);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.settled) {
      this.settled = true;
      this.job.abort();
    }
    callback(err);
  }

  private onEvent(event: DecompressEvent): void {
    if (this.settled || this.destroyed) return;
    switch (event.type) {
      case 'drain': {
        const callback = this.pendingWrite;
        this.pendingWrite = undefined;
        callback?.();
        break;
      }
      case 'data':
        if (this.push(event.chunk)) this.job.ack(1);
        else this.owed++;
        break;
      case 'end':
        this.settled = true;
        this.push(null);
        this.pendingFinal?.();
        break;
      case 'error': {
        this.settled = true;
        const f = event.error;
        const corrupt = f.code === 'CARRIER_BAD_COMPRESSION' || f.code === 'CARRIER_TRUNCATED';
        this.destroy(corrupt ? new CarrierError('CARRIER_BAD_COMPRESSION', `corrupt zstd data: ${f.message}`) : fromNative(f));
        break;
      }
    }
  }
}

/**
 * A stream decoding `kind`: node:zlib for gzip (concatenated members included, as pigz and `cat a.gz b.gz` write
 * them), the addon's native decoder for zstd (multi-frame). Errors it raises are turned into CARRIER_BAD_COMPRESSION
 * by {@link compressionError}.
 */
export function decompressor(kind: 'gzip' | 'zstd'): Duplex {
  return kind === 'gzip' ? zlib.createGunzip() : new ZstdDecompressor();
}

export function compressionError(kind: string, err: unknown): unknown {
  if (err instanceof CarrierError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError' || e?.code === 'ABORT_ERR') return err;
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) && e.code !== 'EPIPE') return err; // I/O errors stay as they are
  return new CarrierError('CARRIER_BAD_COMPRESSION', `corrupt ${kind} data: ${e?.message ?? String(err)}`, { cause: err });
}

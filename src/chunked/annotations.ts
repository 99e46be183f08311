// The manifest annotations that locate a zstd:chunked layer's TOC and tar-split inside its blob, read strictly.
import { CarrierError } from '../errors.js';

export const TOC_CHECKSUM = 'io.github.containers.zstd-chunked.manifest-checksum';
export const TOC_POSITION = 'io.github.containers.zstd-chunked.manifest-position';
export const TAR_SPLIT_POSITION = 'io.github.containers.zstd-chunked.tarsplit-position';

/** Where a part sits in the blob: its compressed bytes are [offset, offset + length). */
export interface BlobPart {
  offset: number;
  length: number;
  uncompressedLength: number;
}

export interface ChunkedLocation {
  /** `sha256:<hex>` of the compressed TOC (the manifest-checksum annotation). */
  tocDigest: string;
  toc: BlobPart;
  /** Absent in the older form (skopeo 1.9, podman 4.3): such a layer cannot be verified from parts. */
  tarSplit?: BlobPart;
}

export function chunkedAnnotations(r: { tocDigest: string; manifestPosition: string; tarSplitPosition: string }): Record<string, string> {
  return { [TOC_CHECKSUM]: r.tocDigest, [TOC_POSITION]: r.manifestPosition, [TAR_SPLIT_POSITION]: r.tarSplitPosition };
}

const NUMBER = /^(0|[1-9][0-9]{0,15})$/;

function parts(value: string, n: number, what: string, digest: string): number[] {
  const fields = value.split(':');
  if (fields.length !== n || !fields.every((f) => NUMBER.test(f))) {
    throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${digest}: ${what} annotation '${value}' is not ${n} numbers separated by ':'`);
  }
  return fields.map(Number);
}

/** Part lengths a puller accepts (the TOC and tar-split are read into memory). */
export const MAX_PART_BYTES = 256 << 20;

function checkPart(p: BlobPart, blobSize: number, what: string, digest: string): void {
  if (!Number.isSafeInteger(p.offset + p.length) || p.offset < 8 || p.offset + p.length > blobSize) {
    throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${digest}: the ${what} at ${p.offset}+${p.length} is outside the ${blobSize}-byte blob`);
  }
  if (p.length === 0 || p.length > MAX_PART_BYTES || p.uncompressedLength > MAX_PART_BYTES) {
    throw new CarrierError('CARRIER_LIMIT_EXCEEDED', `layer ${digest}: the ${what} is ${p.length} bytes (${p.uncompressedLength} uncompressed), outside 1..${MAX_PART_BYTES}`);
  }
}

/**
 * The TOC and tar-split positions of a zstd:chunked layer, from its descriptor's annotations; undefined when the
 * layer is not zstd:chunked. Positions outside the blob, overlapping parts or a malformed checksum are refused.
 */
export function chunkedLocation(annotations: Record<string, string> | undefined, blobSize: number, digest: string): ChunkedLocation | undefined {
  const sum = annotations?.[TOC_CHECKSUM];
  const pos = annotations?.[TOC_POSITION];
  if (sum === undefined || pos === undefined) return undefined;
  if (!/^sha256:[a-f0-9]{64}$/.test(sum)) throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${digest}: manifest-checksum '${sum}' is not a sha256 digest`);
  const [offset, length, uncompressedLength, type] = parts(pos, 4, 'manifest-position', digest) as [number, number, number, number];
  if (type !== 1) throw new CarrierError('CARRIER_UNSUPPORTED', `layer ${digest}: zstd:chunked TOC type ${type} is not known (only 1)`);
  const toc = { offset, length, uncompressedLength };
  checkPart(toc, blobSize, 'TOC', digest);
  const out: ChunkedLocation = { tocDigest: sum, toc };
  const ts = annotations?.[TAR_SPLIT_POSITION];
  if (ts !== undefined) {
    const [o, l, u] = parts(ts, 3, 'tarsplit-position', digest) as [number, number, number];
    const tarSplit = { offset: o, length: l, uncompressedLength: u };
    checkPart(tarSplit, blobSize, 'tar-split', digest);
    if (o < toc.offset + toc.length && toc.offset < o + l) {
      throw new CarrierError('CARRIER_INVALID_MANIFEST', `layer ${digest}: the TOC and the tar-split overlap`);
    }
    out.tarSplit = tarSplit;
  }
  return out;
}

/** True when a layer descriptor's annotations say it is zstd:chunked with a tar-split (the form pullers can verify). */
export function isChunked(annotations: Record<string, string> | undefined): boolean {
  return annotations?.[TOC_CHECKSUM] !== undefined && annotations[TAR_SPLIT_POSITION] !== undefined;
}

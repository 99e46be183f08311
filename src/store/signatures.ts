// An image's signatures as containers/image keeps them in the store: the blobs (each in its signature.Blob form)
// concatenated into the big data item `signatures` and again into `signature-<manifest hex>`, their lengths in the
// image record's metadata JSON as `signature-sizes` and `signatures-sizes` (by manifest digest). podman push and
// skopeo copy from the store read them back from there; so does Carrier's store source.
import { CarrierError } from '../errors.js';

/** The big data key of one manifest's signatures (c/image's signatureBigDataKey). */
export function signatureKey(manifestDigest: string): string {
  return `signature-${manifestDigest.replace(/^[a-z0-9]+:/, '')}`;
}

/**
 * What a commit of `blobs` for the image's `manifestDigest` writes: its big data items (none when there is no
 * signature, as podman writes none) and the record's new metadata. podman replaces the metadata with exactly these
 * two fields (empty ones left out), so a re-pull without signatures leaves `{}`.
 */
export function signatureRecord(manifestDigest: string, blobs: readonly Buffer[]): { bigData: [string, Buffer][]; metadata: string } {
  if (blobs.length === 0) return { bigData: [], metadata: '{}' };
  const all = Buffer.concat(blobs);
  const sizes = blobs.map((b) => b.length);
  return {
    bigData: [
      ['signatures', all],
      [signatureKey(manifestDigest), all],
    ],
    metadata: JSON.stringify({ 'signature-sizes': sizes, 'signatures-sizes': { [manifestDigest]: sizes } }),
  };
}

/** The signature lengths an image record's metadata lists (for the image's own manifest), or none. */
export function storedSignatureSizes(metadata: string | undefined, id: string): number[] {
  if (metadata === undefined || metadata === '') return [];
  let doc: unknown;
  try {
    doc = JSON.parse(metadata);
  } catch (err) {
    throw new CarrierError('CARRIER_CORRUPT_STORE', `image ${id}: its metadata is not JSON`, { cause: err });
  }
  const sizes = (doc as { 'signature-sizes'?: unknown } | null)?.['signature-sizes'];
  if (sizes === undefined || sizes === null) return [];
  if (!Array.isArray(sizes) || sizes.some((n) => !Number.isInteger(n) || (n as number) < 0)) {
    throw new CarrierError('CARRIER_CORRUPT_STORE', `image ${id}: signature-sizes in its metadata is not a list of lengths`);
  }
  return sizes as number[];
}

/** Cuts the `signatures` big data into its blobs by the recorded lengths; every byte must be accounted for. */
export function splitSignatures(data: Buffer, sizes: readonly number[], id: string): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  for (const n of sizes) {
    if (offset + n > data.length) {
      throw new CarrierError('CARRIER_CORRUPT_STORE', `image ${id}: its signatures are ${data.length} bytes, the metadata lists at least ${offset + n}`);
    }
    out.push(data.subarray(offset, offset + n));
    offset += n;
  }
  if (offset !== data.length) throw new CarrierError('CARRIER_CORRUPT_STORE', `image ${id}: its signatures hold ${data.length - offset} bytes more than the metadata lists`);
  return out;
}

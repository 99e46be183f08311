/**
 * `podman load` as a library call: read a local image archive and record each of its images in a store.
 *
 * How podman 4.3.1 names what it loads (observed with `podman load -i FILE` on a private overlay store, names read
 * back from overlay-images/images.json and `podman images`):
 *
 *   docker-archive, RepoTags            foo:1                         → localhost/foo:1
 *                                       localhost/foo:1               → localhost/foo:1   (same name: printed twice,
 *                                                                                          recorded once)
 *                                       docker.io/library/alpine:latest → docker.io/library/alpine:latest
 *                                       docker.io/baz:3               → docker.io/library/baz:3
 *                                       quay.io/x/y:2                 → quay.io/x/y:2
 *                                       bar (no tag)                  → the whole load fails: "Invalid tag bar
 *                                                                        (docker.io/library/bar): does not contain a tag"
 *                                       RepoTags null / []            → no name; prints "Loaded image: sha256:<id>"
 *   oci-archive, ref.name annotation    quay.io/x/y:2                 → quay.io/x/y:2
 *                                       localhost/foo:1               → localhost/foo:1
 *                                       myname                        → localhost/myname:latest
 *                                       latest / 1.0 (a bare tag, as `skopeo copy … oci-archive:F:latest` writes)
 *                                                                     → localhost/latest:latest, localhost/1.0:latest
 *                                                                        (podman treats it as a name, not a tag)
 *                                       Foo (invalid)                 → the load fails ("repository name must be
 *                                                                        lowercase")
 *                                       no annotation                 → no name (4.3.1 does NOT name the image after
 *                                                                        the archive path); "Loaded image: sha256:<id>"
 *
 * So every name goes through the same normalisation `podman tag` uses (normalizeLocalName: no registry →
 * `localhost/`, no tag → `:latest`), with one docker-archive rule on top: a RepoTag must carry a tag.
 *
 * Name order: podman copies the image once per RepoTag, and each copy puts its name in front, so a fresh load of
 * RepoTags [a, b, c] leaves names [c, b, a] and names-history [a, b, c]. We hand the store the names reversed,
 * which (the store puts committed names first, and records history in reverse) reproduces exactly that.
 *
 * The record's `created` is the config's `created` (podman's records show the config time, not the load time).
 */
import { openImageArchive, type ArchiveFormat } from './transports/archive.js';
import { StoreDestination } from './transports/store-destination.js';
import { copyImage } from './copy/copy-image.js';
import type { CommitOptions, Store } from './store/store.js';
import { CarrierError } from './errors.js';
import { normalizeLocalName, parseReference, validateStoredNames } from './reference.js';

export interface LoadImageOptions {
  signal?: AbortSignal;
  /** Where a compressed archive is decompressed to (default the OS temp dir). */
  tmpDir?: string;
  /** Most bytes a compressed archive may decompress to in `tmpDir` (see OpenImageArchiveOptions). */
  maxDecompressedBytes?: number;
  /** Bytes each image's new layers may write to disk (see CommitOptions.maxImageBytes). */
  maxImageBytes?: number;
  onLayer?: CommitOptions['onLayer'];
  /** The policy.json to enforce (podman --signature-policy); default: the one in force. */
  signaturePolicy?: string;
}

export interface LoadedImage {
  /** Image id (hex of the config digest). */
  id: string;
  /** The names given to the image, normalised, in the archive's order, without duplicates. Empty when unnamed. */
  names: string[];
}

export interface LoadImageResult {
  format: ArchiveFormat;
  images: LoadedImage[];
}

/** The names `podman load` gives an image from an archive of `format`, in archive order (may repeat). */
export function loadedNames(format: ArchiveFormat, raw: readonly string[]): string[] {
  return raw.map((name) => {
    if (format === 'docker-archive') {
      let ref: ReturnType<typeof parseReference>;
      try {
        ref = parseReference(name);
      } catch (err) {
        throw new CarrierError('CARRIER_INVALID_ARCHIVE', `invalid RepoTag ${JSON.stringify(name)} in the archive: ${(err as Error).message}`);
      }
      if (ref.tag === undefined || ref.digest !== undefined) {
        throw new CarrierError('CARRIER_INVALID_ARCHIVE', `invalid RepoTag ${JSON.stringify(name)} in the archive: does not contain a tag`);
      }
    }
    try {
      return normalizeLocalName(name);
    } catch (err) {
      throw new CarrierError('CARRIER_INVALID_ARCHIVE', `invalid image name ${JSON.stringify(name)} in the archive: ${(err as Error).message}`);
    }
  });
}

/**
 * Loads every image of a docker-archive, oci-archive (plain, gzip or zstd) or OCI layout directory into `store`,
 * named as `podman load` names them. All names are validated before anything is written. The archive is always
 * closed (and its temp files removed), whether the load succeeds or not.
 */
export async function loadImage(store: Store, file: string, options: LoadImageOptions = {}): Promise<LoadImageResult> {
  const archive = await openImageArchive(file, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}),
    ...(options.maxDecompressedBytes !== undefined ? { maxDecompressedBytes: options.maxDecompressedBytes } : {}),
  });
  try {
    const planned = archive.images.map((image) => ({ image, names: [...new Set(loadedNames(archive.format, image.names))] }));
    for (const { names } of planned) validateStoredNames(names);
    const images: LoadedImage[] = [];
    const destination = new StoreDestination(store, {
      ...(options.onLayer ? { onCommitLayer: options.onLayer } : {}),
      ...(options.maxImageBytes !== undefined ? { maxImageBytes: options.maxImageBytes } : {}),
    });
    for (const { image, names } of planned) {
      // Reversed: see the module comment (podman's name order after a load).
      const result = await copyImage(image, destination, {
        names: [...names].reverse(),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.signaturePolicy !== undefined ? { signaturePolicy: options.signaturePolicy } : {}),
      });
      images.push({ id: result.id, names });
    }
    return { format: archive.format, images };
  } finally {
    await archive.close();
  }
}

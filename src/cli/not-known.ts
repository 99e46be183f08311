// podman's wording for a name that designates nothing: "X: image not known", exit code 125.
import { CarrierError, type ImageInfo, type Store } from '../index.js';
import { ExitError } from './errors.js';

/** The stored image `query` names, or podman's "QUERY: image not known" (exit 125). */
export async function knownImage(store: Store, query: string): Promise<ImageInfo> {
  const img = await store.image(query);
  if (!img) throw new ExitError(`${query}: image not known`, 125);
  return img;
}

/** Rethrows a not-found error about `query` as podman words it; any other error as it is. */
export function notKnown(err: unknown, what: string, query: string): never {
  if (query !== '' && err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && err.message.includes(query)) {
    throw new ExitError(`${query}: ${what} not known`, 125);
  }
  throw err;
}

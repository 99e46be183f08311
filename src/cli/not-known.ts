// podman's wording for a name that designates nothing: "X: image not known", exit code 125.
import { CarrierError } from '../index.js';
import { ExitError } from './errors.js';

/** Rethrows a not-found error about `query` as podman words it; any other error as it is. */
export function notKnown(err: unknown, what: string, query: string): never {
  if (query !== '' && err instanceof CarrierError && err.code === 'CARRIER_NOT_FOUND' && err.message.includes(query)) {
    throw new ExitError(`${query}: ${what} not known`, 125);
  }
  throw err;
}

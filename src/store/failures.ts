// The store's errors, worded once.
import { CarrierError } from '../errors.js';

export function notFound(what: string, query: string): CarrierError {
  return new CarrierError('CARRIER_NOT_FOUND', `${what} not known: ${query}`);
}

export function inUse(message: string): CarrierError {
  return new CarrierError('CARRIER_IN_USE', message);
}

export function readOnlyImage(id: string): CarrierError {
  return new CarrierError('EROFS', `image ${id.slice(0, 12)} is in a read-only additional image store`);
}

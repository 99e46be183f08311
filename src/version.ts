import { native } from './native.js';

/** The versions of this package's native core and the libraries it was built with. */
export const version: string = native.version;

export { applyLayer } from './layer/apply.js';
export type { ApplyLayerOptions, ApplyLayerLimits, AppliedLayer, Compression, SkippedEntry } from './layer/apply.js';
export { assembleLayer } from './layer/assemble.js';
export { CarrierError } from './errors.js';
export type { CarrierErrorCode, CarrierErrorDetails } from './errors.js';
export { version } from './version.js';

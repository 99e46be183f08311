// Reading archives moved to the transports (src/transports/archive.ts); these names stay for their callers.
export { openImageArchive } from '../transports/archive.js';
export type { ImageArchive, ArchiveFormat, OpenImageArchiveOptions } from '../transports/archive.js';
export type { ImageSource as SourceImage, LayerBlob as SourceLayer } from '../transports/types.js';

export { openImageArchive, dockerArchiveManifest } from './archive.js';
export type { SourceImage, SourceLayer, ImageArchive, ArchiveFormat, OpenImageArchiveOptions } from './archive.js';

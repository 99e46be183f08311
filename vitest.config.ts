// Vitest's settings beside the command line's (package.json "test"): TypeScript in .cts files too (src/addon-file.cts,
// shared by the library and the CommonJS bin), which Vite's transform leaves out by default.
import { defineConfig } from 'vitest/config';

export default defineConfig({ oxc: { include: /\.([mc]?ts|[jt]sx)$/ } });

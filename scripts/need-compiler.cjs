// Run by `npm install` (through node-gyp-build) only when no prebuilt addon loads on this machine, before node-gyp
// would build one from source: when the build cannot work, say so in one message instead of node-gyp's pages.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const onPath = (tool) =>
  (process.env.PATH || '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

const missing = ['g++', 'make', 'python3'].filter((tool) => !onPath(tool));
if (!['/usr/include/zstd.h', '/usr/local/include/zstd.h'].some((h) => fs.existsSync(h))) missing.push('zstd.h');
if (missing.length > 0) {
  process.stderr.write(
    `carrier-oci: no prebuilt addon loads here (${process.platform}-${process.arch}, Node ${process.version}; the ` +
      'prebuilds need Linux x64 or arm64 with glibc 2.34 or newer), and building it from source needs what is missing: ' +
      `${missing.join(', ')}. Install them (Debian/Ubuntu: apt-get install g++ make python3 libzstd-dev) and run ` +
      'npm install again.\n',
  );
  process.exit(1);
}

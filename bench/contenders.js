// The contenders: every way of getting a layer blob extracted (and, for the in-process ones, hashed) that the
// benchmark compares. Each `run(out, scratch)` extracts into the fresh empty directory `out`; `scratch` is a fresh
// empty directory for side files (the tar-split). Commands are timed from spawn to exit.
import fs from 'node:fs';
import path from 'node:path';
import { timeCommand } from './util.js';
import { pureNodeApply, nodeTarApply } from './purenode.js';

const TAR_X = ['--numeric-owner', '-xp'];

/** @returns {Array<{id,label,compression,kind,carrier?,floorPart?,noOutput?,run}>} */
export function makeContenders(fx, applyLayer) {
  const list = [];
  const js = (fn) => async (out, scratch) => {
    const t0 = process.hrtime.bigint();
    const result = await fn(out, scratch);
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result };
  };
  const cmd = (c, args, opts) => async () => ({ seconds: await timeCommand(c, args, opts) });

  list.push({
    id: 'none/gnu-tar', label: 'GNU tar -xf (plain tar)', compression: 'none', kind: 'cmd',
    floorPart: 'extract',
    run: async (out) => ({ seconds: await timeCommand('tar', [...TAR_X, '-f', fx.tar, '-C', out]) }),
  });
  if (applyLayer) {
    list.push({
      id: 'none/carrier', label: 'carrier applyLayer(path) (plain tar)', compression: 'none', kind: 'js', carrier: 'path',
      run: js((out) => applyLayer(fx.tar, out, { compression: 'none' })),
    });
  }
  list.push({
    id: 'none/pure-node', label: 'pure Node: tar-stream + fs (plain tar)', compression: 'none', kind: 'js',
    run: js((out) => pureNodeApply(fx.tar, out, 'none')),
  });

  for (const c of ['gzip', 'zstd']) {
    const blob = fx[c];
    if (applyLayer) {
      list.push({
        id: `${c}/carrier`, label: 'carrier applyLayer(path)', compression: c, kind: 'js', carrier: 'path',
        run: js((out) => applyLayer(blob, out)),
      });
      list.push({
        id: `${c}/carrier-tarsplit`, label: 'carrier applyLayer(path, {tarSplit})', compression: c, kind: 'js',
        carrier: 'tarsplit',
        run: js((out, scratch) => applyLayer(blob, out, { tarSplit: path.join(scratch, 'layer.tar-split.gz') })),
      });
      list.push({
        id: `${c}/carrier-stream`, label: 'carrier applyLayer(createReadStream)', compression: c, kind: 'js',
        carrier: 'stream',
        run: js((out) => applyLayer(fs.createReadStream(blob), out)),
      });
    }
    list.push({
      id: `${c}/gnu-tar`, label: c === 'gzip' ? 'GNU tar -xzf' : 'GNU tar --zstd -xf', compression: c, kind: 'cmd',
      run: async (out) => ({
        seconds: await timeCommand('tar', [...TAR_X, c === 'gzip' ? '-z' : '--zstd', '-f', blob, '-C', out]),
      }),
    });
    list.push({
      id: `${c}/pure-node`, label: `pure Node: ${c === 'gzip' ? 'zlib' : 'fzstd'} + tar-stream + fs`, compression: c,
      kind: 'js', pureNode: true,
      run: js((out) => pureNodeApply(blob, out, c)),
    });
    list.push({
      id: `${c}/node-tar`, label: `pure Node: ${c === 'gzip' ? 'zlib' : 'fzstd'} + node-tar`, compression: c,
      kind: 'js',
      run: js((out) => nodeTarApply(blob, out, c)),
    });
    list.push({
      id: `${c}/decompress`, label: `${c} -dc > /dev/null`, compression: c, kind: 'cmd', noOutput: true,
      floorPart: 'decompress',
      run: cmd(c, ['-dc', blob], { stdoutFile: '/dev/null' }),
    });
  }

  return list;
}

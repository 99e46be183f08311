// The contenders: every way of getting a layer blob extracted (and, for the JavaScript ones, hashed) that the
// benchmark compares. JavaScript contenders are a `job` for child.js (a fresh Node process per run,
// timed inside it); commands are timed from spawn to exit. `out` is a fresh empty directory, `scratch` a fresh
// empty directory for side files (the tar-split).
import path from 'node:path';
import { timeCommand } from '../../lib/util.js';

const TAR_X = ['--numeric-owner', '-xp'];

export function makeContenders(fx, carrierAvailable) {
  const list = [];
  const js = (mode, blob, compression, extra = {}) => (out, scratch) => ({
    mode,
    blob,
    compression,
    out,
    ...(extra.tarSplit ? { tarSplit: path.join(scratch, 'layer.tar-split.gz') } : {}),
  });

  list.push({
    id: 'none/gnu-tar', label: 'GNU tar -xf (plain tar)', compression: 'none', kind: 'cmd', floorPart: 'extract',
    run: (out) => timeCommand('tar', [...TAR_X, '-f', fx.tar, '-C', out]),
  });
  if (carrierAvailable) {
    list.push({
      id: 'none/carrier', label: 'carrier applyLayer(path) (plain tar)', compression: 'none', kind: 'js',
      carrier: 'path', job: js('carrier', fx.tar, 'none'),
    });
  }
  list.push({
    id: 'none/pure-node', label: 'pure Node: tar-stream + fs (plain tar)', compression: 'none', kind: 'js',
    job: js('pure-node', fx.tar, 'none'),
  });

  for (const c of ['gzip', 'zstd']) {
    const blob = fx[c];
    if (carrierAvailable) {
      list.push({
        id: `${c}/carrier`, label: 'carrier applyLayer(path)', compression: c, kind: 'js', carrier: 'path',
        job: js('carrier', blob, c),
      });
      list.push({
        id: `${c}/carrier-tarsplit`, label: 'carrier applyLayer(path, {tarSplit})', compression: c, kind: 'js',
        carrier: 'tarsplit', job: js('carrier', blob, c, { tarSplit: true }),
      });
      list.push({
        id: `${c}/carrier-stream`, label: 'carrier applyLayer(createReadStream)', compression: c, kind: 'js',
        carrier: 'stream', job: js('carrier-stream', blob, c),
      });
    }
    list.push({
      id: `${c}/gnu-tar`, label: c === 'gzip' ? 'GNU tar -xzf' : 'GNU tar --zstd -xf', compression: c, kind: 'cmd',
      run: (out) => timeCommand('tar', [...TAR_X, c === 'gzip' ? '-z' : '--zstd', '-f', blob, '-C', out]),
    });
    const dec = c === 'gzip' ? 'zlib' : 'fzstd';
    list.push({
      id: `${c}/pure-node`, label: `pure Node: ${dec} + tar-stream + fs`, compression: c, kind: 'js',
      job: js('pure-node', blob, c),
    });
    list.push({
      id: `${c}/node-tar`, label: `pure Node: ${dec} + node-tar`, compression: c, kind: 'js',
      job: js('node-tar', blob, c),
    });
    list.push({
      id: `${c}/decompress`, label: `${c} -dc > /dev/null`, compression: c, kind: 'cmd', noOutput: true,
      floorPart: 'decompress',
      run: () => timeCommand(c, ['-dc', blob], { stdoutFile: '/dev/null' }),
    });
  }
  return list;
}

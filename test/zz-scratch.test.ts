import { it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as F from './support/fixtures.js';
import { walkTree, compareTrees, hardlinkGroups } from './support/tree.js';
import { crc64iso } from './support/tarsplit.js';

it('scratch', async () => {
  expect(crc64iso(Buffer.from('123456789')).toString('hex')).toBe('b90956c775a41001');
  const w = F.tempDir('scratch');
  let t = Date.now();
  const lap = (l: string) => { console.log(l, Date.now() - t); t = Date.now(); };
  const src = F.buildSourceTree(path.join(w, 'src') && (fs.mkdirSync(path.join(w, 'src')), path.join(w, 'src')), { big: true });
  lap('build');
  F.gnuTar(src, path.join(w, 'gnu.tar'), 'gnu', src.topLevel.filter((n) => n !== 'big')); lap('gnu');
  F.gnuTar(src, path.join(w, 'posix.tar'), 'posix'); lap('posix');
  F.bsdTar(src, path.join(w, 'bsd.tar')); lap('bsd');
  await F.tarStreamFixture(path.join(w, 'ts.tar'), { big: true }); lap('ts');
  for (const n of ['gnu', 'posix', 'bsd', 'ts']) {
    const d = path.join(w, 'x-' + n); fs.mkdirSync(d);
    F.gnuExtract(path.join(w, n + '.tar'), d); lap('extract ' + n);
    const s = await F.tarStats(path.join(w, n + '.tar')); lap('stats ' + n);
    console.log(n, s.entries, s.uidset, s.gidset, fs.statSync(path.join(w, n + '.tar')).size);
    const tr = walkTree(d); lap('walk ' + n);
    if (n !== 'ts') {
      const srcTree = walkTree(src.root);
      const diffs = compareTrees(srcTree, tr, { ignore: (p) => n === 'gnu' && p.startsWith('big') });
      console.log(n, 'vs src', diffs.slice(0, 30), diffs.length);
      lap('cmp');
    }
    console.log(hardlinkGroups(tr));
    console.log(Object.keys([...tr.nodes.values()].filter(x => Object.keys(x.xattrs).length)));
  }
  console.log(w);
}, 300000);

// The order in which a commit records its layers complete, pinned without a power cut: a layer never reaches
// layers.json complete while its parent there is still incomplete. test/power-loss.test.ts found the state (a pull's
// upper layer completed in an earlier round than its slower parent): after a power cut the next open removes the
// incomplete parent and leaves a complete layer standing on nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, it, expect, afterEach } from 'vitest';
import { Store } from '../src/store/store.js';
import { buildTestImage } from './support/images.js';
import { commitOf, storeDirs } from './support/store.js';
import { prng } from './support/fixtures.js';
import { sleep } from './support/reliability.js';
import * as H from './support/hostile.js';

let work: string | undefined;
afterEach(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  work = undefined;
});

const o = { mtime: 1_700_000_000 };

interface RawLayer {
  id: string;
  parent?: string;
  flags?: { incomplete?: boolean };
}

describe('layer completion order', () => {
  it('keeps a layer incomplete in layers.json until its slower parent is recorded complete', async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-plorder-'));
    const img = buildTestImage(path.join(work, 'img'), {
      layers: [
        { compression: 'gzip', entries: [H.dir('base/', o), H.file('base/blob', prng(256 * 1024, 'plorder-base'), o)] },
        { compression: 'gzip', entries: [H.dir('top/', o), H.file('top/note', 'top\n', o)] },
      ],
    });
    const commit = commitOf(img, ['localhost/plorder:1']);
    // The parent's blob arrives only when the test lets it; the child's at once.
    const held = new PassThrough();
    commit.layers[0]!.open = async () => held;
    const events: string[] = [];
    const store = await Store.open(storeDirs(work));
    try {
      const committing = store.commitImage(commit, {
        onLayer: (e) => events.push(`${e.state} ${e.diffID === img.diffIDs[0] ? 'parent' : 'child'}`),
      });
      // The child is applied meanwhile; several completion rounds (100 ms apart) pass with the parent still arriving.
      for (let i = 0; i < 100 && !events.includes('applying child'); i++) await sleep(20);
      expect(events).toContain('applying child');
      await sleep(600);
      const layersFile = path.join(work, 'root', 'overlay-layers', 'layers.json');
      const midway = JSON.parse(fs.readFileSync(layersFile, 'utf8')) as RawLayer[];
      const byId = new Map(midway.map((l) => [l.id, l]));
      const standingOnIncomplete = midway.filter((l) => l.flags?.incomplete !== true && l.parent !== undefined && byId.get(l.parent)?.flags?.incomplete === true);
      expect(standingOnIncomplete.map((l) => l.id)).toEqual([]);
      expect(midway.every((l) => l.flags?.incomplete === true)).toBe(true);
      expect(events).not.toContain('applied child');

      Readable.from([img.layers[0]!.blob]).pipe(held);
      const result = await committing;
      expect(result.layers.map((l) => l.applied)).toEqual([true, true]);
      expect(events.filter((e) => e.startsWith('applied'))).toEqual(['applied parent', 'applied child']);
      const after = JSON.parse(fs.readFileSync(layersFile, 'utf8')) as RawLayer[];
      expect(after.filter((l) => l.flags?.incomplete === true)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('fails (does not wait forever) when the parent fails while its child waits to be completed, and leaves no layer', async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-plorder-'));
    const img = buildTestImage(path.join(work, 'img'), {
      layers: [
        { compression: 'gzip', entries: [H.dir('base/', o), H.file('base/blob', prng(64 * 1024, 'plorder-fail'), o)] },
        { compression: 'gzip', entries: [H.dir('top/', o), H.file('top/note', 'top\n', o)] },
      ],
    });
    const commit = commitOf(img, ['localhost/plorder:2']);
    const held = new PassThrough();
    commit.layers[0]!.open = async () => held;
    const events: string[] = [];
    const store = await Store.open(storeDirs(work));
    try {
      const committing = store.commitImage(commit, { onLayer: (e) => events.push(`${e.state} ${e.diffID === img.diffIDs[0] ? 'parent' : 'child'}`) });
      committing.catch(() => {});
      for (let i = 0; i < 100 && !events.includes('applying child'); i++) await sleep(20);
      await sleep(300); // the child's content is in place and waiting for its parent
      held.destroy(Object.assign(new Error('the registry went away'), { code: 'ECONNRESET' }));
      await expect(committing).rejects.toThrow(/registry went away|ECONNRESET/);
      const layers = JSON.parse(fs.readFileSync(path.join(work, 'root', 'overlay-layers', 'layers.json'), 'utf8')) as RawLayer[];
      expect(layers).toEqual([]);
      expect(events.filter((e) => e.startsWith('applied'))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

// feed() hands a layer stream to a native job: a job that refuses a push (it has failed, or it is an older addon that
// takes no chunk list) must reject feed's promise, never throw from the timer that flushes the held chunks.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { feed } from '../src/layer/apply.js';

function refusingJob(): { push(c: Uint8Array | Uint8Array[]): boolean; end(): void; ended: boolean } {
  return {
    ended: false,
    push() {
      throw new TypeError('push takes a Buffer');
    },
    end() {
      this.ended = true;
    },
  };
}

describe('feed', () => {
  it('rejects with the error of a push made from its flush timer', async () => {
    const job = refusingJob();
    const stream = new Readable({ read() {} });
    const fed = feed(stream, job, () => false, () => {});
    stream.push(Buffer.alloc(100, 1));
    stream.push(Buffer.alloc(100, 2));
    await expect(fed).rejects.toThrow('push takes a Buffer');
    expect(stream.destroyed).toBe(true);
  });

  it('rejects with the error of the last push at the end of the stream', async () => {
    const job = refusingJob();
    const fed = feed(Readable.from([Buffer.alloc(10, 3)]), job, () => false, () => {});
    await expect(fed).rejects.toThrow('push takes a Buffer');
    expect(job.ended).toBe(false);
  });

  it('hands every byte over in order and ends the job', async () => {
    const got: Buffer[] = [];
    const job = {
      ended: false,
      push(c: Uint8Array | Uint8Array[]) {
        for (const b of Array.isArray(c) ? c : [c]) got.push(Buffer.from(b));
        return true;
      },
      end() {
        this.ended = true;
      },
    };
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000 + i, i));
    let seen = 0;
    await feed(Readable.from(parts), job, () => false, () => {}, (n) => (seen = n));
    expect(Buffer.concat(got).equals(Buffer.concat(parts))).toBe(true);
    expect(job.ended).toBe(true);
    expect(seen).toBe(Buffer.concat(parts).length);
  });
});

// Inter-process locks on the same files containers/storage locks, so Carrier and podman can share one store.
//
// A StoreLock is a whole-file fcntl OFD lock (they conflict with the POSIX F_SETLKW locks c/storage takes), plus an
// in-process read/write mutex, because an OFD lock belongs to an open file description and two async operations of
// one process sharing the fd would otherwise both "hold" it. Writers put a fresh 64-byte last-writer token at offset
// 0 before unlocking (c/storage's layout: UnixNano u64 LE, counter u64 LE, pid u32 LE, 44 random bytes); holders
// compare it with the token they saw last to learn whether another process wrote since.
import { open, constants, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { native } from '../native.js';
import { CarrierError, fromNative, type NativeFailure } from '../errors.js';
import type { LockTouch } from './atomic.js';
import { makeDirs } from '../fs/batch.js';

export const TOKEN_SIZE = 64;
let tokenCounter = 0n;

/** A new last-writer token, different from every other one ever written by any process. */
export function newWriterToken(): Buffer {
  const token = Buffer.alloc(TOKEN_SIZE);
  const nowNs = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  token.writeBigUInt64LE(nowNs, 0);
  tokenCounter += 1n;
  token.writeBigUInt64LE(tokenCounter, 8);
  token.writeUInt32LE(process.pid, 16);
  // the random tail only tells apart writers that share a nanosecond, a pid and a count (hosts sharing the store):
  // Math.random is enough for that, and loading node:crypto for it cost a short command ~4 ms of CPU (issue 21)
  for (let i = 20; i < TOKEN_SIZE; i++) token[i] = Math.floor(Math.random() * 256);
  return token;
}

/** Async read/write mutex for the holders inside this process. */
class RwMutex {
  private readers = 0;
  private writer = false;
  private queue: { exclusive: boolean; wake: () => void }[] = [];

  /**
   * Readers enter whenever no writer is inside, even past queued writers: a reader may already hold the lock further
   * up its own call chain (a checkout holding the layers lock reads layers), and queueing it behind a writer that
   * waits for that same hold would deadlock. Writers wait for a moment without readers.
   */
  async acquire(exclusive: boolean): Promise<void> {
    if (this.canEnter(exclusive) && (!exclusive || this.queue.length === 0)) {
      this.enter(exclusive);
      return;
    }
    await new Promise<void>((wake) => this.queue.push({ exclusive, wake }));
  }

  /** Enters only if that needs no waiting. */
  tryAcquire(exclusive: boolean): boolean {
    if (!this.canEnter(exclusive) || (exclusive && this.queue.length > 0)) return false;
    this.enter(exclusive);
    return true;
  }

  release(exclusive: boolean): void {
    if (exclusive) this.writer = false;
    else this.readers--;
    while (this.queue.length > 0 && this.canEnter(this.queue[0]!.exclusive)) {
      const next = this.queue.shift()!;
      this.enter(next.exclusive);
      next.wake();
    }
    // readers queued behind a writer that still cannot enter may go in now
    if (!this.writer) {
      for (const waiter of this.queue.filter((w) => !w.exclusive)) {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        this.enter(false);
        waiter.wake();
      }
    }
  }

  private canEnter(exclusive: boolean): boolean {
    return exclusive ? !this.writer && this.readers === 0 : !this.writer;
  }

  private enter(exclusive: boolean): void {
    if (exclusive) this.writer = true;
    else this.readers++;
  }
}

function nativeFailure(f: unknown, path: string): CarrierError {
  const err = fromNative(f as NativeFailure);
  return new CarrierError(err.code, `${err.message} (lock ${path})`, {
    path,
    ...(err.errno !== undefined ? { errno: err.errno } : {}),
    ...(err.syscall !== undefined ? { syscall: err.syscall } : {}),
  });
}

export class StoreLock {
  private fh: FileHandle | undefined;
  private readonly mutex = new RwMutex();
  /** Holders inside this process; the file lock is taken by the first and dropped by the last. */
  private holders = 0;
  private heldExclusive = false;
  /** The token as this process last saw or wrote it; undefined until the first look. */
  private seen: Buffer | undefined;
  /** Native writes of a token through the lock's fd (see nextTouch), which close waits for. */
  private readonly inflight = new Set<Promise<void>>();

  private constructor(
    readonly path: string,
    readonly readOnly: boolean,
  ) {}

  /**
   * Opens (creating it 0644, as c/storage does, unless readOnly) the lock file, making its directory first unless
   * `dirMade` (the store's own locks, whose directories the store's layout makes).
   */
  static async open(path: string, options: { readOnly?: boolean; dirMade?: boolean } = {}): Promise<StoreLock> {
    const lock = new StoreLock(path, options.readOnly ?? false);
    if (!lock.readOnly && options.dirMade !== true) await makeDirs(dirname(path), 0o700);
    lock.fh = await open(path, lock.readOnly ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT, 0o644);
    return lock;
  }

  /** Takes the lock (shared or exclusive), waiting for other processes; returns whether another writer touched it since this process last looked. */
  async lock(exclusive: boolean): Promise<void> {
    if (exclusive && this.readOnly) throw new CarrierError('EROFS', `cannot take a write lock on the read-only store lock ${this.path}`, { path: this.path });
    await this.mutex.acquire(exclusive);
    try {
      if (this.holders === 0) {
        const fh = this.handle();
        try {
          await native.lockFile(fh.fd, exclusive, true);
        } catch (f) {
          throw nativeFailure(f, this.path);
        }
        this.heldExclusive = exclusive;
      }
      this.holders++;
    } catch (err) {
      this.mutex.release(exclusive);
      throw err;
    }
  }

  /** Tries once, without waiting; false when another holder (in this process or another) has it. */
  async tryLock(exclusive: boolean): Promise<boolean> {
    if (!this.mutex.tryAcquire(exclusive)) return false;
    if (this.holders === 0) {
      let got: boolean;
      try {
        got = await native.lockFile(this.handle().fd, exclusive, false);
      } catch (f) {
        this.mutex.release(exclusive);
        throw nativeFailure(f, this.path);
      }
      if (!got) {
        this.mutex.release(exclusive);
        return false;
      }
      this.heldExclusive = exclusive;
    }
    this.holders++;
    return true;
  }

  unlock(exclusive: boolean): void {
    this.holders--;
    if (this.holders === 0) {
      const failure = native.unlockFile(this.handle().fd);
      this.mutex.release(exclusive);
      if (failure) throw nativeFailure(failure, this.path);
      return;
    }
    this.mutex.release(exclusive);
  }

  /** Runs fn holding the lock. */
  async with<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await this.lock(exclusive);
    try {
      return await fn();
    } finally {
      this.unlock(exclusive);
    }
  }

  /** True when the token differs from what this process saw or wrote last (always true on the first call). Hold the lock. */
  async modified(): Promise<boolean> {
    const current = Buffer.alloc(TOKEN_SIZE);
    const { bytesRead } = await this.handle().read(current, 0, TOKEN_SIZE, 0);
    const token = bytesRead === TOKEN_SIZE ? current : Buffer.alloc(0);
    const changed = this.seen === undefined || !this.seen.equals(token) || bytesRead !== TOKEN_SIZE;
    this.seen = token;
    return changed;
  }

  /** Whether this process has looked at the token yet: before its first look, {@link modified} is sure to say true. */
  get looked(): boolean {
    return this.seen !== undefined;
  }

  /** Forgets the token seen last: the next {@link modified} says true. */
  forget(): void {
    this.seen = undefined;
  }

  /**
   * The token of a write about to be made: the writer puts it at offset 0 (writeFileAtomic, through the native job that
   * renames the record file, once the new name is in place) and then calls `written`. Hold the lock exclusively.
   */
  nextTouch(): LockTouch {
    if (!this.heldExclusive || this.holders === 0) throw new Error(`touch of ${this.path} without its write lock`);
    const token = newWriterToken();
    return {
      token,
      path: this.path,
      use: (write) => {
        // the fd stays open until the write settles: close waits for it, as a FileHandle waits for its own operations
        const job = (async () => write(this.handle().fd))();
        this.inflight.add(job);
        const done = (): void => void this.inflight.delete(job);
        job.then(done, done);
        return job;
      },
      written: () => {
        this.seen = token;
      },
    };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await Promise.allSettled([...this.inflight]);
    await fh?.close();
  }

  private handle(): FileHandle {
    if (!this.fh) throw new CarrierError('CARRIER_CLOSED', `the store lock ${this.path} is closed`, { path: this.path });
    return this.fh;
  }
}

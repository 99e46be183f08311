// The CLI bundle's node:fs/promises (src/fs/promises-lite.ts, resolved in place of Node's by scripts/bundle-cli.mjs)
// against Node's own module: every function and FileHandle method the library calls, run both ways on the same files,
// gives the same results and fails with the same errors (name, code, errno, syscall, path, dest, message).
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import * as nodeFsp from 'node:fs/promises';
import * as lite from '../src/fs/promises-lite.js';
import liteDefault from '../src/fs/promises-lite.js';

type Api = typeof nodeFsp;
const real = nodeFsp as Api;
const ours = lite as unknown as Api;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'carrier-fsp-lite-'));
let round = 0;

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A fresh directory for each run of each implementation, holding the same files. */
function tree(): string {
  const d = path.join(work, String(round++));
  fs.mkdirSync(path.join(d, 'sub', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(d, 'file'), 'hello, world\n');
  fs.writeFileSync(path.join(d, 'sub', 'deeper', 'leaf'), 'x');
  fs.symlinkSync('file', path.join(d, 'link'));
  fs.symlinkSync('nowhere', path.join(d, 'dangling'));
  return d;
}

type Outcome = { ok: unknown } | { err: Record<string, unknown> };

function describeError(e: unknown, root: string): Record<string, unknown> {
  const err = e as NodeJS.ErrnoException & { dest?: string };
  // (mkdtemp's six random characters differ from one run to the next)
  const strip = (v: unknown) => (typeof v === 'string' ? v.split(root).join('<dir>').replace(/tmp-\w{6}\b/g, 'tmp-XXXXXX') : v);
  return { name: err.name, code: err.code, errno: err.errno, syscall: err.syscall, path: strip(err.path), dest: strip(err.dest), message: strip(err.message) };
}

/** Runs `run` with Node's module and with ours, each in a tree of its own, and returns both outcomes. */
async function both(run: (fsp: Api, d: string) => Promise<unknown>, shape: (v: unknown, d: string) => unknown = (v) => v): Promise<[Outcome, Outcome]> {
  const outcome = async (fsp: Api): Promise<Outcome> => {
    const d = tree();
    try {
      return { ok: shape(await run(fsp, d), d) };
    } catch (e) {
      return { err: describeError(e, d) };
    }
  };
  return [await outcome(real), await outcome(ours)];
}

async function same(run: (fsp: Api, d: string) => Promise<unknown>, shape?: (v: unknown, d: string) => unknown): Promise<Outcome> {
  const [a, b] = await both(run, shape);
  expect(b).toEqual(a);
  return a;
}

const statShape = (s: unknown) => {
  const st = s as fs.Stats;
  return { mode: st.mode, size: st.size, nlink: st.nlink, file: st.isFile(), dir: st.isDirectory(), link: st.isSymbolicLink(), uid: st.uid };
};

describe('functions of node:fs/promises', () => {
  it('stat, lstat, statfs, access, readlink and realpath answer and fail as Node does', async () => {
    for (const name of ['file', 'link', 'dangling', 'sub', 'missing', 'file/below']) {
      await same((fsp, d) => fsp.stat(path.join(d, name)), statShape);
      await same((fsp, d) => fsp.lstat(path.join(d, name)), statShape);
      await same((fsp, d) => fsp.access(path.join(d, name)));
      await same((fsp, d) => fsp.access(path.join(d, name), fs.constants.X_OK));
      await same((fsp, d) => fsp.readlink(path.join(d, name)));
      await same((fsp, d) => fsp.realpath(path.join(d, name)), (v, d) => String(v).replace(d, '<dir>'));
    }
    await same((fsp, d) => fsp.stat(path.join(d, 'file'), { bigint: true }), (s) => typeof (s as fs.BigIntStats).size);
    await same((fsp, d) => fsp.statfs(d), (s) => typeof (s as fs.StatsFs).bsize);
    await same((fsp, d) => fsp.statfs(path.join(d, 'missing')));
    // a bad argument is refused as Node refuses it, as a rejection
    await same((fsp) => fsp.stat(42 as never));
    await same((fsp) => fsp.access('', 'x' as never));
  });

  it('mkdir, mkdtemp, rename, symlink, unlink, utimes, chmod, rmdir and rm change the tree as Node does', async () => {
    await same((fsp, d) => fsp.mkdir(path.join(d, 'a', 'b', 'c'), { recursive: true }), (v, d) => String(v).replace(d, '<dir>'));
    await same((fsp, d) => fsp.mkdir(path.join(d, 'sub')));
    await same((fsp, d) => fsp.mkdir(path.join(d, 'm'), 0o700).then(() => fs.statSync(path.join(d, 'm')).mode & 0o777));
    await same((fsp, d) => fsp.mkdtemp(path.join(d, 'tmp-')), (v, d) => /^<dir>\/tmp-\w{6}$/.test(String(v).replace(d, '<dir>')));
    await same((fsp, d) => fsp.mkdtemp(path.join(d, 'missing', 'tmp-')));
    await same((fsp, d) => fsp.rename(path.join(d, 'file'), path.join(d, 'moved')).then(() => fs.readdirSync(d).sort()));
    await same((fsp, d) => fsp.rename(path.join(d, 'missing'), path.join(d, 'moved')));
    await same((fsp, d) => fsp.symlink('target', path.join(d, 'new')).then(() => fs.readlinkSync(path.join(d, 'new'))));
    await same((fsp, d) => fsp.symlink('target', path.join(d, 'file')));
    await same((fsp, d) => fsp.symlink('target', path.join(d, 'typed'), undefined));
    await same((fsp, d) => fsp.unlink(path.join(d, 'sub')));
    await same((fsp, d) => fsp.unlink(path.join(d, 'link')).then(() => fs.existsSync(path.join(d, 'file'))));
    await same((fsp, d) => fsp.utimes(path.join(d, 'file'), 1000, new Date(2_000_000)).then(() => fs.statSync(path.join(d, 'file')).mtimeMs));
    await same((fsp, d) => fsp.utimes(path.join(d, 'missing'), 1, 1));
    await same((fsp, d) => fsp.chmod(path.join(d, 'file'), 0o600).then(() => fs.statSync(path.join(d, 'file')).mode));
    await same((fsp, d) => fsp.chmod(path.join(d, 'file'), 'nope' as never));
    await same((fsp, d) => fsp.rmdir(path.join(d, 'sub')));
    await same((fsp, d) => fsp.rmdir(path.join(d, 'sub', 'deeper', 'leaf')));
    await same((fsp, d) => fsp.rm(path.join(d, 'sub')));
    await same((fsp, d) => fsp.rm(path.join(d, 'missing')));
    await same((fsp, d) => fsp.rm(path.join(d, 'missing'), { force: true }));
    await same((fsp, d) => fsp.rm(path.join(d, 'sub'), { recursive: true, force: true }).then(() => fs.readdirSync(d).sort()));
  });

  it('readdir lists as Node does: names, entries with their types, recursively', async () => {
    await same((fsp, d) => fsp.readdir(d), (v) => (v as string[]).sort());
    await same((fsp, d) => fsp.readdir(d, { withFileTypes: true }), (v) =>
      (v as fs.Dirent[]).map((e) => [e.name, e.isFile(), e.isDirectory(), e.isSymbolicLink()]).sort(),
    );
    await same((fsp, d) => fsp.readdir(d, { recursive: true }), (v) => (v as string[]).sort());
    await same((fsp, d) => fsp.readdir(d, 'buffer'), (v) => (v as Buffer[]).map(String).sort());
    await same((fsp, d) => fsp.readdir(path.join(d, 'file')));
    await same((fsp, d) => fsp.readdir(path.join(d, 'missing')));
  });

  it('readFile and writeFile read and write whole files with their flag, mode and encoding options', async () => {
    await same((fsp, d) => fsp.readFile(path.join(d, 'file')));
    await same((fsp, d) => fsp.readFile(path.join(d, 'file'), 'utf8'));
    await same((fsp, d) => fsp.readFile(path.join(d, 'file'), { encoding: 'base64' }));
    await same((fsp, d) => fsp.readFile(path.join(d, 'sub')));
    await same((fsp, d) => fsp.readFile(path.join(d, 'missing')));
    await same((fsp, d) => fsp.readFile(path.join(d, 'missing'), { flag: 'a+' }).then((b) => [b.length, fs.existsSync(path.join(d, 'missing'))]));
    await same((fsp) => fsp.readFile('/proc/self/status', 'utf8'), (v) => String(v).startsWith('Name:'));
    await same((fsp) => fsp.readFile(0 as never));
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'ab');
    await same((fsp, d) => fsp.writeFile(path.join(d, 'big'), big).then(() => fs.readFileSync(path.join(d, 'big')).equals(big)));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'new'), 'text', { mode: 0o640 }).then(() => fs.statSync(path.join(d, 'new')).mode & 0o777));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'file'), '6869', { encoding: 'hex', flag: 'a' }).then(() => fs.readFileSync(path.join(d, 'file'), 'utf8')));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'file'), 'x', { flag: 'wx' }));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'file'), 'synced', { flush: true }).then(() => fs.readFileSync(path.join(d, 'file'), 'utf8')));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'it'), ['a', Buffer.from('b'), 'c']).then(() => fs.readFileSync(path.join(d, 'it'), 'utf8')));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'file'), 42 as never));
    await same((fsp, d) => fsp.writeFile(path.join(d, 'missing', 'x'), 'x'));
    const aborted = AbortSignal.abort();
    await same((fsp, d) => fsp.writeFile(path.join(d, 'x'), 'x', { signal: aborted }));
  });

  it('exports what Node exports, the default object included', () => {
    expect(Object.keys(lite.default).sort()).toEqual(Object.keys(real).filter((k) => k !== 'default').sort());
    expect(liteDefault.constants).toBe(fs.constants);
    for (const key of Object.keys(real)) if (key !== 'default') expect(typeof (lite as Record<string, unknown>)[key], key).toBe(typeof (real as Record<string, unknown>)[key]);
  });
});

describe("open()'s FileHandle", () => {
  it('opens with flags and mode as Node does, and fails as it does', async () => {
    await same((fsp, d) => fsp.open(path.join(d, 'missing')));
    await same((fsp, d) => fsp.open(path.join(d, 'file'), 'wx'));
    await same((fsp, d) => fsp.open(path.join(d, 'file'), 'bogus'));
    await same((fsp, d) =>
      fsp.open(path.join(d, 'made'), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600).then(async (fh) => {
        await fh.close();
        return fs.statSync(path.join(d, 'made')).mode & 0o777;
      }),
    );
    await same((fsp, d) => fsp.open(path.join(d, 'link'), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW));
    await same((fsp, d) => fsp.open(path.join(d, 'made'), 'a', 0o600).then(async (fh) => [typeof fh.fd, fh.fd > 2, await fh.close()]));
  });

  it('reads with every argument shape into { bytesRead, buffer }, at a position or at the file position', async () => {
    const shape = (v: unknown) => {
      const r = v as { bytesRead: number; buffer: Buffer };
      return [Object.getPrototypeOf(r), r.bytesRead, Buffer.from(r.buffer.buffer, r.buffer.byteOffset, r.buffer.byteLength).toString('latin1')];
    };
    const reads: ((fh: nodeFsp.FileHandle) => Promise<unknown>)[] = [
      (fh) => fh.read(Buffer.alloc(5), 0, 5, 0),
      (fh) => fh.read(Buffer.alloc(8), 2, 4, 7),
      (fh) => fh.read(Buffer.alloc(8), 0, 8, null),
      (fh) => fh.read(Buffer.alloc(8), { position: 3 }),
      (fh) => fh.read(Buffer.alloc(8), { offset: 1, length: 3 }),
      (fh) => fh.read({ buffer: Buffer.alloc(6), position: 1 }),
      (fh) => fh.read(Buffer.alloc(20)),
      (fh) => fh.read(new Uint8Array(4), 0, 4, 100),
      (fh) => fh.read(Buffer.alloc(4), 0, 0, 0),
      (fh) => fh.read(Buffer.alloc(4), 0, 5, 0),
      (fh) => fh.read(Buffer.alloc(4), -1, 2, 0),
      (fh) => fh.read(Buffer.alloc(4), 0, 2, 1n as never),
      (fh) => fh.read(7 as never),
      (fh) => fh.read({ buffer: 'no' as never }),
      async (fh) => [await fh.read(Buffer.alloc(3), 0, 3, null), await fh.read(Buffer.alloc(3), 0, 3, null)].map(shape),
    ];
    for (const read of reads) {
      await same(async (fsp, d) => {
        const fh = await fsp.open(path.join(d, 'file'));
        try {
          return await read(fh);
        } finally {
          await fh.close();
        }
      }, (v) => (Array.isArray(v) ? v : shape(v)));
    }
    // read() with no buffer: Node's 16 KiB one
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'file'));
      const r = await fh.read();
      await fh.close();
      return [r.bytesRead, r.buffer.length];
    });
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'sub'));
      try {
        return await fh.read(Buffer.alloc(4), 0, 4, 0);
      } finally {
        await fh.close();
      }
    });
  });

  it('writes once per write() and all of it per writeFile(), syncs, stats, changes modes, and reads the rest of the file', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024 + 3, 'xyz');
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'out'), 'wx', 0o600);
      const results: unknown[] = [];
      const w = await fh.write(Buffer.from('abcdef'), 1, 3, 10);
      results.push([Object.getPrototypeOf(w), w.bytesWritten, String(w.buffer)]);
      const s = await fh.write('hé', 0, 'utf8');
      results.push([s.bytesWritten, s.buffer]);
      results.push((await fh.write(Buffer.alloc(0))).bytesWritten);
      results.push((await fh.write(Buffer.from('zz'), { offset: 1, position: 20 })).bytesWritten);
      await Promise.all([fh.writeFile(big), fh.chmod(0o640)]);
      await fh.datasync();
      await fh.sync();
      results.push(statShape(await fh.stat()));
      await fh.writeFile('tail', 'utf8');
      await fh.truncate(big.length + 10);
      results.push((await fh.stat({ bigint: true })).size);
      await fh.close();
      const back = fs.readFileSync(path.join(d, 'out'));
      results.push(back.length, back.subarray(0, 40).toString('latin1'), fs.statSync(path.join(d, 'out')).mode & 0o777);
      return results;
    });
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'file'), 'r');
      await fh.read(Buffer.alloc(7), 0, 7, null);
      const rest = await fh.readFile('utf8');
      const w = await fh.write('x').catch((e: unknown) => describeError(e, d));
      const wf = await fh.writeFile('x').catch((e: unknown) => describeError(e, d));
      await fh.close();
      return [rest, w, wf];
    });
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'it'), 'w');
      await fh.writeFile(Readable.from(['one ', Buffer.from('two')]));
      await fh.appendFile(' three');
      await fh.close();
      return fs.readFileSync(path.join(d, 'it'), 'utf8');
    });
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'v'), 'w+');
      const w = await fh.writev([Buffer.from('ab'), Buffer.from('cd')], 0);
      const a = Buffer.alloc(1);
      const b = Buffer.alloc(3);
      const r = await fh.readv([a, b], 0);
      await fh.close();
      return [Object.getPrototypeOf(w), w.bytesWritten, r.bytesRead, String(a), String(b)];
    });
  });

  it('closes once: a second close is a no-op, an operation after it fails with EBADF "file closed", a pending read finishes first', async () => {
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'file'));
      const fd = fh.fd;
      const events: string[] = [];
      fh.on('close', () => events.push('close event'));
      const pending = fh.read(Buffer.alloc(5), 0, 5, 0).then((r) => events.push(`read ${r.bytesRead}`));
      const closing = fh.close().then(() => events.push('closed'));
      events.push(`fd while closing ${fh.fd === fd}`);
      await Promise.all([pending, closing]);
      events.push(`fd after ${fh.fd}`);
      await fh.close();
      const failures = [];
      for (const op of [() => fh.read(Buffer.alloc(1), 0, 1, 0), () => fh.write(Buffer.from('x')), () => fh.stat(), () => fh.sync(), () => fh.datasync(), () => fh.chmod(0o600), () => fh.writeFile('x'), () => fh.readFile()]) {
        failures.push(await op().then(() => 'ok', (e: unknown) => describeError(e, d)));
      }
      return [events, failures];
    });
  });

  it('makes read and write streams that go through the handle and close it at their end', async () => {
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'file'));
      const chunks: Buffer[] = [];
      let closed = false;
      fh.on('close', () => (closed = true));
      for await (const c of fh.createReadStream({ highWaterMark: 4, start: 2 })) chunks.push(c as Buffer);
      await new Promise((r) => setImmediate(r));
      return [Buffer.concat(chunks).toString(), closed, fh.fd];
    });
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'copy'), 'w');
      await pipeline(Readable.from([Buffer.from('a'), Buffer.from('bc')]), fh.createWriteStream());
      return [fs.readFileSync(path.join(d, 'copy'), 'utf8'), fh.fd];
    });
    await same(async (fsp, d) => {
      fs.writeFileSync(path.join(d, 'lines'), 'one\ntwo\r\nthree');
      const fh = await fsp.open(path.join(d, 'lines'));
      const lines: string[] = [];
      for await (const line of fh.readLines()) lines.push(line);
      return lines;
    });
    // a handle closed by its owner ends its stream
    await same(async (fsp, d) => {
      fs.writeFileSync(path.join(d, 'long'), Buffer.alloc(1 << 20));
      const fh = await fsp.open(path.join(d, 'long'));
      const stream = fh.createReadStream({ highWaterMark: 1024 });
      await new Promise((r) => stream.once('readable', r));
      await Promise.all([fh.close(), new Promise((r) => stream.once('close', r))]);
      return [stream.destroyed, fh.fd];
    });
  });

  it('reads and writes through readFile and writeFile given the handle', async () => {
    await same(async (fsp, d) => {
      const fh = await fsp.open(path.join(d, 'file'), 'r+');
      const text = await fsp.readFile(fh, 'utf8');
      await fsp.writeFile(fh, 'more');
      await fh.close();
      return [text, fs.readFileSync(path.join(d, 'file'), 'utf8')];
    });
  });
});

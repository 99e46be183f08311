// The idiomatic pure-Node way to do what applyLayer does: stream the blob, hash it, decompress it (zlib for gzip,
// fzstd for zstd, or zlib's zstd on a Node that has it), hash the tar, and extract it with tar-stream writing every entry through the fs module. Written
// the way a careful Node developer would (streams with back-pressure, ownership and modes restored, directory mtimes
// set last, paths kept inside the target), neither deliberately slow nor micro-optimised.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import * as nodeTar from 'tar';

/** A pass-through stream that hashes and counts what flows through it. */
class HashTap extends Transform {
  constructor() {
    super();
    this.hash = createHash('sha256');
    this.size = 0;
  }
  _transform(chunk, _enc, cb) {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  digest() {
    return 'sha256:' + this.hash.digest('hex');
  }
}

/** fzstd's streaming decoder (its Decompress class) as a Transform. */
class ZstdStream extends Transform {
  constructor(Decompress) {
    super();
    this.decoder = new Decompress((chunk) => {
      if (chunk.length) this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    });
  }
  _transform(chunk, _enc, cb) {
    try {
      this.decoder.push(chunk);
      cb();
    } catch (e) {
      cb(e);
    }
  }
  _flush(cb) {
    try {
      this.decoder.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(e);
    }
  }
}

/**
 * zstd in JavaScript: fzstd, loaded only when a zstd layer comes (it is not a dependency of carrier any more: install
 * it with `npm i --no-save fzstd` for the pure-Node zstd rows), else zlib's own zstd where Node has it (≥ 22.15).
 */
async function zstdStream() {
  try {
    const { Decompress } = await import('fzstd');
    return new ZstdStream(Decompress);
  } catch (e) {
    if (zlib.createZstdDecompress) return zlib.createZstdDecompress();
    throw new Error(`no JavaScript zstd decoder: fzstd is not installed (npm i --no-save fzstd) and this Node's zlib has no zstd (${e.message.split('\n')[0]})`);
  }
}

async function decompressor(compression) {
  if (compression === 'gzip') return zlib.createGunzip();
  if (compression === 'zstd') return zstdStream();
  return new Transform({ transform: (c, _e, cb) => cb(null, c) });
}

/** Resolves a tar path inside `root`, refusing anything that would escape it. */
function inside(root, name) {
  const rel = path.normalize('/' + name).slice(1);
  if (!rel || rel === '.') return null;
  return path.join(root, rel);
}

const isRoot = process.getuid?.() === 0;

/**
 * Extracts `file` (a path, or a readable stream of the blob; compressed with `compression`) into the existing
 * empty directory `dir`. Resolves with the two digests and sizes, like applyLayer.
 */
export async function pureNodeApply(file, dir, compression) {
  const compressed = new HashTap();
  const tar = new HashTap();
  const extract = tarStream.extract();
  const dirTimes = [];
  let entries = 0;
  let failure;

  const handle = async (header, stream) => {
    const target = inside(dir, header.name);
    if (!target) {
      stream.resume();
      return;
    }
    const mode = header.mode & 0o7777;
    const mtime = header.mtime ?? new Date();
    switch (header.type) {
      case 'directory':
        await fsp.mkdir(target, { recursive: true });
        if (isRoot) await fsp.lchown(target, header.uid, header.gid);
        await fsp.chmod(target, mode);
        dirTimes.push([target, mtime]);
        stream.resume();
        return;
      case 'file':
      case 'contiguous-file': {
        await fsp.mkdir(path.dirname(target), { recursive: true });
        await pipeline(stream, fs.createWriteStream(target, { mode }));
        if (isRoot) await fsp.lchown(target, header.uid, header.gid);
        await fsp.chmod(target, mode);
        await fsp.utimes(target, mtime, mtime);
        return;
      }
      case 'symlink':
        stream.resume();
        await fsp.mkdir(path.dirname(target), { recursive: true });
        await fsp.symlink(header.linkname, target);
        if (isRoot) await fsp.lchown(target, header.uid, header.gid);
        await fsp.lutimes(target, mtime, mtime);
        return;
      case 'link': {
        stream.resume();
        const from = inside(dir, header.linkname);
        if (!from) return;
        await fsp.mkdir(path.dirname(target), { recursive: true });
        await fsp.link(from, target);
        return;
      }
      default:
        // devices, FIFOs: not created (as a rootless extractor would)
        stream.resume();
    }
  };

  let pending = Promise.resolve();
  extract.on('entry', (header, stream, next) => {
    entries++;
    pending = handle(header, stream).then(
      () => next(),
      (err) => {
        failure ??= err;
        next(err);
      },
    );
  });

  const source = typeof file === 'string' ? fs.createReadStream(file) : file;
  await pipeline(source, compressed, await decompressor(compression), tar, extract);
  await pending;
  if (failure) throw failure;
  // parents after children, so creating children does not disturb the restored times
  for (let i = dirTimes.length - 1; i >= 0; i--) await fsp.utimes(dirTimes[i][0], dirTimes[i][1], dirTimes[i][1]);
  return {
    compressedDigest: compressed.digest(),
    compressedSize: compressed.size,
    diffDigest: tar.digest(),
    diffSize: tar.size,
    entries,
  };
}

/** The same hashing pipeline, with node-tar's extractor doing the file system work. */
export async function nodeTarApply(file, dir, compression) {
  const compressed = new HashTap();
  const tar = new HashTap();
  await pipeline(
    fs.createReadStream(file),
    compressed,
    await decompressor(compression),
    tar,
    // preservePaths keeps absolute symlink targets as they are (a rootfs is full of them); without it node-tar
    // rewrites them to relative paths, which changes the layer. The fixture has no absolute or '..' entry names.
    nodeTar.x({ cwd: dir, preserveOwner: isRoot, preservePaths: true }),
  );
  return {
    compressedDigest: compressed.digest(),
    compressedSize: compressed.size,
    diffDigest: tar.digest(),
    diffSize: tar.size,
  };
}

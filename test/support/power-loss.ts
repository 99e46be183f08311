/**
 * Power loss, simulated: the store lives on a file system on a loop device with direct I/O, whose backing file lives
 * on a reflink-capable (loop-mounted) XFS. With direct I/O the loop device has no cache of its own: a write the store's
 * file system sent to the device is in the backing file once it completes, and nothing else is. A reflink copy of
 * the backing file (`cp --reflink=always`, FICLONE) is taken atomically — XFS waits for the direct writes in flight
 * and holds new ones off — so the copy holds exactly what had reached the device at that moment: what a power cut
 * would leave. Mounting the copy replays its journal, as the next boot would.
 *
 * {@link checkCrashCopy} then judges the store on a mounted copy: its records parse, every layer recorded complete
 * rebuilds from its tar-split (every file's CRC-64 checked on the way) to its diff_id, every image names only
 * complete layers and its config and manifests are whole, and podman lists it.
 *
 * Needs root, util-linux (losetup with --direct-io), xfsprogs (and e2fsprogs for an ext4 store), podman.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { Store } from '../../src/store/store.js';
import { bigDataFileName } from '../../src/store/ids.js';

export type StoreFsKind = 'xfs' | 'ext4';

/** Runs a tool without blocking the event loop (the workload runs in this process meanwhile); stdout. */
export function exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { env: opts.env ?? { ...process.env, LC_ALL: 'C.UTF-8' }, maxBuffer: 1 << 26, timeout: opts.timeoutMs ?? 120_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} failed (${err.code ?? err.signal}): ${String(stderr).trim() || err.message}`));
        else resolve(String(stdout));
      },
    );
  });
}

async function detach(device: string): Promise<void> {
  await exec('losetup', ['-d', device]).catch(() => {});
}

async function unmount(dir: string): Promise<void> {
  await exec('umount', [dir]).catch(() => exec('umount', ['-l', dir]));
}

/** The mount options a copy of the store's file system needs beside the original (XFS refuses a duplicate UUID). */
const COPY_MOUNT_OPTIONS: Record<StoreFsKind, string[]> = { xfs: ['nouuid'], ext4: [] };

export interface PowerLossRigOptions {
  /** The store's file system (default xfs). */
  fs?: StoreFsKind;
  /** Size of the store's device (sparse; default 1 GiB). */
  deviceMiB?: number;
  /** Size of the XFS that holds the device's backing file and the copies (sparse; default 8 GiB). */
  outerMiB?: number;
}

/**
 * The rig: `<work>/outer` (loop-mounted XFS, reflink=1) holds `dev.img`, the backing file of a direct-I/O loop device
 * whose file system is mounted on `<work>/store`. {@link snapshot} copies the device as a power cut would leave it.
 */
export class PowerLossRig {
  private copies = 0;
  private constructor(
    readonly work: string,
    readonly fsKind: StoreFsKind,
    /** Where the store's file system is mounted. */
    readonly mountDir: string,
    private readonly outerDir: string,
    private readonly outerDevice: string,
    private readonly device: string,
  ) {}

  static async start(work: string, options: PowerLossRigOptions = {}): Promise<PowerLossRig> {
    const kind = options.fs ?? 'xfs';
    const outerImage = path.join(work, 'outer.img');
    const outerDir = path.join(work, 'outer');
    const mountDir = path.join(work, 'store');
    fs.mkdirSync(outerDir, { recursive: true });
    fs.mkdirSync(mountDir, { recursive: true });
    fs.closeSync(fs.openSync(outerImage, 'w'));
    fs.truncateSync(outerImage, (options.outerMiB ?? 8192) * 1024 * 1024);
    await exec('mkfs.xfs', ['-q', '-m', 'reflink=1', outerImage]);
    const outerDevice = (await exec('losetup', ['--find', '--show', outerImage])).trim();
    let device: string | undefined;
    let outerMounted = false;
    try {
      await exec('mount', [outerDevice, outerDir]);
      outerMounted = true;
      const backing = path.join(outerDir, 'dev.img');
      fs.closeSync(fs.openSync(backing, 'w'));
      fs.truncateSync(backing, (options.deviceMiB ?? 1024) * 1024 * 1024);
      await exec(kind === 'xfs' ? 'mkfs.xfs' : 'mkfs.ext4', ['-q', backing]);
      device = (await exec('losetup', ['--find', '--show', '--direct-io=on', backing])).trim();
      // losetup falls back to buffered I/O without a word when the backing file system refuses O_DIRECT
      const dio = fs.readFileSync(`/sys/block/${path.basename(device)}/loop/dio`, 'utf8').trim();
      if (dio !== '1') throw new Error(`${device} did not get direct I/O (loop/dio = ${dio}): the copies would miss the page cache of the backing file`);
      await exec('mount', [device, mountDir]);
      return new PowerLossRig(work, kind, mountDir, outerDir, outerDevice, device);
    } catch (err) {
      if (device) await detach(device);
      if (outerMounted) await unmount(outerDir);
      await detach(outerDevice);
      throw err;
    }
  }

  /** A reflink copy of the device as it is this instant (what a power cut now would leave); its path. */
  async snapshot(): Promise<string> {
    const copy = path.join(this.outerDir, `crash-${++this.copies}.img`);
    await exec('cp', ['--reflink=always', path.join(this.outerDir, 'dev.img'), copy]);
    return copy;
  }

  /** Mounts a copy (its journal replays), runs `fn` on the mount, then unmounts and deletes the copy. */
  async withCopy<T>(copy: string, fn: (mountDir: string) => Promise<T>): Promise<T> {
    const dir = `${copy}.mnt`;
    fs.mkdirSync(dir);
    let mounted = false;
    try {
      // `-o loop` attaches the copy to a loop device of its own, detached again (autoclear) by the umount
      await exec('mount', ['-o', ['loop', ...COPY_MOUNT_OPTIONS[this.fsKind]].join(','), copy, dir]);
      mounted = true;
      return await fn(dir);
    } finally {
      if (mounted) await unmountTree(dir);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(copy, { force: true });
    }
  }

  async stop(): Promise<void> {
    await unmountTree(this.mountDir);
    await detach(this.device);
    await unmount(this.outerDir);
    await detach(this.outerDevice);
  }
}

/**
 * A copy's extent map (physical extents, from FIEMAP); read before anything mounts the copy. Two copies that existed
 * side by side from the moment the first was taken, with equal maps, hold the same bytes: once the first was cloned
 * every block of the device was shared with it, so any write in between landed on a new block (copy on write) or
 * turned an unwritten extent written, and either changes the map of the later copy.
 */
export async function extentMap(copy: string): Promise<string> {
  const map = await exec('filefrag', ['-e', copy]);
  return map
    .split('\n')
    .filter((l) => /^\s*\d+:/.test(l))
    .join('\n');
}

/** Unmounts whatever is mounted at or below `dir` (podman bind-mounts a graphroot's overlay/ onto itself), deepest first. */
async function unmountTree(dir: string): Promise<void> {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort()
    .reverse();
  for (const m of mounts) await unmount(m);
}

// ---------------------------------------------------------------------------------------------------------------
// The check of one crash copy

interface RawLayer {
  id: string;
  parent?: string;
  'diff-digest'?: string;
  flags?: { incomplete?: boolean };
}

interface RawImage {
  id: string;
  layer?: string;
  names?: string[];
  'big-data-digests'?: Record<string, string>;
}

interface RawContainer {
  id: string;
  layer: string;
  image: string;
}

export interface CrashCopyReport {
  /** What is wrong with the store in this copy; empty when it is consistent. */
  problems: string[];
  /** Layers recorded complete with a diff digest, each rebuilt and hashed. */
  layersChecked: number;
  images: number;
  containers: number;
  /** Layers recorded incomplete in the copy (an operation under way: removed when the store is opened). */
  incomplete: number;
  /** Where the check's time went (ms): opening the store, rebuilding the layers, podman (which runs alongside). */
  ms: { open: number; rebuild: number; podman: number };
  /** podman had listed a copy with the same record files already (its listing was reused). */
  podmanShared?: boolean;
}

function readRecords<T>(file: string, problems: string[]): T[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  if (text.trim() === '') return [];
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v)) throw new Error('not an array');
    return v as T[];
  } catch (err) {
    problems.push(`${path.basename(file)} does not parse: ${(err as Error).message} (${text.length} bytes)`);
    return [];
  }
}

function bigDataFile(imagesDir: string, id: string, key: string): string {
  return path.join(imagesDir, id, bigDataFileName(key));
}

async function sha256Of(stream: NodeJS.ReadableStream): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/**
 * Checks the store at `graphroot` (on a mounted crash copy): the record files parse; the records as the crash left
 * them hold every image's layers complete and its config and manifests whole; Carrier opens the store; every layer
 * recorded complete with a diff digest rebuilds from its tar-split to that digest; podman lists the store and agrees
 * with Carrier on the images. `scratch` is an empty directory for the run roots (a power cut empties /run too);
 * `podmanListed` remembers what podman listed for each state of the record files, across copies.
 */
export async function checkCrashCopy(graphroot: string, scratch: string, podmanListed: Map<string, string[]>): Promise<CrashCopyReport> {
  const problems: string[] = [];
  const layersDir = path.join(graphroot, 'overlay-layers');
  const imagesDir = path.join(graphroot, 'overlay-images');
  const layers = readRecords<RawLayer>(path.join(layersDir, 'layers.json'), problems);
  const images = readRecords<RawImage>(path.join(imagesDir, 'images.json'), problems);
  const containers = readRecords<RawContainer>(path.join(graphroot, 'overlay-containers', 'containers.json'), problems);
  const report: CrashCopyReport = { problems, layersChecked: 0, images: images.length, containers: containers.length, incomplete: 0, ms: { open: 0, rebuild: 0, podman: 0 } };
  if (problems.length > 0) return report;

  // The records as the power cut left them, before anything repairs them.
  const byId = new Map(layers.map((l) => [l.id, l]));
  const complete = layers.filter((l) => l.flags?.incomplete !== true);
  report.incomplete = layers.length - complete.length;
  for (const l of complete) {
    if (!fs.existsSync(path.join(graphroot, 'overlay', l.id, 'diff'))) problems.push(`layer ${l.id.slice(0, 12)} is recorded complete but has no diff/ directory`);
    if (l.parent !== undefined) {
      const parent = byId.get(l.parent);
      // an incomplete parent is removed when the store is next opened, and leaves this layer on nothing
      if (!parent || parent.flags?.incomplete === true) {
        problems.push(`layer ${l.id.slice(0, 12)} is complete but its parent ${l.parent.slice(0, 12)} is ${parent ? 'incomplete' : 'not recorded'}`);
      }
    }
  }
  for (const img of images) {
    for (let id = img.layer, n = 0; id !== undefined && n < 10_000; n++) {
      const l = byId.get(id);
      if (!l) {
        problems.push(`image ${img.id.slice(0, 12)} names layer ${id.slice(0, 12)}, which is not recorded`);
        break;
      }
      if (l.flags?.incomplete === true) problems.push(`image ${img.id.slice(0, 12)} names layer ${id.slice(0, 12)}, which is incomplete`);
      id = l.parent;
    }
    for (const [key, digest] of Object.entries(img['big-data-digests'] ?? {})) {
      const f = bigDataFile(imagesDir, img.id, key);
      const data = fs.existsSync(f) ? fs.readFileSync(f) : undefined;
      if (!data) problems.push(`image ${img.id.slice(0, 12)}: big data '${key}' is missing`);
      else if (`sha256:${crypto.createHash('sha256').update(data).digest('hex')}` !== digest) {
        problems.push(`image ${img.id.slice(0, 12)}: big data '${key}' does not match its digest (${data.length} bytes)`);
      }
    }
  }
  for (const c of containers) {
    if (!images.some((i) => i.id === c.image)) problems.push(`container ${c.id.slice(0, 12)} names image ${c.image.slice(0, 12)}, which is not recorded`);
  }

  // Carrier opens it (and removes what an operation under way left incomplete), and every complete layer rebuilds.
  const runroot = path.join(scratch, 'run');
  let t = Date.now();
  const store = await Store.open({ root: graphroot, runroot, driver: 'overlay' }).catch((err: unknown) => {
    problems.push(`Carrier cannot open the store: ${(err as Error).message}`);
    return undefined;
  });
  if (!store) return report;
  report.ms.open = Date.now() - t;
  try {
    t = Date.now();
    // podman's listing is a function of the record files (as Carrier's open left them) and the images' big data, which
    // was checked against its digests above: a state podman already listed is not listed again.
    const recordsKey = crypto.createHash('sha256');
    for (const f of [path.join(layersDir, 'layers.json'), path.join(imagesDir, 'images.json'), path.join(graphroot, 'overlay-containers', 'containers.json')]) {
      recordsKey.update(fs.existsSync(f) ? fs.readFileSync(f) : Buffer.alloc(0)).update('\0');
    }
    const key = recordsKey.digest('hex');
    const known = podmanListed.get(key);
    const podman = (known ? Promise.resolve(known) : podmanImages(graphroot, scratch)).finally(() => (report.ms.podman = Date.now() - t));
    if (known) report.podmanShared = true;
    const toRebuild = complete.filter((l) => l['diff-digest'] !== undefined); // a container's read-write layer has no tar
    report.layersChecked = toRebuild.length;
    const rebuild = async (l: RawLayer): Promise<void> => {
      try {
        const got = await sha256Of(await store.exportLayer(l.id));
        if (got !== l['diff-digest']) problems.push(`layer ${l.id.slice(0, 12)} rebuilds to ${got}, recorded ${l['diff-digest']}`);
      } catch (err) {
        problems.push(`layer ${l.id.slice(0, 12)} does not rebuild: ${(err as Error).message}`);
      }
    };
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        for (let l = toRebuild.shift(); l !== undefined; l = toRebuild.shift()) await rebuild(l);
      }),
    );
    report.ms.rebuild = Date.now() - t;
    const carrierIds = (await store.images()).map((i) => i.id).sort();
    const listed = await podman;
    if (typeof listed === 'string') problems.push(listed);
    else {
      podmanListed.set(key, listed);
      if (JSON.stringify(listed) !== JSON.stringify(carrierIds)) {
        problems.push(`podman lists images ${listed.map((i) => i.slice(0, 12)).join(',')}, Carrier ${carrierIds.map((i) => i.slice(0, 12)).join(',')}`);
      }
    }
  } finally {
    await store.close();
  }
  return report;
}

/** `podman images` on the copy with its own run root and tmpdir: the sorted image ids, or what went wrong. */
async function podmanImages(graphroot: string, scratch: string): Promise<string[] | string> {
  const runroot = path.join(scratch, 'podman-run');
  const tmpdir = path.join(scratch, 'podman-tmp');
  const conf = path.join(scratch, 'storage.conf');
  fs.writeFileSync(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${graphroot}"\nrunroot = "${runroot}"\n`);
  const args = ['--root', graphroot, '--runroot', runroot, '--storage-driver', 'overlay', '--tmpdir', tmpdir, 'images', '--format', 'json'];
  try {
    const out = await exec('podman', args, { env: { ...process.env, CONTAINERS_STORAGE_CONF: conf, LC_ALL: 'C.UTF-8' } });
    const all = JSON.parse(out) as { Id: string }[];
    return [...new Set(all.map((i) => i.Id))].sort();
  } catch (err) {
    return `podman cannot list the store: ${(err as Error).message.slice(0, 500)}`;
  }
}

// Starting a container: its mounts resolved (volumes, host paths), the rootfs mounted and prepared, an OCI spec
// generated, and the runtime (runc) run in the foreground with the state recorded in carrier.json.
import { chmod, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CarrierError } from '../errors.js';
import type { Store } from '../store/store.js';
import { generateSpec, type ContainerMount, type OciIdMapping, type OciSpec } from '../runtime/spec.js';
import { mkdirInRoot, resolveInRoot } from '../runtime/rootfs.js';
import { deleteRuntimeState, findRuntime, runBundle, signalNumber, type OciRuntime, type RunBundleResult, type SignalRelay } from '../runtime/runtime.js';
import { singleIdMapping } from '../runtime/userns.js';
import { inUserNamespace } from '../host.js';
import { createVolume, type VolumeInfo } from './volumes.js';
import { mountContainerRootfs, unmountContainerRootfs } from './mount.js';
import { createContainer, imageConfigOf, inspectContainer, removeContainer } from './containers.js';
import { readCarrierFile, runDir, runtimeStateRoot, updateState, userdataDir, writeCarrierFile } from './state.js';
import type { ContainerConfig, CreateContainerOptions } from './types.js';
import { makeDirs } from '../fs/batch.js';

export interface StartOptions {
  /** Where the container's stdout/stderr go (default: this process's). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Told about things worth a warning (a runtime that does not work here, …). */
  onWarning?: (message: string) => void;
  /** Signals caught since the run began; one that comes before the container starts cancels it. */
  signals?: SignalRelay;
}

export interface RunResult extends RunBundleResult {
  id: string;
  name: string;
  runtime: string;
}

/** Resolves the container's mounts: named volumes made when missing, anonymous ones made, tmpfs options parsed. */
async function resolveMounts(store: Store, config: ContainerConfig, id: string): Promise<ContainerMount[]> {
  const out: ContainerMount[] = [];
  for (const v of config.volumes) {
    if (v.source?.startsWith('/')) {
      out.push({ type: 'bind', source: v.source, destination: v.destination, ...(v.readOnly ? { readOnly: true } : {}) });
      continue;
    }
    let vol: VolumeInfo;
    if (v.source === undefined) {
      vol = await createVolume(store, undefined, { anonymous: true, labels: { 'carrier.container': id } });
      // Remember the name so the next start uses the same volume.
      v.source = vol.name;
      const f = await readCarrierFile(store, id);
      if (f) {
        f.config.volumes = config.volumes;
        await writeCarrierFile(store, id, f);
      }
    } else {
      vol = await createVolume(store, v.source, { ignoreExisting: true });
    }
    out.push({ type: 'bind', source: vol.mountpoint, destination: v.destination, volume: vol.name, ...(v.readOnly ? { readOnly: true } : {}) });
  }
  for (const t of config.tmpfs) {
    const colon = t.indexOf(':');
    const destination = colon === -1 ? t : t.slice(0, colon);
    const opts = colon === -1 ? undefined : t.slice(colon + 1).split(',').filter((o) => o !== '');
    out.push({ type: 'tmpfs', destination, ...(opts ? { options: ['nosuid', 'nodev', ...opts] } : {}) });
  }
  return out;
}

/**
 * Runs a created container in the foreground: mounts its root file system, writes config.json into its userdata
 * directory, runs the OCI runtime with stdio attached and returns its exit code. The mount is released afterwards;
 * with `autoRemove` the container is removed too.
 */
export async function startContainer(store: Store, query: string, options: StartOptions = {}): Promise<RunResult> {
  const d = await inspectContainer(store, query);
  const file = await readCarrierFile(store, d.id);
  if (!file) throw new CarrierError('CARRIER_UNSUPPORTED', `container ${d.id.slice(0, 12)} was not created by Carrier (no carrier.json); it cannot be started by Carrier`);
  if (d.state.status === 'running') throw new CarrierError('CARRIER_IN_USE', `container ${d.name} is already running`);
  const config = file.config;
  let runtime = await findRuntime(config.runtime);
  const imageConfig = await imageConfigOf(store, config.image);
  let result: RunBundleResult | undefined;
  let rootfs: string | undefined;
  try {
    try {
      rootfs = await mountContainerRootfs(store, d.id);
    } catch (err) {
      if ((process.geteuid?.() ?? 0) !== 0 && !inUserNamespace() && err instanceof Error) {
        err.message += " (rootless: run inside Carrier's user namespace — 'carrier unshare', which the CLI enters by itself)";
      }
      throw err;
    }
    const mounts = await resolveMounts(store, config, d.id);
    const { spec } = await generateSpec({
      rootfs,
      id: d.id,
      image: imageConfig,
      ...(config.cmd ? { cmd: config.cmd } : {}),
      ...(config.entrypoint ? { entrypoint: config.entrypoint } : {}),
      env: config.env,
      ...(config.workdir !== undefined ? { workdir: config.workdir } : {}),
      ...(config.user !== undefined ? { user: config.user } : {}),
      mounts,
      terminal: config.tty,
      ...outsideNamespace(),
      annotations: { 'io.podman.annotations.autoremove': config.autoRemove ? 'TRUE' : 'FALSE' },
    });
    await prepareRootfs(store, d.id, rootfs, spec);
    const bundle = userdataDir(store, d.id);
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2), { mode: 0o600 });
    const run = async (rt: OciRuntime): Promise<RunBundleResult> => {
      const early = options.signals?.cancelled;
      if (early) return { exitCode: 128 + (signalNumber(early) ?? 15), signal: early };
      await deleteRuntimeState(rt, runtimeStateRoot(store, rt.name), d.id);
      await updateState(store, d.id, () => ({ status: 'running', startedAt: new Date().toISOString(), pid: process.pid, runtime: rt.name }));
      return runBundle({
        runtime: rt,
        bundle,
        id: d.id,
        stateRoot: runtimeStateRoot(store, rt.name),
        tty: config.tty,
        interactive: config.interactive,
        ...(options.stdout ? { stdout: options.stdout } : {}),
        ...(options.stderr ? { stderr: options.stderr } : {}),
        ...(options.signals ? { signals: options.signals } : {}),
      });
    };
    result = await run(runtime);
    if (result.failure === 'cgroups' && runtime.name === 'crun') {
      // crun refuses hosts with a hybrid cgroup v1/v2 layout; runc copes when the config asks for no resources.
      const runc = await findRuntime('runc').catch(() => undefined);
      if (runc) {
        options.onWarning?.(`crun cannot run containers with this machine's cgroup layout (${result.runtimeError}); using runc instead`);
        runtime = runc;
        result = await run(runtime);
      }
    }
    return { ...result, id: d.id, name: d.name, runtime: runtime.name };
  } finally {
    const end = result;
    await updateState(store, d.id, (s) => ({
      ...s,
      status: 'exited',
      finishedAt: new Date().toISOString(),
      ...(end ? { exitCode: end.exitCode } : { exitCode: 125 }),
      ...(end?.runtimeError ? { error: end.runtimeError } : {}),
      pid: undefined,
    })).catch(() => {});
    await deleteRuntimeState(runtime, runtimeStateRoot(store, runtime.name), d.id);
    if (rootfs !== undefined) await unmountContainerRootfs(store, d.id).catch(() => {});
    if (config.autoRemove) await removeContainer(store, d.id, { force: true }).catch(() => {});
  }
}

/**
 * Unprivileged and outside Carrier's namespace (an API caller that did not enter it; the CLI always does): the store
 * mounts with fuse-overlayfs, and the runtime makes the user namespace itself (runc's rootless mode) with the user
 * as root. Inside the namespace, or as root, the container gets no user namespace of its own.
 */
function outsideNamespace(): { singleIdMapping: boolean; userNamespace?: { uidMappings: OciIdMapping[]; gidMappings: OciIdMapping[] } } {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0 || inUserNamespace()) return { singleIdMapping: singleIdMapping() };
  const gid = process.getegid?.() ?? 0;
  return {
    singleIdMapping: true,
    userNamespace: { uidMappings: [{ containerID: 0, hostID: uid, size: 1 }], gidMappings: [{ containerID: 0, hostID: gid, size: 1 }] },
  };
}

/** What runc expects to find: the working directory and the mount points of the container's own mounts. */
async function prepareRootfs(store: Store, id: string, rootfs: string, spec: OciSpec): Promise<void> {
  await mkdirInRoot(rootfs, spec.process.cwd);
  // /etc/hostname and /etc/hosts as podman gives them (loopback only: no other network).
  const run = runDir(store, id);
  await makeDirs(run, 0o700);
  const hostname = spec.hostname ?? id.slice(0, 12);
  await writeFile(join(run, 'hostname'), `${hostname}\n`);
  await writeFile(join(run, 'hosts'), `127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost localhost.localdomain\n127.0.1.1\t${hostname}\n`);
  for (const f of ['hostname', 'hosts']) await chmod(join(run, f), 0o644);
  const etc = await resolveInRoot(rootfs, '/etc');
  const etcExists = await stat(etc).then((s) => s.isDirectory(), () => false);
  if (etcExists) {
    for (const f of ['hostname', 'hosts']) {
      spec.mounts.push({ destination: `/etc/${f}`, type: 'bind', source: join(run, f), options: ['bind', 'rprivate', 'ro'] });
    }
  }
}

/** create + start: `carrier run`. */
export async function runContainer(store: Store, image: string, options: CreateContainerOptions = {}, io: StartOptions = {}): Promise<RunResult> {
  const c = await createContainer(store, image, options);
  return startContainer(store, c.id, io);
}

/** Mounts a container's root file system; returns the merged path (reference counted). */

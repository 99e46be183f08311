// The shapes of a Carrier container: how it was asked for, what it runs, and its state as carrier.json records it.
import type { ContainerInfo } from '../store/store.js';

/** `-v` as given: a host path or a named volume (or nothing: an anonymous volume) mounted at `destination`. */
export interface VolumeSpec {
  /** Absolute host path (bind mount) or volume name; undefined for an anonymous volume. */
  source?: string;
  destination: string;
  readOnly?: boolean;
}

export interface CreateContainerOptions {
  name?: string;
  /** Replaces the image's Cmd. */
  cmd?: string[];
  /** Replaces the image's Entrypoint. */
  entrypoint?: string[];
  /** `K=V` (or `K`: the host's value) added to the image's environment. */
  env?: string[];
  workdir?: string;
  /** `user`, `uid`, `user:group`, `uid:gid`. */
  user?: string;
  /** `SRC:DST[:ro]` strings or parsed specs. */
  volumes?: (string | VolumeSpec)[];
  /** Destinations of tmpfs mounts (`DST` or `DST:opts`). */
  tmpfs?: string[];
  tty?: boolean;
  interactive?: boolean;
  /** runc or crun (default: found on PATH). */
  runtime?: string;
  /** Remove the container when its process exits (`run --rm`). */
  autoRemove?: boolean;
}

export interface ContainerConfig {
  image: string;
  imageName: string;
  name: string;
  cmd?: string[];
  entrypoint?: string[];
  env: string[];
  workdir?: string;
  user?: string;
  volumes: VolumeSpec[];
  tmpfs: string[];
  tty: boolean;
  interactive: boolean;
  runtime?: string;
  autoRemove: boolean;
}

export type ContainerStatus = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerState {
  status: ContainerStatus;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  /** The Carrier process that runs the container (running only). */
  pid?: number;
  runtime?: string;
  error?: string;
}

/** carrier.json. */
export interface CarrierFile {
  version: 1;
  config: ContainerConfig;
  state: ContainerState;
}

export interface ContainerDetails {
  id: string;
  name: string;
  names: string[];
  image: string;
  imageName: string;
  created: string;
  /** The read-write layer. */
  layer: string;
  /** Who made it: Carrier (carrier.json present) or another tool (podman). */
  origin: 'carrier' | 'external';
  config?: ContainerConfig;
  state: ContainerState;
  /** The command the container runs (Entrypoint + Cmd), as far as known. */
  command: string[];
  /** The container's own upper directory (its writes). */
  upperDir: string;
  info: ContainerInfo;
}

// ---- names --------------------------------------------------------------------------------------------------------

// A container's root file system: the store's reference-counted overlay mount (Store.mountContainer /
// Store.unmountContainer, counted in <runroot>/overlay-layers/mountpoints.json as podman counts them).
import type { Store } from '../store/store.js';

/** Mounts the container's layers (one more reference); returns the merged directory. */
export async function mountContainerRootfs(store: Store, id: string): Promise<string> {
  return store.mountContainer(id);
}

/** Drops one reference (every one with `force`); true while the container stays mounted. */
export async function unmountContainerRootfs(store: Store, id: string, options: { force?: boolean } = {}): Promise<boolean> {
  return store.unmountContainer(id, options);
}

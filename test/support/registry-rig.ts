/**
 * The setup registry tests share: a work directory, the real registry (registry.ts), optionally a fault-injecting
 * proxy in front of it (fault-proxy.ts), and test images built in the work directory and pushed with skopeo.
 * `registryRig` registers the file's hooks: all of it starts before the file's tests (then the file's own `setup`
 * runs, in the same hook), the proxy can forget its rules after each test, and after the tests everything stops and
 * the work directory goes. Vitest runs after-hooks in reverse order, so a file's own afterAll (closing a store in the
 * work directory, stopping a second registry) runs before the rig's.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startRegistry, pushImage, type PushOptions, type StartRegistryOptions, type TestRegistry } from './registry.js';
import { startFaultProxy, resetProxy, type FaultProxy, type FaultProxyOptions } from './fault-proxy.js';
import { buildTestImage, removeWorkDir, requireTools, type TestImage, type TestImageOptions } from './images.js';
import { tempDir } from './fixtures.js';

export interface RegistryRigOptions {
  /** How to start the registry (default: plain http, no auth). */
  registry?: StartRegistryOptions;
  /** Put a fault proxy in front of the registry (`true`, or its options). */
  proxy?: boolean | FaultProxyOptions;
  /** Clear the proxy's rules and request log after each test. */
  resetProxy?: boolean;
  /** Check that skopeo and podman are installed first (default true). */
  requireTools?: boolean;
  /** The before-hook's timeout (default 180 s: building and pushing images is slow on a loaded machine). */
  timeout?: number;
}

export interface RegistryRig {
  /** The work directory, removed (after unmounting what is left below it) when the file's tests are done. */
  readonly work: string;
  readonly reg: TestRegistry;
  /** The fault proxy (only when the rig was asked for one). */
  readonly proxy: FaultProxy;
  /** buildTestImage in `work/dir`. */
  build(dir: string, image?: TestImageOptions): TestImage;
  /** Pushes an OCI layout (a built image, or any source pushImage takes) to the rig's registry as `repoTag`. */
  push(image: TestImage | { ociDir: string } | string, repoTag: string, options?: PushOptions): Promise<void>;
  /** build, then push the image as `repoTag`. */
  buildAndPush(dir: string, repoTag: string, image?: TestImageOptions, options?: PushOptions): Promise<TestImage>;
}

export function registryRig(name: string, options: RegistryRigOptions = {}, setup?: (rig: RegistryRig) => Promise<void> | void): RegistryRig {
  let work: string | undefined;
  let reg: TestRegistry | undefined;
  let proxy: FaultProxy | undefined;
  const started = <T>(what: string, value: T | undefined): T => {
    if (value === undefined) throw new Error(`the registry rig has no ${what}${what === 'proxy' ? ' (ask for proxy: true)' : ' yet (read it in a test or hook)'}`);
    return value;
  };
  const rig: RegistryRig = {
    get work() {
      return started('work directory', work);
    },
    get reg() {
      return started('registry', reg);
    },
    get proxy() {
      return started('proxy', proxy);
    },
    build: (dir, image = {}) => buildTestImage(path.join(rig.work, dir), image),
    push: (image, repoTag, pushOptions = {}) => pushImage(rig.reg.host, typeof image === 'string' ? image : image.ociDir, repoTag, pushOptions),
    async buildAndPush(dir, repoTag, image = {}, pushOptions = {}) {
      const img = rig.build(dir, image);
      await rig.push(img, repoTag, pushOptions);
      return img;
    },
  };

  beforeAll(async () => {
    if (options.requireTools !== false) requireTools();
    work = tempDir(name);
    reg = await startRegistry(options.registry);
    if (options.proxy) proxy = await startFaultProxy(reg.url, options.proxy === true ? {} : options.proxy);
    await setup?.(rig);
  }, options.timeout ?? 180_000);

  if (options.resetProxy) afterEach(() => resetProxy(rig.proxy));

  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    removeWorkDir(work);
  });

  return rig;
}

// The one place a driver is chosen by name: the store asks for "the configured driver" and gets a Driver.
import { join } from 'node:path';
import { CarrierError } from '../errors.js';
import type { Driver } from './driver.js';
import { OverlayDriver } from './overlay.js';
import { VfsDriver } from './vfs.js';

export type { ApplyDiffOptions, CreateReadWriteOptions, DiffSource, Driver, DriverMountOptions, DriverUsage } from './driver.js';

export interface DriverConfig {
  driver: 'overlay' | 'vfs';
  graphroot: string;
  /** storage.conf `force_mask` as octal text (`"0700"`); overlay only. Unparseable text is ignored. */
  forceMask?: string | number;
  /** storage.conf `mount_program`; overlay only. */
  mountProgram?: string;
  /** storage.conf `mountopt`: comma-separated mount options; overlay only. */
  mountOpt?: string;
  /** Graphroots of read-only additional image stores. */
  additionalImageStores?: string[];
}

export function createDriver(config: DriverConfig): Driver {
  const additional = config.additionalImageStores?.length ? { additionalImageStores: [...config.additionalImageStores] } : {};
  switch (config.driver) {
    case 'vfs':
      return new VfsDriver(join(config.graphroot, 'vfs'), additional);
    case 'overlay': {
      const forceMask = typeof config.forceMask === 'string' ? parseInt(config.forceMask, 8) : config.forceMask;
      const mountOptions = (config.mountOpt ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
      return new OverlayDriver(join(config.graphroot, 'overlay'), {
        ...additional,
        ...(forceMask !== undefined && !Number.isNaN(forceMask) ? { forceMask } : {}),
        ...(config.mountProgram ? { mountProgram: config.mountProgram } : {}),
        ...(mountOptions.length > 0 ? { mountOptions } : {}),
      });
    }
    default:
      throw new CarrierError('CARRIER_UNSUPPORTED', `unknown storage driver '${String((config as { driver: unknown }).driver)}'; use overlay or vfs`);
  }
}

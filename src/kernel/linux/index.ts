// LinuxKernel: the KernelPort on the real kernel. Device-mapper through raw ioctls on
// /dev/mapper/control, loop devices through /dev/loop-control, filesystems through the mount
// syscalls and mkfs. See docs/architecture.md, "Kernel backend".

import { ThinToolsReader } from './metadata-thin-ids.ts';
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { KernelError, ERRNO } from '../../errors/index.ts';
import type { DmInfo, DmTarget, KernelPort, LoopDevice, MountEntry, MountOptions, UnmountOptions } from '../kernel-port.ts';
import type { Filesystem } from '../../model/manifest.ts';
import { blockDeviceSize, discard } from './block.ts';
import { DM_CONTROL, DeviceMapper } from './device-mapper.ts';
import * as filesystem from './filesystem.ts';
import { LoopDevices } from './loop-devices.ts';

/** True where the real kernel can be driven: device-mapper present and running as root. */
export function linuxKernelAvailable(): boolean {
  return fs.existsSync(DM_CONTROL) && process.geteuid?.() === 0;
}

export class LinuxKernel implements KernelPort {
  readonly kind = 'kernel' as const;
  readonly #dm = new DeviceMapper();
  readonly #loops = new LoopDevices();

  async listDevices(): Promise<DmInfo[]> {
    return this.#dm.listDevices();
  }
  async info(name: string): Promise<DmInfo | null> {
    return this.#dm.info(name);
  }
  async create(name: string, uuid: string, table?: DmTarget[], opts?: { readOnly?: boolean }): Promise<DmInfo> {
    return this.#dm.create(name, uuid, table, opts);
  }
  async load(name: string, table: DmTarget[]): Promise<void> {
    this.#dm.load(name, table);
  }
  async suspend(name: string, opts?: { noFlush?: boolean }): Promise<void> {
    this.#dm.suspend(name, opts);
  }
  async resume(name: string): Promise<void> {
    this.#dm.resume(name);
  }
  async remove(name: string, opts?: { deferred?: boolean }): Promise<void> {
    this.#dm.remove(name, opts);
  }
  async table(name: string): Promise<DmTarget[]> {
    return this.#dm.table(name);
  }
  async status(name: string): Promise<DmTarget[]> {
    return this.#dm.status(name);
  }
  async message(name: string, message: string): Promise<string> {
    return this.#dm.message(name, message);
  }

  async loopAttach(file: string, opts?: { readOnly?: boolean }): Promise<LoopDevice> {
    return this.#loops.attach(file, opts);
  }
  async loopFind(file: string): Promise<LoopDevice | null> {
    return this.#loops.find(file);
  }
  async loopList(): Promise<LoopDevice[]> {
    return this.#loops.list();
  }
  async loopDetach(path: string): Promise<void> {
    this.#loops.detach(path);
  }
  async loopSetCapacity(path: string): Promise<void> {
    this.#loops.setCapacity(path);
  }

  async blockDeviceSize(path: string): Promise<number> {
    return blockDeviceSize(path);
  }
  async discard(path: string, offsetBytes?: number, lengthBytes?: number): Promise<void> {
    discard(path, offsetBytes, lengthBytes);
  }
  async mkfs(path: string, fs: Filesystem, opts?: { label?: string }): Promise<void> {
    await filesystem.mkfs(path, fs, opts);
  }
  async growfs(path: string, mountpoint: string, fs: Filesystem): Promise<void> {
    await filesystem.growfs(path, mountpoint, fs);
  }
  async mount(path: string, mountpoint: string, fs: Filesystem, opts?: MountOptions): Promise<void> {
    filesystem.mount(path, mountpoint, fs, opts);
  }
  async unmount(mountpoint: string, opts?: UnmountOptions): Promise<void> {
    filesystem.unmount(mountpoint, opts);
  }
  async mounts(): Promise<MountEntry[]> {
    return filesystem.mounts();
  }
  async sync(mountpoint?: string): Promise<void> {
    filesystem.sync(mountpoint);
  }
  async setNoSpaceTimeout(seconds: number): Promise<void> {
    // A dm_thin_pool module setting: how long I/O queues on a pool out of data space before it errors.
    await writeFile('/sys/module/dm_thin_pool/parameters/no_space_timeout', String(seconds)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw new KernelError('set no_space_timeout', 'dm_thin_pool', ERRNO.EACCES, e.message);
    });
  }

  async listThinIds(poolDmName: string, metadataDevPath: string): Promise<number[]> {
    return new ThinToolsReader(this).listThinIds(poolDmName, metadataDevPath);
  }

  async thinMappedBytes(poolDmName: string, metadataDevPath: string, thinId: number): Promise<number> {
    return new ThinToolsReader(this).mappedBytes(poolDmName, metadataDevPath, thinId);
  }

  async close(): Promise<void> {
    this.#loops.close();
    this.#dm.close();
  }
}

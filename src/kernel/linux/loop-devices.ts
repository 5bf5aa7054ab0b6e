// Loop devices through /dev/loop-control and the loop ioctls; attachments are read from sysfs.
//
// Attachments use LO_FLAGS_AUTOCLEAR: the kernel detaches the file when the last opener closes the
// loop device, so nothing leaks when thinlayer dies. That also means a loop device must be held
// open until something else (the thin-pool's table) holds it, so this keeps the descriptor it
// attached through until loopDetach or close().

import fs from 'node:fs';
import path from 'node:path';
import { ERRNO, KernelError } from '../../errors/index.ts';
import type { LoopDevice } from '../kernel-port.ts';
import { O_RDONLY, O_RDWR, close, ioctlBuffer, ioctlValue, open, withFd } from '../../host/libc.ts';
import { SECTOR_BYTES } from '../../model/units.ts';

const LOOP_SET_FD = 0x4c00;
const LOOP_CLR_FD = 0x4c01;
const LOOP_SET_STATUS64 = 0x4c04;
const LOOP_SET_CAPACITY = 0x4c07;
const LOOP_CONFIGURE = 0x4c0a;
const LOOP_CTL_GET_FREE = 0x4c82;

const LO_FLAGS_READ_ONLY = 1;
const LO_FLAGS_AUTOCLEAR = 4;

const LOOP_INFO64_SIZE = 232;
const LOOP_CONFIG_SIZE = 4 + 4 + LOOP_INFO64_SIZE + 64;
const LO_FILE_NAME_OFFSET = 56;
const LO_FLAGS_OFFSET = 52;
const LO_NAME_SIZE = 64;
/** Another process may take the device LOOP_CTL_GET_FREE offered before we configure it. */
const ATTACH_ATTEMPTS = 16;

const SYS_BLOCK = '/sys/block';

/** struct loop_info64 with only the flags and the (informational) file name set. */
function loopInfo64(file: string, flags: number): Buffer {
  const info = Buffer.alloc(LOOP_INFO64_SIZE);
  info.writeUInt32LE(flags, LO_FLAGS_OFFSET);
  info.write(file.slice(-(LO_NAME_SIZE - 1)), LO_FILE_NAME_OFFSET, LO_NAME_SIZE - 1, 'utf8');
  return info;
}

/** struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]; } */
function loopConfig(backingFd: number, file: string, flags: number): Buffer {
  const config = Buffer.alloc(LOOP_CONFIG_SIZE);
  config.writeUInt32LE(backingFd, 0);
  config.writeUInt32LE(0, 4); // block size: the default (512)
  loopInfo64(file, flags).copy(config, 8);
  return config;
}

function readSys(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** A loop device as sysfs describes it, or null when it has no file attached. */
function describe(name: string): LoopDevice | null {
  const dir = path.join(SYS_BLOCK, name);
  const backing = readSys(path.join(dir, 'loop', 'backing_file'));
  const dev = readSys(path.join(dir, 'dev'));
  if (!backing || !dev) return null;
  const [major, minor] = dev.split(':').map(Number);
  return {
    path: `/dev/${name}`,
    major,
    minor,
    backingFile: backing,
    sizeBytes: Number(readSys(path.join(dir, 'size')) ?? 0) * SECTOR_BYTES,
    readOnly: readSys(path.join(dir, 'ro')) === '1',
  };
}

export class LoopDevices {
  /** Loop device path -> the descriptor that keeps an autoclear attachment alive. */
  readonly #held = new Map<string, number>();

  list(): LoopDevice[] {
    let names: string[];
    try {
      names = fs.readdirSync(SYS_BLOCK).filter((n) => /^loop\d+$/.test(n));
    } catch {
      return [];
    }
    names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
    return names.map(describe).filter((d): d is LoopDevice => d !== null);
  }

  /** Matched by path: sysfs reports the backing file's path, with " (deleted)" once it is unlinked. */
  find(file: string): LoopDevice | null {
    const wanted = resolve(file);
    return this.list().find((d) => d.backingFile === wanted) ?? null;
  }

  attach(file: string, opts: { readOnly?: boolean } = {}): LoopDevice {
    const site = { operation: 'loop.attach', device: file };
    const backingPath = resolve(file);
    const readOnly = opts.readOnly ?? false;
    const flags = LO_FLAGS_AUTOCLEAR | (readOnly ? LO_FLAGS_READ_ONLY : 0);
    const backingFd = open(backingPath, readOnly ? O_RDONLY : O_RDWR, site);
    try {
      for (let attempt = 1; ; attempt++) {
        const index = withFd('/dev/loop-control', O_RDWR, site, (ctl) => ioctlValue(ctl, LOOP_CTL_GET_FREE, 0, site));
        const loopPath = `/dev/loop${index}`;
        const loopFd = open(loopPath, O_RDWR, site);
        try {
          configure(loopFd, backingFd, backingPath, flags, { operation: 'loop.attach', device: loopPath });
        } catch (e) {
          close(loopFd);
          if (e instanceof KernelError && e.is('EBUSY') && attempt < ATTACH_ATTEMPTS) continue;
          throw e;
        }
        this.#held.set(loopPath, loopFd);
        const device = describe(`loop${index}`);
        if (!device) throw new KernelError('loop.attach', loopPath, ERRNO.ENXIO, 'attached, but sysfs shows no backing file');
        return device;
      }
    } finally {
      close(backingFd); // the loop device holds its own reference to the file
    }
  }

  detach(loopPath: string): void {
    const site = { operation: 'loop.detach', device: loopPath };
    const held = this.#held.get(loopPath);
    if (held !== undefined) {
      // Through the held descriptor, the only opener: the kernel detaches at once rather than
      // deferring to autoclear.
      try {
        ioctlValue(held, LOOP_CLR_FD, 0, site);
      } finally {
        close(held);
        this.#held.delete(loopPath);
      }
      return;
    }
    withFd(loopPath, O_RDONLY, site, (fd) => ioctlValue(fd, LOOP_CLR_FD, 0, site));
  }

  setCapacity(loopPath: string): void {
    const site = { operation: 'loop.setCapacity', device: loopPath };
    withFd(loopPath, O_RDONLY, site, (fd) => ioctlValue(fd, LOOP_SET_CAPACITY, 0, site));
  }

  /** Lets go of held descriptors; attachments the pool uses stay, the others autoclear. */
  close(): void {
    for (const fd of this.#held.values()) close(fd);
    this.#held.clear();
  }
}

function configure(loopFd: number, backingFd: number, backingPath: string, flags: number, site: { operation: string; device: string }): void {
  try {
    ioctlBuffer(loopFd, LOOP_CONFIGURE, loopConfig(backingFd, backingPath, flags), site);
  } catch (e) {
    // Kernels before 5.8 have no LOOP_CONFIGURE: the two-step attach does the same.
    if (!((e instanceof KernelError && (e.is('EINVAL') || e.errno === 25)) /* ENOTTY */)) throw e;
    ioctlValue(loopFd, LOOP_SET_FD, backingFd, site);
    try {
      ioctlBuffer(loopFd, LOOP_SET_STATUS64, loopInfo64(backingPath, flags), site);
    } catch (statusError) {
      ioctlValue(loopFd, LOOP_CLR_FD, 0, site);
      throw statusError;
    }
  }
}

function resolve(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

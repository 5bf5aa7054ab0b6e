// Block device ioctls: size and discard.

import { ERRNO, KernelError } from '../../errors/index.ts';
import { O_RDONLY, O_RDWR, ioctlBuffer, withFd } from '../../host/libc.ts';

const BLKGETSIZE64 = 0x80081272; // _IOR(0x12, 114, size_t)
const BLKDISCARD = 0x1277; // _IO(0x12, 119), argument: u64 range[2] = { start, length }

export function blockDeviceSize(devicePath: string): number {
  const site = { operation: 'block.size', device: devicePath };
  return withFd(devicePath, O_RDONLY, site, (fd) => {
    const out = Buffer.alloc(8);
    ioctlBuffer(fd, BLKGETSIZE64, out, site);
    return Number(out.readBigUInt64LE(0));
  });
}

/** The kernel wants offset and length aligned to the logical block size; it says EINVAL otherwise. */
export function discard(devicePath: string, offsetBytes = 0, lengthBytes?: number): void {
  const site = { operation: 'block.discard', device: devicePath };
  withFd(devicePath, O_RDWR, site, (fd) => {
    const sizeOut = Buffer.alloc(8);
    ioctlBuffer(fd, BLKGETSIZE64, sizeOut, site);
    const size = Number(sizeOut.readBigUInt64LE(0));
    const length = lengthBytes ?? size - offsetBytes;
    if (offsetBytes < 0 || length < 0) throw new KernelError(site.operation, devicePath, ERRNO.EINVAL, `range ${offsetBytes}+${length}`);
    if (length === 0) return;
    const range = Buffer.alloc(16);
    range.writeBigUInt64LE(BigInt(offsetBytes), 0);
    range.writeBigUInt64LE(BigInt(length), 8);
    ioctlBuffer(fd, BLKDISCARD, range, site);
  });
}

// Filesystems on thin devices: mkfs and grow as child processes (the only ones on the normal path),
// mount, unmount, sync and trim through the syscalls. Mountpoints are reached without following
// symlinks (mountpoint.ts).

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ERRNO, KernelError } from '../../errors/index.ts';
import type { MountEntry, MountOptions, UnmountOptions } from '../kernel-port.ts';
import type { Filesystem } from '../../model/manifest.ts';
import {
  MNT_DETACH,
  MS_NODEV,
  MS_NOSUID,
  MS_RDONLY,
  O_DIRECTORY,
  O_RDONLY,
  UMOUNT_NOFOLLOW,
  close,
  ioctlBuffer,
  mount as mountSyscall,
  syncAll,
  syncfs,
  umount2,
  withFd,
} from '../../host/libc.ts';
import { openMountpoint } from './mountpoint.ts';
import { parseMountinfo } from './mountinfo.ts';
import { systemTool, type SystemTool } from '../../host/system-tools.ts';

/**
 * Tools come from the fixed system directories (src/host/system-tools.ts), never from PATH.
 * A tool failure has no errno: a missing tool is ENOENT, a missing device is the stat's errno,
 * and a tool that ran and failed is EIO with its stderr as the detail.
 */
function runTool(operation: string, device: string, tool: SystemTool, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let program: string;
    try {
      program = systemTool(tool, operation);
    } catch (e) {
      return reject(e);
    }
    execFile(program, args, { encoding: 'utf8', maxBuffer: 4 << 20 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return reject(new KernelError(operation, device, ERRNO.ENOENT, `${tool} not found`));
      const why = stderr.trim().split('\n').slice(-3).join(' | ') || error.message;
      reject(new KernelError(operation, device, ERRNO.EIO, `${tool} exited with ${error.code ?? error.signal}: ${why}`));
    });
  });
}

function requireBlockDevice(operation: string, devicePath: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(devicePath);
  } catch (e) {
    throw new KernelError(operation, devicePath, errnoOf(e), 'stat');
  }
  if (!st.isBlockDevice()) throw new KernelError(operation, devicePath, ERRNO.ENODEV, 'not a block device');
}

function errnoOf(e: unknown): number {
  const errno = (e as NodeJS.ErrnoException).errno;
  return typeof errno === 'number' ? Math.abs(errno) : ERRNO.EIO;
}

/**
 * Thin devices read zeros wherever nothing was written, so zeroing inode tables and the journal
 * (at mkfs, or later by ext4's lazy-init thread in every snapshot that mounts) would only
 * allocate pool blocks for nothing: mkfs skips it and mounts say noinit_itable. No discard at
 * mkfs either: a new thin device has nothing provisioned to discard.
 */
export async function mkfs(devicePath: string, fsType: Filesystem, opts: { label?: string } = {}): Promise<void> {
  requireBlockDevice('mkfs', devicePath);
  const label = opts.label ? ['-L', opts.label] : [];
  if (fsType === 'ext4') {
    await runTool('mkfs', devicePath, 'mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', ...label, devicePath]);
  } else {
    await runTool('mkfs', devicePath, 'mkfs.xfs', ['-q', '-f', '-K', ...label, devicePath]);
  }
}

export async function growfs(devicePath: string, mountpoint: string, fsType: Filesystem): Promise<void> {
  if (fsType === 'ext4') await runTool('growfs', devicePath, 'resize2fs', [devicePath]);
  else await runTool('growfs', mountpoint, 'xfs_growfs', [mountpoint]);
}

export function mount(devicePath: string, mountpoint: string, fsType: Filesystem, opts: MountOptions = {}): void {
  const site = { operation: 'mount', device: mountpoint };
  const fd = openMountpoint(mountpoint, site, { create: true });
  try {
    // The kernel would stack a second mount on top of whatever is there (say /home) and hide it.
    const there = topMountAt(mountpoint);
    if (there) throw new KernelError('mount', mountpoint, ERRNO.EBUSY, `${there.source} (${there.major}:${there.minor}) is mounted there already`);
    // Every snapshot of the base carries the base's XFS UUID: without nouuid, XFS refuses to mount a
    // second snapshot (a layer and its devices, two devices of one layer) while another is mounted.
    const data = [...(fsType === 'ext4' ? ['noinit_itable'] : ['nouuid']), ...(opts.discard ? ['discard'] : [])].join(',');
    const flags = (opts.readOnly ? MS_RDONLY : 0) | (opts.suid ? 0 : MS_NOSUID) | (opts.dev ? 0 : MS_NODEV);
    mountSyscall(devicePath, `/proc/self/fd/${fd}`, fsType, flags, data, site);
  } finally {
    close(fd);
  }
}

/**
 * The parents are checked as for a mount; the last component is not followed (UMOUNT_NOFOLLOW).
 * No descriptor is kept open across the umount: one would keep the mount busy.
 */
export function unmount(mountpoint: string, opts: UnmountOptions = {}): void {
  const site = { operation: 'unmount', device: mountpoint };
  close(openMountpoint(mountpoint, site, { create: false }));
  const there = topMountAt(mountpoint);
  if (!there) throw new KernelError('unmount', mountpoint, ERRNO.EINVAL, 'not a mountpoint');
  if (opts.device && (there.major !== opts.device.major || there.minor !== opts.device.minor)) {
    throw new KernelError(
      'unmount',
      mountpoint,
      ERRNO.EPERM,
      `the mount there is ${there.source} (${there.major}:${there.minor}), not ${opts.device.major}:${opts.device.minor}'s; left alone`,
    );
  }
  umount2(mountpoint, UMOUNT_NOFOLLOW | (opts.lazy ? MNT_DETACH : 0), site);
}

/** The mount on top at a path (the last one mounted there), if any. */
function topMountAt(mountpoint: string): MountEntry | undefined {
  const at = path.posix.resolve(mountpoint);
  return mounts()
    .filter((m) => m.mountpoint === at)
    .pop();
}

export function mounts(): MountEntry[] {
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function sync(mountpoint?: string): void {
  if (mountpoint === undefined) {
    syncAll();
    return;
  }
  const site = { operation: 'sync', device: mountpoint };
  withFd(mountpoint, O_RDONLY | O_DIRECTORY, site, (fd) => syncfs(fd, site));
}

const FITRIM = 0xc0185879; // _IOWR('X', 121, struct fstrim_range { u64 start, len, minlen })

/**
 * FITRIM on a mounted filesystem, what `fstrim` does: the filesystem discards its free extents of
 * at least `minLengthBytes` (raised to the device's discard granularity). Resolves to the bytes
 * the filesystem says it trimmed (ext4 counts every free extent it walked, whether or not the
 * device had anything mapped there).
 */
export function trim(mountpoint: string, opts: { minLengthBytes?: number } = {}): number {
  const site = { operation: 'trim', device: mountpoint };
  return withFd(mountpoint, O_RDONLY | O_DIRECTORY, site, (fd) => {
    const range = Buffer.alloc(24);
    range.writeBigUInt64LE(0n, 0);
    range.writeBigUInt64LE(0xffffffffffffffffn, 8);
    range.writeBigUInt64LE(BigInt(opts.minLengthBytes ?? 0), 16);
    ioctlBuffer(fd, FITRIM, range, site);
    return Number(range.readBigUInt64LE(8));
  });
}

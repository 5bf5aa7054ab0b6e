// The kernel port: everything the engine needs from the operating system, in one interface.
// Two implementations honour it: the simulated kernel (src/kernel/sim) and the Linux backend
// (src/kernel/linux). One contract suite (test/contract) runs against both; where they differ,
// the simulator is wrong and gets fixed.
//
// Units: device-mapper tables and statuses speak 512-byte sectors, exactly as the kernel does.
// Failures are thrown as KernelError (src/errors) carrying the operation, the device and the errno.

import type { Filesystem } from '../model/manifest.ts';

/** One line of a device-mapper table or status: `start length type params`. */
export interface DmTarget {
  start: number; // sectors
  length: number; // sectors
  type: string; // 'thin-pool' | 'thin' | 'linear' | ...
  params: string; // the rest of the line, exactly as the kernel prints it
}

/** What DM_DEV_STATUS (dm_task_get_info) says of one device. */
export interface DmInfo {
  name: string;
  uuid: string; // '' when the device has none
  major: number;
  minor: number;
  openCount: number;
  suspended: boolean;
  liveTable: boolean;
  inactiveTable: boolean;
  readOnly: boolean;
  eventNr: number;
  targetCount: number;
  /** A path under which the block device can be opened (/dev/mapper/NAME or /dev/dm-N). */
  devPath: string;
}

export interface LoopDevice {
  path: string; // /dev/loopN
  major: number;
  minor: number;
  backingFile: string; // absolute path of the attached file
  sizeBytes: number;
  readOnly: boolean;
}

export interface MountEntry {
  source: string; // device path as mounted
  major: number;
  minor: number;
  mountpoint: string;
  fstype: string;
  options: string[];
}

export interface MountOptions {
  readOnly?: boolean;
  discard?: boolean;
  /** Honour setuid/setgid bits and file capabilities; without it the mount is nosuid. */
  suid?: boolean;
  /** Honour device nodes; without it the mount is nodev. */
  dev?: boolean;
}

export interface UnmountOptions {
  /** Detach now, finish when no longer busy (MNT_DETACH). */
  lazy?: boolean;
  /** Unmount only if the mount on top at the mountpoint is this device's (EPERM otherwise). */
  device?: { major: number; minor: number };
}

export interface KernelPort {
  /** 'sim' for the simulated kernel, 'kernel' for the real one. */
  readonly kind: 'sim' | 'kernel';

  // --- device-mapper -------------------------------------------------------------------------
  /** Every device-mapper device, owned or not. Callers filter by uuid prefix. */
  listDevices(): Promise<DmInfo[]>;
  /** The device's info, or null when no device of that name exists. */
  info(name: string): Promise<DmInfo | null>;
  /**
   * DM_DEV_CREATE, then (when a table is given) TABLE_LOAD and DEV_SUSPEND(resume): the device
   * is live when this returns. EEXIST (or EBUSY) when the name or uuid is taken.
   */
  create(name: string, uuid: string, table?: DmTarget[], opts?: { readOnly?: boolean }): Promise<DmInfo>;
  /** TABLE_LOAD into the inactive slot; the next resume makes it live. */
  load(name: string, table: DmTarget[]): Promise<void>;
  suspend(name: string, opts?: { noFlush?: boolean }): Promise<void>;
  resume(name: string): Promise<void>;
  /**
   * DM_DEV_REMOVE. EBUSY while the device is open (a pool is open while a thin device uses it);
   * with `deferred`, the kernel removes the device when its last opener closes it instead.
   * ENXIO when there is no such device.
   */
  remove(name: string, opts?: { deferred?: boolean }): Promise<void>;
  /** The live table (TABLE_STATUS with STATUS_TABLE). */
  table(name: string): Promise<DmTarget[]>;
  /** The live status lines (TABLE_STATUS), in the kernel's exact format. */
  status(name: string): Promise<DmTarget[]>;
  /**
   * TARGET_MSG to sector 0 of a device, e.g. a thin-pool's `create_thin 1`, `create_snap 2 1`,
   * `delete 2`, `set_transaction_id 0 1`, `reserve_metadata_snap`, `release_metadata_snap`.
   * Resolves to the message's reply text ('' for most).
   */
  message(name: string, message: string): Promise<string>;

  // --- loop devices --------------------------------------------------------------------------
  /** Attach a file to a free loop device (autoclear, direct I/O off). */
  loopAttach(file: string, opts?: { readOnly?: boolean }): Promise<LoopDevice>;
  /** The loop device the file is attached to already, or null. */
  loopFind(file: string): Promise<LoopDevice | null>;
  loopList(): Promise<LoopDevice[]>;
  loopDetach(path: string): Promise<void>;
  /** LOOP_SET_CAPACITY: the loop device takes the backing file's new size. */
  loopSetCapacity(path: string): Promise<void>;

  // --- block devices and filesystems ---------------------------------------------------------
  /** Size of a block device in bytes (BLKGETSIZE64). */
  blockDeviceSize(path: string): Promise<number>;
  /** BLKDISCARD over a byte range of a block device (the whole device when length is omitted). */
  discard(path: string, offsetBytes?: number, lengthBytes?: number): Promise<void>;
  mkfs(path: string, fs: Filesystem, opts?: { label?: string }): Promise<void>;
  /** Grow the filesystem on a (mounted) device to fill it: resize2fs or xfs_growfs. */
  growfs(path: string, mountpoint: string, fs: Filesystem): Promise<void>;
  /**
   * Mount, nosuid and nodev unless `suid` / `dev`. The mountpoint is reached one component at a
   * time from /, never through a symlink (ELOOP); a missing directory is made the same way. Every
   * parent must be one that only root can change (EPERM otherwise), and nothing may be mounted at
   * the mountpoint already (EBUSY: the kernel would stack the mount on top).
   */
  mount(path: string, mountpoint: string, fs: Filesystem, opts?: MountOptions): Promise<void>;
  /**
   * Unmount without following a symlink (UMOUNT_NOFOLLOW; ELOOP for a symlink among the parents).
   * EINVAL when not mounted; EPERM when `device` is given and the mount on top is another's.
   */
  unmount(mountpoint: string, opts?: UnmountOptions): Promise<void>;
  /** The mount table (/proc/self/mountinfo), all entries. */
  mounts(): Promise<MountEntry[]>;
  /**
   * Where a mount's files are seen on this host, when not at the mountpoint: the simulated kernel
   * keeps its mounts under its own directory. Absent: at the mountpoint (the real kernel).
   */
  mountedAt?(mountpoint: string): string;
  /** sync(2) of one filesystem (syncfs) or all when no path is given. */
  sync(mountpoint?: string): Promise<void>;
  /**
   * How long I/O may queue on a pool out of data space before it errors (dm-thin's no_space_timeout,
   * a setting of the dm_thin_pool module). Optional: the simulated kernel fails such writes at once.
   */
  setNoSpaceTimeout?(seconds: number): Promise<void>;
  /**
   * Every thin id in a pool's metadata, ascending. No kernel message lists them: the Linux backend
   * reads the metadata device with thin_ls (thin_dump when that fails) through a metadata snapshot,
   * the simulator its pool model.
   */
  listThinIds(poolDmName: string, metadataDevPath: string): Promise<number[]>;
  /** The bytes one thin id maps in a pool's metadata (what deleting it would lose), read as listThinIds reads. */
  thinMappedBytes(poolDmName: string, metadataDevPath: string, thinId: number): Promise<number>;
  /** Release resources (open libraries, file handles). */
  close(): Promise<void>;
}

/** Where the files of the mount at `mountpoint` are seen on this host (KernelPort.mountedAt). */
export function filesAt(kernel: KernelPort, mountpoint: string): string {
  return kernel.mountedAt?.(mountpoint) ?? mountpoint;
}

// The libc calls node lacks, bound once through koffi for all of thinlayer: the Linux backend's
// device-mapper, loop and block ioctls, mount, umount2 and syncfs, openat and mkdirat; and the file
// calls layers and the simulated kernel need, extended attributes (without following symlinks) and
// mknod for device nodes and fifos.
//
// Every call is synchronous: the kernel answers in well under a millisecond in the common case, and
// a synchronous call lets errno be read before anything else can overwrite it. Each wrapper throws
// KernelError with the errno of the failure (operation and device: the caller's CallSite, or for a
// file call the call's name and the path), so callers never see -1.

import { createRequire } from 'node:module';
import { ERRNO, KernelError } from '../errors/index.ts';
import { makeDevT } from '../kernel/dev-t.ts';

/**
 * koffi and the bindings, loaded by the first call rather than on import: loading the native addon
 * is a noticeable part of a short command's start, and most commands on the simulated kernel never
 * extract a layer or copy a tree.
 */
function bind() {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  // open(2) and openat(2) are variadic in C; on x86-64 and aarch64 a fixed last int argument is
  // passed the same way (it is only read with O_CREAT, which is never used here).
  const c = {
    open: libc.func('int open(const char *path, int flags, uint32_t mode)'),
    openat: libc.func('int openat(int dirfd, const char *path, int flags, uint32_t mode)'),
    mkdirat: libc.func('int mkdirat(int dirfd, const char *path, uint32_t mode)'),
    close: libc.func('int close(int fd)'),
    ioctlPtr: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']),
    ioctlInt: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']),
    mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: libc.func('int umount2(const char *target, int flags)'),
    syncfs: libc.func('int syncfs(int fd)'),
    sync: libc.func('void sync(void)'),
    lsetxattr: libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    llistxattr: libc.func('intptr_t llistxattr(const char *path, void *list, size_t size)'),
    lgetxattr: libc.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)'),
    mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
    utimensat: libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
  };
  return { koffi, c };
}
let bound: ReturnType<typeof bind> | null = null;
const native = () => (bound ??= bind());

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000; // Linux's value on x86-64 and arm64; node's fs constants leave it out
export const O_NOFOLLOW = 0o400000;
export const O_PATH = 0o10000000;
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MNT_DETACH = 2;
export const UMOUNT_NOFOLLOW = 8;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** Where a failure is reported: the KernelError's operation and device. */
export interface CallSite {
  operation: string;
  device: string;
}

/** The file calls, reported with the call's name as the operation and the path as the device. */
export const FILE_CALLS = ['lsetxattr', 'llistxattr', 'lgetxattr', 'mknod', 'openat', 'utimensat'] as const;

/** A failure of one of the file calls below (the host's file system refused it). */
export function isFileCallError(e: unknown): e is KernelError {
  return e instanceof KernelError && (FILE_CALLS as readonly string[]).includes(e.operation);
}

/** Calls `call` with errno cleared, so the errno read after a failure is the call's own. */
function cleared<T>(call: () => T): T {
  native().koffi.errno(0);
  return call();
}

function fail(site: CallSite, detail?: string): never {
  throw new KernelError(site.operation, site.device, native().koffi.errno(), detail);
}

function checked(result: number, site: CallSite, detail?: string): number {
  if (result >= 0) return result;
  fail(site, detail);
}

export function open(path: string, flags: number, site: CallSite): number {
  const { c } = native();
  return checked(
    cleared(() => c.open(path, flags | O_CLOEXEC, 0)),
    site,
    `open ${path}`,
  );
}

/** openat(2): `name` is looked up in the directory `dirfd` refers to, not by a path from /. */
export function openat(dirfd: number, name: string, flags: number, site: CallSite): number {
  const { c } = native();
  return checked(
    cleared(() => c.openat(dirfd, name, flags | O_CLOEXEC, 0)),
    site,
    `open ${name}`,
  );
}

/** mkdirat(2): never follows a symlink at `name` (EEXIST instead). */
export function mkdirat(dirfd: number, name: string, mode: number, site: CallSite): void {
  const { c } = native();
  checked(
    cleared(() => c.mkdirat(dirfd, name, mode)),
    site,
    `mkdir ${name}`,
  );
}

export function close(fd: number): void {
  // close(2) errors after a successful open are not actionable (the fd is gone either way).
  native().c.close(fd);
}

/** Runs `use` with a file descriptor opened for it, closing it afterwards whatever happens. */
export function withFd<T>(path: string, flags: number, site: CallSite, use: (fd: number) => T): T {
  const fd = open(path, flags, site);
  try {
    return use(fd);
  } finally {
    close(fd);
  }
}

/** ioctl with a pointer argument: the kernel reads and writes `arg` in place. */
export function ioctlBuffer(fd: number, request: number, arg: Buffer, site: CallSite): number {
  const { c } = native();
  return checked(
    cleared(() => c.ioctlPtr(fd, request, arg)),
    site,
  );
}

/** ioctl with an integer argument (or none: pass 0). */
export function ioctlValue(fd: number, request: number, arg: number, site: CallSite): number {
  const { c } = native();
  return checked(
    cleared(() => c.ioctlInt(fd, request, arg)),
    site,
  );
}

export function mount(source: string, target: string, fstype: string, flags: number, data: string, site: CallSite): void {
  const { c } = native();
  checked(
    cleared(() => c.mount(source, target, fstype, flags, data)),
    site,
  );
}

export function umount2(target: string, flags: number, site: CallSite): void {
  const { c } = native();
  checked(
    cleared(() => c.umount2(target, flags)),
    site,
  );
}

export function syncfs(fd: number, site: CallSite): void {
  const { c } = native();
  checked(
    cleared(() => c.syncfs(fd)),
    site,
  );
}

export function syncAll(): void {
  native().c.sync();
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  const { c } = native();
  checked(
    cleared(() => c.lsetxattr(path, name, value, value.length, 0)),
    { operation: 'lsetxattr', device: path },
  );
}

/** The names of a file's extended attributes (empty where the file system has none). */
export function llistxattr(path: string): string[] {
  const { koffi, c } = native();
  const site = { operation: 'llistxattr', device: path };
  for (;;) {
    const size = checked(Number(cleared(() => c.llistxattr(path, null, 0))), site);
    if (size === 0) return [];
    const buffer = Buffer.alloc(size);
    const got = Number(c.llistxattr(path, buffer, size));
    if (got < 0) {
      if (koffi.errno() === ERRNO.ERANGE) continue; // grew in between: ask again
      fail(site);
    }
    return buffer
      .toString('utf8', 0, got)
      .split('\0')
      .filter((n) => n !== '');
  }
}

export function lgetxattr(path: string, name: string): Buffer {
  const { koffi, c } = native();
  const site = { operation: 'lgetxattr', device: path };
  for (;;) {
    const size = checked(Number(cleared(() => c.lgetxattr(path, name, null, 0))), site);
    const buffer = Buffer.alloc(size);
    const got = Number(c.lgetxattr(path, name, buffer, size));
    if (got < 0) {
      if (koffi.errno() === ERRNO.ERANGE) continue;
      fail(site);
    }
    return buffer.subarray(0, got);
  }
}

/** mknod(2): a device node (S_IFCHR, S_IFBLK, with its major and minor) or a fifo (S_IFIFO). */
export function mknod(path: string, typeAndMode: number, major = 0, minor = 0): void {
  const { c } = native();
  checked(
    cleared(() => c.mknod(path, typeAndMode, makeDevT(major, minor))),
    { operation: 'mknod', device: path },
  );
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

/**
 * Sets a path's access and modification times to the nanosecond, without following a symlink
 * (node's utimes takes seconds as a double, which loses the nanoseconds a copy must keep).
 */
export function lutimesExact(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const { c } = native();
  const times = Buffer.alloc(32);
  times.writeBigInt64LE(atimeNs / 1_000_000_000n, 0);
  times.writeBigInt64LE(atimeNs % 1_000_000_000n, 8);
  times.writeBigInt64LE(mtimeNs / 1_000_000_000n, 16);
  times.writeBigInt64LE(mtimeNs % 1_000_000_000n, 24);
  checked(
    cleared(() => c.utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW)),
    { operation: 'utimensat', device: path },
  );
}

// The few libc calls the Linux backend needs, bound through koffi. Every call is synchronous: the
// kernel answers device-mapper, loop and block ioctls in well under a millisecond in the common
// case, and a synchronous call lets errno be read before anything else can overwrite it.
// Each wrapper throws KernelError with the errno of the failure, so callers never see -1.

import koffi from 'koffi';
import { KernelError } from '../../errors/index.ts';

const libc = koffi.load('libc.so.6');

// open(2) is variadic in C; on x86-64 and aarch64 a fixed third int argument is passed the same way.
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
};

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
export const O_NOFOLLOW = 0o400000;
export const O_PATH = 0o10000000;
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MNT_DETACH = 2;
export const UMOUNT_NOFOLLOW = 8;

/** Where a failure is reported: the KernelError's operation and device. */
export interface CallSite {
  operation: string;
  device: string;
}

function checked(result: number, site: CallSite, detail?: string): number {
  if (result >= 0) return result;
  throw new KernelError(site.operation, site.device, koffi.errno(), detail);
}

export function open(path: string, flags: number, site: CallSite): number {
  koffi.errno(0);
  return checked(c.open(path, flags | O_CLOEXEC, 0), site, `open ${path}`);
}

/** openat(2): `name` is looked up in the directory `dirfd` refers to, not by a path from /. */
export function openat(dirfd: number, name: string, flags: number, site: CallSite): number {
  koffi.errno(0);
  return checked(c.openat(dirfd, name, flags | O_CLOEXEC, 0), site, `open ${name}`);
}

/** mkdirat(2): never follows a symlink at `name` (EEXIST instead). */
export function mkdirat(dirfd: number, name: string, mode: number, site: CallSite): void {
  koffi.errno(0);
  checked(c.mkdirat(dirfd, name, mode), site, `mkdir ${name}`);
}

export function close(fd: number): void {
  // close(2) errors after a successful open are not actionable (the fd is gone either way).
  c.close(fd);
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
  koffi.errno(0);
  return checked(c.ioctlPtr(fd, request, arg), site);
}

/** ioctl with an integer argument (or none: pass 0). */
export function ioctlValue(fd: number, request: number, arg: number, site: CallSite): number {
  koffi.errno(0);
  return checked(c.ioctlInt(fd, request, arg), site);
}

export function mount(source: string, target: string, fstype: string, flags: number, data: string, site: CallSite): void {
  koffi.errno(0);
  checked(c.mount(source, target, fstype, flags, data), site);
}

export function umount2(target: string, flags: number, site: CallSite): void {
  koffi.errno(0);
  checked(c.umount2(target, flags), site);
}

export function syncfs(fd: number, site: CallSite): void {
  koffi.errno(0);
  checked(c.syncfs(fd), site);
}

export function syncAll(): void {
  c.sync();
}

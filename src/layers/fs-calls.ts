// The file-system calls node lacks, bound from libc through koffi: extended attributes (without
// following symlinks), mknod for device nodes and fifos, and openat for opening a directory
// beneath another one component by component. Failures throw node-style errors (with
// `code` and `errno`), so callers treat them like any other fs error.

import { makeDevT } from '../kernel/dev-t.ts';
import { createRequire } from 'node:module';
import { closeSync, constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';

/**
 * koffi and the libc bindings, loaded by the first call rather than on import: loading the native
 * addon is a noticeable part of a short command's start, and most commands never extract a layer
 * or copy a tree.
 */
function bind() {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const c = {
    lsetxattr: libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    llistxattr: libc.func('intptr_t llistxattr(const char *path, void *list, size_t size)'),
    lgetxattr: libc.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)'),
    mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
    // openat's mode is variadic; it is passed (as 0) but only read with O_CREAT, which is never used here.
    openat: libc.func('int openat(int dirfd, const char *path, int flags, uint32_t mode)'),
    utimensat: libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
  };
  return { koffi, c };
}
let bound: ReturnType<typeof bind> | null = null;
const native = () => (bound ??= bind());

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

function fail(call: string, path: string): never {
  const { koffi } = native();
  const errno = koffi.errno();
  const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
  const error = new Error(`${code}: ${call} ${path}`) as NodeJS.ErrnoException;
  error.code = code;
  error.errno = errno;
  error.syscall = call;
  error.path = path;
  throw error;
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

/**
 * Sets a path's access and modification times to the nanosecond, without following a symlink
 * (node's utimes takes seconds as a double, which loses the nanoseconds a copy must keep).
 */
export function lutimesExact(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const { koffi, c } = native();
  const times = Buffer.alloc(32);
  times.writeBigInt64LE(atimeNs / 1_000_000_000n, 0);
  times.writeBigInt64LE(atimeNs % 1_000_000_000n, 8);
  times.writeBigInt64LE(mtimeNs / 1_000_000_000n, 16);
  times.writeBigInt64LE(mtimeNs % 1_000_000_000n, 24);
  koffi.errno(0);
  if (c.utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) < 0) fail('utimensat', path);
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  const { koffi, c } = native();
  koffi.errno(0);
  if (c.lsetxattr(path, name, value, value.length, 0) < 0) fail('lsetxattr', path);
}

/** The names of a file's extended attributes (empty where the file system has none). */
export function llistxattr(path: string): string[] {
  const { koffi, c } = native();
  for (;;) {
    koffi.errno(0);
    const size = Number(c.llistxattr(path, null, 0));
    if (size < 0) fail('llistxattr', path);
    if (size === 0) return [];
    const buffer = Buffer.alloc(size);
    const got = Number(c.llistxattr(path, buffer, size));
    if (got < 0) {
      if (koffi.errno() === constants.errno.ERANGE) continue; // grew in between: ask again
      fail('llistxattr', path);
    }
    return buffer.toString('utf8', 0, got).split('\0').filter((n) => n !== '');
  }
}

export function lgetxattr(path: string, name: string): Buffer {
  const { koffi, c } = native();
  for (;;) {
    koffi.errno(0);
    const size = Number(c.lgetxattr(path, name, null, 0));
    if (size < 0) fail('lgetxattr', path);
    const buffer = Buffer.alloc(size);
    const got = Number(c.lgetxattr(path, name, buffer, size));
    if (got < 0) {
      if (koffi.errno() === constants.errno.ERANGE) continue;
      fail('lgetxattr', path);
    }
    return buffer.subarray(0, got);
  }
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;


export function mknod(path: string, typeAndMode: number, major = 0, minor = 0): void {
  const { koffi, c } = native();
  koffi.errno(0);
  if (c.mknod(path, typeAndMode, makeDevT(major, minor)) < 0) fail('mknod', path);
}

const O_CLOEXEC = 0o2000000; // Linux's value on x86-64 and arm64; node's fs constants leave it out
const OPEN_DIR_BENEATH = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW | O_CLOEXEC;

/**
 * The directory at `components` beneath the directory open as `dirFd`, opened one component at a
 * time with O_NOFOLLOW: no symlink anywhere on the way is followed, whoever made it. Returns the
 * descriptor (the caller closes it), or null when a component is missing, a symlink or not a
 * directory.
 */
export function openDirectoryBeneath(dirFd: number, components: readonly string[]): number | null {
  const { koffi, c } = native();
  let fd = dirFd;
  for (const name of components) {
    koffi.errno(0);
    const next = c.openat(fd, name, OPEN_DIR_BENEATH, 0) as number;
    const errno = koffi.errno();
    if (fd !== dirFd) closeSync(fd);
    if (next < 0) {
      if (errno === constants.errno.ENOENT || errno === constants.errno.ELOOP || errno === constants.errno.ENOTDIR) return null;
      const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
      const error = new Error(`${code}: openat ${components.join('/')}`) as NodeJS.ErrnoException;
      Object.assign(error, { code, errno, syscall: 'openat', path: components.join('/') });
      throw error;
    }
    fd = next;
  }
  return fd;
}

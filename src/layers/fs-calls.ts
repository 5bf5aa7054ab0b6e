// A directory beneath another, opened one component at a time with openat and O_NOFOLLOW (the libc
// binding is src/host/libc.ts), so that no symlink on the way is followed, whoever made it.

import { closeSync } from 'node:fs';
import { isKernelError } from '../errors/index.ts';
import { O_DIRECTORY, O_NOFOLLOW, O_RDONLY, openat } from '../host/libc.ts';

const OPEN_DIR_BENEATH = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/**
 * The directory at `components` beneath the directory open as `dirFd`, opened one component at a
 * time with O_NOFOLLOW: no symlink anywhere on the way is followed, whoever made it. Returns the
 * descriptor (the caller closes it), or null when a component is missing, a symlink or not a
 * directory. Any other failure is a KernelError of `openat` naming the path beneath.
 */
export function openDirectoryBeneath(dirFd: number, components: readonly string[]): number | null {
  const site = { operation: 'openat', device: components.join('/') };
  let fd = dirFd;
  for (const name of components) {
    let next: number;
    try {
      next = openat(fd, name, OPEN_DIR_BENEATH, site);
    } catch (e) {
      if (isKernelError(e, 'ENOENT') || isKernelError(e, 'ELOOP') || isKernelError(e, 'ENOTDIR')) return null;
      throw e;
    } finally {
      if (fd !== dirFd) closeSync(fd);
    }
    fd = next;
  }
  return fd;
}

// Reaching a mountpoint without following symlinks: one component at a time from /, each opened
// with O_PATH | O_NOFOLLOW relative to the directory before it (openat), so a symlink anywhere is
// seen as itself and refused, and a directory swapped after it was checked is never reached. A
// missing directory is made with mkdirat in the directory already open. The mount itself then
// targets the open descriptor (/proc/self/fd/N), the very directory that was checked.

import fs from 'node:fs';
import { ERRNO, KernelError } from '../../errors/index.ts';
import { untrustedDirectory } from '../../host/path-trust.ts';
import { close, mkdirat, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, open, openat, type CallSite } from '../../host/libc.ts';

/**
 * An O_PATH descriptor of the mountpoint's directory; the caller closes it. Every directory above it
 * must be one only root can change (EPERM). With `create`, missing directories are made (mode 0755).
 */
export function openMountpoint(mountpoint: string, site: CallSite, opts: { create: boolean }): number {
  if (!mountpoint.startsWith('/')) throw new KernelError(site.operation, mountpoint, ERRNO.EINVAL, 'the mountpoint must be absolute');
  const names = mountpoint.split('/').filter((n) => n !== '' && n !== '.');
  if (names.includes('..')) throw new KernelError(site.operation, mountpoint, ERRNO.EINVAL, 'the mountpoint must not contain ".."');
  let dirfd = open('/', O_PATH | O_DIRECTORY | O_RDONLY, site);
  let reached = '';
  try {
    for (const name of names) {
      const above = reached || '/';
      const why = untrustedDirectory(fs.fstatSync(dirfd));
      if (why) throw new KernelError(site.operation, mountpoint, ERRNO.EPERM, `${above}: ${why}; whoever can change it could redirect the mount`);
      reached = `${reached}/${name}`;
      const fd = openComponent(dirfd, name, site, opts.create);
      close(dirfd);
      dirfd = fd;
      const st = fs.fstatSync(dirfd);
      if (st.isSymbolicLink()) throw new KernelError(site.operation, mountpoint, ERRNO.ELOOP, `${reached} is a symlink; thinlayer never mounts through one`);
      if (!st.isDirectory()) throw new KernelError(site.operation, mountpoint, ERRNO.ENOTDIR, `${reached} is not a directory`);
    }
    const fd = dirfd;
    dirfd = -1;
    return fd;
  } finally {
    if (dirfd >= 0) close(dirfd);
  }
}

function openComponent(dirfd: number, name: string, site: CallSite, create: boolean): number {
  const flags = O_PATH | O_NOFOLLOW;
  try {
    return openat(dirfd, name, flags, site);
  } catch (e) {
    if (!(create && e instanceof KernelError && e.errno === ERRNO.ENOENT)) throw e;
  }
  try {
    mkdirat(dirfd, name, 0o755, site);
  } catch (e) {
    // EEXIST: made a moment ago by someone else; opened and judged below like any other.
    if (!(e instanceof KernelError && e.errno === ERRNO.EEXIST)) throw e;
  }
  return openat(dirfd, name, flags, site);
}

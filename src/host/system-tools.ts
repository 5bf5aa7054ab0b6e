// The external programs thinlayer runs as root (mkfs, resize2fs, xfs_growfs, thin_ls, thin_dump,
// thin_check, zstd) are looked up in the fixed system directories only, never through the caller's
// PATH: a PATH with a writable directory first (`sudo -E`, a user's ~/bin) would otherwise let
// whoever writes there run code as root. The program found must be a root-owned regular file that
// neither group nor others can write.

import { statSync, type Stats } from 'node:fs';
import { ERRNO, KernelError } from '../errors/index.ts';

export const SYSTEM_TOOL_DIRS: readonly string[] = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

export type SystemTool = 'mkfs.ext4' | 'mkfs.xfs' | 'resize2fs' | 'xfs_growfs' | 'thin_check' | 'thin_ls' | 'thin_dump' | 'zstd';

const found = new Map<string, string>();

/**
 * The absolute path of a system program. Throws KernelError ENOENT (operation `operation`) when no
 * fixed directory holds it, and EACCES when the one found could be changed by someone but root.
 */
export function systemTool(name: SystemTool, operation: string = name): string {
  const known = found.get(name);
  if (known !== undefined) return known;
  const path = findProgram(name, SYSTEM_TOOL_DIRS, operation);
  found.set(name, path);
  return path;
}

/** The first executable `name` in `dirs`, checked as systemTool says (exported for tests). */
export function findProgram(name: string, dirs: readonly string[], operation: string = name): string {
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    let st: Stats;
    try {
      st = statSync(path); // follows symlinks: /sbin -> usr/sbin, mkfs.ext4 -> mke2fs
    } catch {
      continue;
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) continue;
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new KernelError(
        operation,
        path,
        ERRNO.EACCES,
        `${path} is not a root-owned program that only root can change (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}); thinlayer will not run it as root`,
      );
    }
    return path;
  }
  throw new KernelError(operation, name, ERRNO.ENOENT, `${name} not found in ${dirs.join(', ')} (the caller's PATH is not searched)`);
}

// The fs.grow action: a device's filesystem grown to fill its device. resize2fs and xfs_growfs grow
// a mounted filesystem online; a device that is active but not mounted is mounted for the grow at
// a private mountpoint inside the state dir (as layer.commit mounts a layer), and unmounted after,
// so that its filesystem is full size whoever mounts it next.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DmInfo } from '../kernel/kernel-port.ts';
import type { Filesystem } from '../model/manifest.ts';
import { isKernelError } from '../errors/index.ts';
import type { ActionContext } from './action-context.ts';
import type { StepArgs, StepResult } from '../model/step-contract.ts';

export async function growFilesystem(ctx: ActionContext, a: StepArgs<'fs.grow'>, info: DmInfo): Promise<StepResult<'fs.grow'>> {
  const fs = a.filesystem as Filesystem;
  if (a.mountpoint) {
    await ctx.kernel.growfs(info.devPath, a.mountpoint, fs);
    return {};
  }
  const root = ctx.stateDir.path('mnt');
  await mkdir(root, { recursive: true, mode: 0o700 });
  const where = join(root, `grow-${a.dmName}`);
  await ctx.kernel.mount(info.devPath, where, fs, { readOnly: false, discard: true });
  try {
    await ctx.kernel.growfs(info.devPath, where, fs);
  } finally {
    await ctx.kernel.unmount(where).catch((e) => (isKernelError(e, 'EBUSY') ? ctx.kernel.unmount(where, { lazy: true }) : Promise.reject(e)));
  }
  return {};
}

// The layer.commit action: apply a layer's content into its freshly made snapshot and only then
// call it committed. The snapshot is activated, mounted read-write at a private mountpoint inside
// the state dir, filled, synced, unmounted and deactivated. If anything fails the step fails, the
// layer stays uncommitted, and the next plan deletes the device and builds it again: a half-applied
// layer is never recorded as committed.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionContext } from './action-context.ts';
import type { StepArgs, StepResult, ThinArgs } from '../model/step-contract.ts';
import { applyLayer } from '../layers/apply-layer.ts';
import { isKernelError } from '../errors/index.ts';
import { chainHex } from '../plan/layer-chain.ts';
import { forgetDevice } from '../engine/device-memo.ts';
import { filesAt } from '../kernel/kernel-port.ts';

export async function commitLayer(
  ctx: ActionContext,
  a: StepArgs<'layer.commit'>,
  activate: (ctx: ActionContext, a: ThinArgs) => Promise<{ devPath: string; major: number; minor: number }>,
): Promise<StepResult<'layer.commit'>> {
  const content = a.content;
  const mountRoot = ctx.stateDir.path('mnt');
  await mkdir(mountRoot, { recursive: true, mode: 0o700 });
  const mountpoint = join(mountRoot, chainHex(a.chainId));
  const info = await activate(ctx, a);
  let mounted = false;
  try {
    // nosuid, nodev: the archive's setuid files and device nodes are written, never used, here.
    await ctx.kernel.mount(info.devPath, mountpoint, a.filesystem, { readOnly: false, discard: true });
    mounted = true;
    const task = `layer ${a.label}`;
    const result = await applyLayer(content, filesAt(ctx.kernel, mountpoint), {
      maxBytes: a.sizeBytes,
      allowDevices: a.allowDevices,
      signal: ctx.signal,
      onProgress: (done, total) => ctx.reporter?.notify({ code: 'progress', task, done, total, unit: 'bytes' }),
    });
    await ctx.kernel.sync(mountpoint);
    return { digest: a.chainId, diffId: result.diffId, files: result.files, bytes: result.bytes };
  } finally {
    const device = { major: info.major, minor: info.minor };
    if (mounted)
      await ctx.kernel
        .unmount(mountpoint, { device })
        .catch((e) => (isKernelError(e, 'EBUSY') ? ctx.kernel.unmount(mountpoint, { lazy: true, device }) : Promise.reject(e)));
    forgetDevice(ctx, a.dmName, false);
    await ctx.kernel
      .remove(a.dmName)
      .catch((e) => (isKernelError(e, 'EBUSY') ? ctx.kernel.remove(a.dmName, { deferred: true }) : isKernelError(e, 'ENXIO') ? undefined : Promise.reject(e)));
  }
}

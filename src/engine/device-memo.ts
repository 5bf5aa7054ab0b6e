// What one run has learned about device-mapper devices, so that steps do not ask the kernel again.
// Within a run thinlayer holds the lock and is the only one changing its devices (their uuids carry
// its prefix), so a device's info stays true until one of the run's own steps creates or removes
// it; those steps record the change here. The run starts from the observation its plan was made
// from, which lists every device thinlayer owns: a name of ours that is not there is absent.

import type { DmInfo } from '../kernel/kernel-port.ts';
import type { ActionContext, RunMemo } from '../actions/action-context.ts';
import { isOwnedDmName } from '../domain/names.ts';

/** The device's info: from this run's memo, else from the kernel (and remembered). null: no such device. */
export async function deviceInfo(ctx: ActionContext, dmName: string): Promise<DmInfo | null> {
  const known = knownDevice(ctx, dmName);
  if (known !== undefined) return known;
  const info = await ctx.kernel.info(dmName);
  rememberDevice(ctx, dmName, info);
  return info;
}

/** Whether the run knows the device is absent (null), present (its info), or has not looked (undefined). */
export function knownDevice(ctx: ActionContext, dmName: string): DmInfo | null | undefined {
  const known = ctx.memo?.devices?.get(dmName);
  if (known !== undefined) return known;
  if (ctx.memo?.unsure?.has(dmName)) return undefined;
  return ctx.memo?.allOwnedListed && isOwnedDmName(dmName) ? null : undefined;
}

/** Starts the run's memo from an observation of every device thinlayer owns. */
export function seedDevices(memo: RunMemo, owned: Record<string, DmInfo>): void {
  memo.devices = new Map(Object.entries(owned));
  memo.allOwnedListed = true;
}

export function rememberDevice(ctx: ActionContext, dmName: string, info: DmInfo | null): void {
  if (!ctx.memo) return;
  ctx.memo.devices ??= new Map();
  ctx.memo.devices.set(dmName, info);
  ctx.memo.unsure?.delete(dmName);
}

/** After a remove: gone, or (deferred) going; either way the next step asks the kernel. */
export function forgetDevice(ctx: ActionContext, dmName: string, gone: boolean): void {
  if (!ctx.memo) return;
  ctx.memo.devices ??= new Map();
  if (gone) {
    ctx.memo.devices.set(dmName, null);
  } else {
    ctx.memo.devices.delete(dmName);
    // Unknown now: the kernel is asked, even where the observation listed every device.
    ctx.memo.unsure = (ctx.memo.unsure ?? new Set()).add(dmName);
  }
}

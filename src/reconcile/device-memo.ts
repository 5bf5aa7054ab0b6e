// What one run has learned about device-mapper devices, so that steps do not ask the kernel again.
// Within a run thinlayer holds the lock and is the only one changing its devices (their uuids carry
// its prefix), so a device's info stays true until one of the run's own steps creates or removes
// it; those steps record the change here. A pool step forgets everything (executePlan).

import type { DmInfo } from '../kernel/port.ts';
import type { ActionContext } from './actions.ts';

/** The device's info: from this run's memo, else from the kernel (and remembered). null: no such device. */
export async function deviceInfo(ctx: ActionContext, dmName: string): Promise<DmInfo | null> {
  const known = ctx.memo?.devices?.get(dmName);
  if (known !== undefined) return known;
  const info = await ctx.kernel.info(dmName);
  rememberDevice(ctx, dmName, info);
  return info;
}

/** Whether the run knows the device is absent (null), present (its info), or has not looked (undefined). */
export function knownDevice(ctx: ActionContext, dmName: string): DmInfo | null | undefined {
  return ctx.memo?.devices?.get(dmName);
}

export function rememberDevice(ctx: ActionContext, dmName: string, info: DmInfo | null): void {
  if (!ctx.memo) return;
  (ctx.memo.devices ??= new Map()).set(dmName, info);
}

/** After a remove: gone, or (deferred) going; either way the next step asks the kernel. */
export function forgetDevice(ctx: ActionContext, dmName: string, gone: boolean): void {
  if (!ctx.memo?.devices) return;
  if (gone) ctx.memo.devices.set(dmName, null);
  else ctx.memo.devices.delete(dmName);
}

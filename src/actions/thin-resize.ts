// The thin.resize action: a device's raised size. A live thin device takes its new length by a
// table reload (load into the inactive slot, suspend, resume), online, mounted or not: dm-thin maps
// the new sectors as it maps any unwritten ones, to nothing until written. A device that is not
// live only has its record changed; its next activation loads the new length. Idempotent: the table
// only ever grows to the stated length, so after a crash the step runs again from the top.

import type { DmTarget } from '../kernel/kernel-port.ts';
import { StateError } from '../errors/index.ts';
import type { ActionContext } from './action-context.ts';
import type { StepArgs, StepResult } from '../model/step-contract.ts';
import { forgetDevice } from '../engine/device-memo.ts';

export async function resizeThin(ctx: ActionContext, a: StepArgs<'thin.resize'>, wanted: DmTarget): Promise<StepResult<'thin.resize'>> {
  const info = await ctx.kernel.info(a.dmName);
  if (info?.liveTable) {
    if (info.uuid !== a.uuid)
      throw new StateError(`a device named ${a.dmName} exists with uuid "${info.uuid}": thinlayer does not touch devices it does not own`, 'E_NOT_OWNED');
    const live = await ctx.kernel.table(a.dmName);
    // Only the table thinlayer loaded itself is reloaded: one thin target, this pool, this thin id.
    if (live.length !== 1 || live[0].type !== 'thin' || live[0].params.trim() !== wanted.params) {
      throw new StateError(
        `${a.dmName} has the table ${JSON.stringify(live.map((t) => `${t.type} ${t.params}`).join('; '))}, not thin ${wanted.params}: thinlayer does not resize a device it did not load`,
        'E_NOT_OWNED',
      );
    }
    if (live[0].length < wanted.length || info.suspended) {
      if (live[0].length < wanted.length) await ctx.kernel.load(a.dmName, [wanted]);
      await ctx.kernel.suspend(a.dmName);
      await ctx.kernel.resume(a.dmName);
    }
    forgetDevice(ctx, a.dmName, false);
  }
  return { sizeBytes: a.sizeBytes };
}

// The action of an `orphan.delete` step: delete a thin id the log does not own, under the same
// transaction-id fence as every other metadata change (src/reconcile/actions.ts): the executor
// reads the pool's transaction id into the intent, the message deletes the id, and the id moves
// on by one. Recovery compares the pool's id with the intent's to know whether the step landed.
// Idempotent: ENODATA (the id is gone already) counts as done.

import type { ActionContext } from '../reconcile/actions.ts';
import { InternalError, isKernelError } from '../errors/index.ts';

export async function deleteOrphan(ctx: ActionContext, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const thinId = args.thinId;
  if (typeof thinId !== 'number' || !Number.isSafeInteger(thinId)) throw new InternalError(`orphan.delete without a thin id: ${JSON.stringify(args)}`);
  if (ctx.txid === undefined) throw new InternalError(`orphan.delete of thin id ${thinId} has no transaction id`);
  try {
    await ctx.kernel.message(ctx.poolDmName, `delete ${thinId}`);
  } catch (e) {
    if (!isKernelError(e, 'ENODATA')) throw e;
  }
  await ctx.kernel.message(ctx.poolDmName, `set_transaction_id ${ctx.txid} ${ctx.txid + 1}`);
  return { txid: ctx.txid + 1, thinId };
}

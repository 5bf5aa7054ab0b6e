// Execute a plan: for every step, an intent event (durable) before the kernel is touched and a
// done or failed event after. The pool transaction id read just before a metadata step is written
// into its intent: it is the fence that tells recovery whether the step reached the pool.

import type { Step } from '../plan/steps.ts';
import { METADATA_OPS } from '../plan/steps.ts';
import { ACTIONS, type Action, type ActionContext } from './actions.ts';
import { ThinlayerError, InternalError, errorRecord } from '../errors/index.ts';
import type { Session } from './session.ts';
import type { Reporter } from '../messages/port.ts';
import type { DmInfo } from '../kernel/port.ts';
import { seedDevices } from './device-memo.ts';

export interface ExecuteOptions {
  runId: string;
  reporter: Reporter;
  signal?: AbortSignal;
  /** Index of the first step in this run (several passes share one run id). */
  firstIndex: number;
  /** The devices thinlayer owns as observed for this plan (every one of them): the run's first knowledge of them. */
  observed?: Record<string, DmInfo>;
  /** Actions for ops beyond the reconciler's own (e.g. gc's orphan.delete). */
  actions?: Partial<Record<Step['op'], Action>>;
}

async function readTxid(ctx: ActionContext): Promise<number> {
  const line = (await ctx.kernel.status(ctx.poolDmName)).find((l) => l.type === 'thin-pool');
  return line ? Number(line.params.split(' ')[0]) : 0;
}

/** Runs the steps in order; answers how many were done. When `signal` aborts, it stops between steps (or a step that stops early is recorded as failed) and answers. */
export async function executePlan(session: Session, steps: Step[], poolDmName: string, opts: ExecuteOptions): Promise<number> {
  let done = 0;
  // Within one run thinlayer holds the lock and is the pool's only writer: the transaction id is read
  // once and then followed from each step's result, and the pool's major:minor is looked up once.
  let knownTxid: number | undefined;
  const memo: NonNullable<ActionContext['memo']> = {};
  if (opts.observed) seedDevices(memo, opts.observed);
  for (const [i, step] of steps.entries()) {
    if (opts.signal?.aborted) break; // a signal asked us to stop: finish nothing new, the last step is recorded
    const stepId = `${opts.runId}:${opts.firstIndex + i}`;
    if (step.op.startsWith('pool.')) delete memo.poolDevT; // the pool device may come or go
    if (step.op === 'pool.deactivate') {
      // Its thin devices went before it (or go with it, deferred): from here on, ask the kernel.
      delete memo.devices;
      delete memo.allOwnedListed;
    }
    const ctx: ActionContext = { kernel: session.kernel, stateDir: session.stateDir, poolDmName, reporter: opts.reporter, signal: opts.signal, memo };
    if (METADATA_OPS.has(step.op)) ctx.txid = knownTxid ?? (await readTxid(ctx));
    opts.reporter.notify({ code: 'step.start', step, index: i, total: steps.length });
    await session.append([{ type: 'step.intent', stepId, op: step.op, target: step.target, args: step.args, ...(ctx.txid !== undefined ? { txid: ctx.txid } : {}) }]);
    let result: Record<string, unknown>;
    try {
      const action = opts.actions?.[step.op] ?? ACTIONS[step.op];
      if (!action) throw new InternalError(`no action for step op ${step.op}`);
      result = await action(ctx, step.args);
    } catch (e) {
      const error = errorRecord(e);
      await session.append([{ type: 'step.failed', stepId, op: step.op, target: step.target, error }]);
      // A signal that stopped a long step early (a layer extraction checks it between entries) is
      // an interruption, not a failure of the run: the step is recorded and the next run redoes it.
      if (opts.signal?.aborted) return done;
      opts.reporter.notify({ code: 'step.failed', step, error: error.message });
      throw e;
    }
    if (typeof result.txid === 'number') knownTxid = result.txid;
    // The next intent's fdatasync makes the outcome durable: a crash before it loses no more than a
    // crash just before this append would, an intent in doubt that recovery rolls forward.
    await session.append([{ type: 'step.done', stepId, op: step.op, target: step.target, result }], { durable: false });
    opts.reporter.notify({ code: 'step.done', step, index: i, total: steps.length });
    done += 1;
  }
  return done;
}

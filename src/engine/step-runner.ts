// The one discipline every kernel step follows, whoever plans it (the reconciler, `pool grow`, gc):
// a step.intent event (durable) before the kernel is touched, the op's action, then a step.done or
// step.failed event. A metadata step reads the pool's transaction id first and writes it into its
// intent: the fence that tells recovery whether the step reached the pool. Callers tell the user
// about steps (through the message port); the runner only runs and records them.

import { METADATA_OPS, type Step, type StepOp, type StepResult } from '../model/step-contract.ts';
import { intentEvent, doneEvent } from '../events/step-events.ts';
import type { StepIntentEvent } from '../model/events.ts';
import type { DmInfo } from '../kernel/kernel-port.ts';
import type { Reporter } from '../messages/message-port.ts';
import { errorRecord } from '../errors/index.ts';
import { readTransactionId } from '../kernel/thin-pool.ts';
import { ACTIONS } from '../actions/action-table.ts';
import type { Action, ActionContext, ActionTable, RunMemo } from '../actions/action-context.ts';
import { seedDevices } from './device-memo.ts';
import type { Session } from './session.ts';

/** A run's id: unique on this host (time and pid); its steps are `${runId}:${index}`. */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${process.pid}`;
}

export interface StepRunnerOptions {
  /** The pool's dm name, for thin tables and messages ('' when there is no pool). */
  poolDmName: string;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** The devices thinlayer owns as observed for the plan (every one of them): the run's first knowledge of them. */
  observed?: Record<string, DmInfo>;
  /**
   * Make each outcome durable at once. Off for a run of many steps: the next intent's fdatasync
   * makes an outcome durable, and losing it is the same as a crash just before it (an intent in
   * doubt that recovery settles). On when nothing follows that would.
   */
  durableOutcomes?: boolean;
}

const TABLE: ActionTable = ACTIONS;

function actionOf<O extends StepOp>(op: O): Action<O> {
  return TABLE[op];
}

/** Runs steps in one session. Within a run thinlayer holds the lock and is the pool's only writer. */
export class StepRunner {
  /** The transaction id as this run's own steps left it: read once, then followed from each result. */
  private knownTxid: number | undefined;
  /** What this run has learned about devices (device-memo.ts). */
  private readonly memo: RunMemo = {};

  constructor(
    private readonly session: Session,
    private readonly opts: StepRunnerOptions,
  ) {
    if (opts.observed) seedDevices(this.memo, opts.observed);
  }

  /** One step: its intent, its action, its outcome. Throws what the action threw, after logging it. */
  async run(step: Step, stepId: string): Promise<StepResult<StepOp>> {
    if (step.op.startsWith('pool.')) delete this.memo.poolDevT; // the pool device may come or go
    if (step.op === 'pool.deactivate') {
      // Its thin devices went before it (or go with it, deferred): from here on, ask the kernel.
      delete this.memo.devices;
      delete this.memo.allOwnedListed;
    }
    const ctx = this.context();
    if (METADATA_OPS.has(step.op)) ctx.txid = this.knownTxid ?? (await readTransactionId(ctx.kernel, ctx.poolDmName));
    await this.session.append([intentEvent(step.op, stepId, step.target, step.args, ctx.txid)]);
    return this.settle(step, stepId, ctx, false);
  }

  /**
   * Finishes a step whose intent a crash left without an outcome, by running its action again
   * (every action is idempotent); the outcome is marked recovered.
   */
  async resume(intent: StepIntentEvent): Promise<StepResult<StepOp>> {
    const step = { op: intent.op, target: intent.target, args: intent.args, impact: 'update', reason: 'finish an interrupted step' } as Step;
    const ctx = this.context();
    if (intent.txid !== undefined) ctx.txid = intent.txid;
    return this.settle(step, intent.stepId, ctx, true);
  }

  private context(): ActionContext {
    const { session, opts } = this;
    return { kernel: session.kernel, stateDir: session.stateDir, poolDmName: opts.poolDmName, reporter: opts.reporter, signal: opts.signal, memo: this.memo };
  }

  private async settle(step: Step, stepId: string, ctx: ActionContext, recovered: boolean): Promise<StepResult<StepOp>> {
    let result: StepResult<StepOp>;
    try {
      result = await actionOf(step.op)(ctx, step.args);
    } catch (e) {
      await this.session.append([{ type: 'step.failed', stepId, op: step.op, target: step.target, error: errorRecord(e) }]);
      throw e;
    }
    if ('txid' in result && typeof result.txid === 'number') this.knownTxid = result.txid;
    await this.session.append([doneEvent(step.op, stepId, step.target, result, recovered)], { durable: this.opts.durableOutcomes === true });
    return result;
  }
}

// Run a gc plan inside a locked session. Every deletion goes through the one step runner, exactly
// as the reconciler's steps do: a step.intent (with the pool's transaction id for metadata changes)
// before the kernel is touched, a step.done or step.failed after. Orphan deletes that a crash
// interrupted are settled first, by the fence: if the pool's transaction id moved one past the
// intent's, the delete landed.

import type { Session } from '../engine/session.ts';
import type { Reporter } from '../messages/message-port.ts';
import { withRun } from '../engine/with-run.ts';
import { newRunId } from '../engine/step-runner.ts';
import { readTransactionId } from '../kernel/thin-pool.ts';
import { ORPHAN_DELETE, type GcPlan } from './gc-plan.ts';

export interface GcResult {
  runId: string;
  settled: number;
  steps: number;
  /** SIGINT or SIGTERM (`signal` aborted) stopped it between steps: `steps` of `plan.steps` were taken. */
  interrupted: boolean;
}

export async function runGc(session: Session, plan: GcPlan, poolDmName: string, reporter: Reporter, signal?: AbortSignal): Promise<GcResult> {
  if (plan.steps.length === 0 && plan.settle.length === 0) return { runId: newRunId(), settled: 0, steps: 0, interrupted: false };
  return withRun(
    session,
    'gc',
    async (run) => {
      for (const s of plan.settle) {
        const txid = await readTransactionId(session.kernel, poolDmName);
        const landed = s.txid !== undefined && txid === s.txid + 1;
        await session.append([
          {
            type: 'recovery.note',
            kind: 'intent-resolved',
            detail: { stepId: s.stepId, op: ORPHAN_DELETE, thinId: s.thinId, intentTxid: s.txid ?? null, poolTxid: txid, landed },
          },
          {
            type: 'step.done',
            stepId: s.stepId,
            op: ORPHAN_DELETE,
            target: `thin:${s.thinId}`,
            result: landed ? { txid, thinId: s.thinId } : { thinId: s.thinId },
            recovered: true,
          },
        ]);
      }
      // The reconciler's own executor: the same intents, fences and outcomes.
      const done = await run.execute(session, plan.steps, poolDmName, { reporter, signal });
      const interrupted = signal?.aborted === true && done < plan.steps.length;
      return { runId: run.runId, settled: plan.settle.length, steps: done, interrupted };
    },
    { outcome: (r) => (r.interrupted ? 'interrupted' : 'converged') },
  );
}

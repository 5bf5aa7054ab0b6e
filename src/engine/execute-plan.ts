// Execute a plan: every step through the one step runner (step-runner.ts), in order, telling the
// user as each starts and ends. A signal stops the run between steps.

import type { Step } from '../model/step-contract.ts';
import { errorRecord } from '../errors/index.ts';
import type { Session } from './session.ts';
import type { Reporter } from '../messages/message-port.ts';
import type { DmInfo } from '../kernel/kernel-port.ts';
import { StepRunner } from './step-runner.ts';

export interface ExecuteOptions {
  runId: string;
  reporter: Reporter;
  signal?: AbortSignal;
  /** Index of the first step in this run (several passes share one run id). */
  firstIndex: number;
  /** The devices thinlayer owns as observed for this plan (every one of them): the run's first knowledge of them. */
  observed?: Record<string, DmInfo>;
}

/** Runs the steps in order; answers how many were done. When `signal` aborts, it stops between steps (or a step that stops early is recorded as failed) and answers. */
export async function executePlan(session: Session, steps: Step[], poolDmName: string, opts: ExecuteOptions): Promise<number> {
  const runner = new StepRunner(session, { poolDmName, reporter: opts.reporter, signal: opts.signal, observed: opts.observed });
  let done = 0;
  for (const [i, step] of steps.entries()) {
    if (opts.signal?.aborted) break; // a signal asked us to stop: finish nothing new, the last step is recorded
    opts.reporter.notify({ code: 'step.start', step, index: i, total: steps.length });
    try {
      await runner.run(step, `${opts.runId}:${opts.firstIndex + i}`);
    } catch (e) {
      // A signal that stopped a long step early (a layer extraction checks it between entries) is
      // an interruption, not a failure of the run: the step is recorded and the next run redoes it.
      if (opts.signal?.aborted) return done;
      opts.reporter.notify({ code: 'step.failed', step, error: errorRecord(e).message });
      throw e;
    }
    opts.reporter.notify({ code: 'step.done', step, index: i, total: steps.length });
    done += 1;
  }
  return done;
}

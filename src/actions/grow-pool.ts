// Growing a loop-backed pool: extend the sparse backing file, have the loop device take its new
// size (LOOP_SET_CAPACITY), then reload the thin-pool table with the new data length (load into the
// inactive slot, suspend, resume). A bigger metadata device is picked up by the kernel at the same
// resume. Used by watch mode's autoextend; a `thinlayer pool grow` command can call it too.
//
// `pool.grow` is an op like any other (its action is in action-table.ts), run through the one step
// runner in a run of its own (src/engine/with-run.ts): a step.intent before anything is touched, a
// step.done or step.failed after. The work is
// idempotent (it only ever grows to a stated size), so an intent a crash left without an outcome is
// finished by completePendingGrows.

import { stat } from 'node:fs/promises';
import type { Session } from '../engine/session.ts';
import { currentPool } from '../lifecycle/current-pool.ts';
import type { PoolGrowArgs, PoolGrowResult, PoolRole } from '../model/step-contract.ts';
import { poolGrowArgs, poolGrowStep } from '../plan/changes.ts';
import { UserError } from '../errors/index.ts';
import { silentReporter, type Reporter } from '../messages/message-port.ts';
import { StepRunner } from '../engine/step-runner.ts';
import { withRun } from '../engine/with-run.ts';

export const POOL_GROW_OP = 'pool.grow' as const;

export type { PoolRole } from '../model/step-contract.ts';
export type GrowArgs = PoolGrowArgs;
export type GrowResult = PoolGrowResult;

export interface GrowRequest {
  /** The data file's new size in bytes (at least its current size). */
  dataBytes?: number;
  /** The metadata file's new size in bytes (at least its current size). */
  metadataBytes?: number;
}

export interface GrowOptions {
  reporter?: Reporter;
  /** The run's id in the log; a fresh id when not given. */
  runId?: string;
  /** The command the run is logged as (default `pool grow`; apply's raised sizes: `apply`). */
  command?: string;
}

export async function growPool(session: Session, request: GrowRequest, opts: GrowOptions = {}): Promise<GrowResult> {
  const pool = currentPool(session.state);
  if (!pool) throw new UserError('no pool is recorded in this state dir: run `thinlayer apply -f MANIFEST` first', {}, 'E_NO_POOL');
  const { spec } = pool;
  const fileBytes: Record<PoolRole, number | null> = { data: null, metadata: null };
  for (const role of ['data', 'metadata'] as const) {
    const backing = spec[role];
    const wanted = role === 'data' ? request.dataBytes : request.metadataBytes;
    if (wanted !== undefined && backing.kind === 'file') fileBytes[role] = (await stat(session.stateDir.path(backing.file))).size;
  }
  // The same args `plan` shows for a raised size (src/plan/changes.ts), so what is shown is what is logged.
  return runPoolGrow(session, poolGrowArgs(pool, spec, request, fileBytes), opts);
}

/** Runs one pool.grow step of these args (as `plan` showed it, for apply's raised sizes) through the step runner, as a run of its own. */
export async function runPoolGrow(session: Session, args: GrowArgs, opts: GrowOptions = {}): Promise<GrowResult> {
  const reporter = opts.reporter ?? silentReporter;
  return withRun(
    session,
    opts.command ?? 'pool grow',
    async (run) => {
      // Its outcome made durable at once: no step follows in this run whose intent would.
      const runner = new StepRunner(session, { poolDmName: args.dmName, reporter, durableOutcomes: true });
      const result = (await runner.run(poolGrowStep(args), run.stepId(POOL_GROW_OP))) as GrowResult;
      run.steps += 1;
      reportGrown(args, reporter);
      return result;
    },
    { runId: opts.runId },
  );
}

/**
 * Finishes every pool.grow whose intent was logged without an outcome (a crash mid-grow). Not a run
 * of its own: each is the step of the run that logged its intent (its outcome is marked recovered),
 * and the command finishing it closes that run when it converges (with-run.ts, closeUnfinished).
 */
export async function completePendingGrows(session: Session, reporter: Reporter = silentReporter): Promise<number> {
  let completed = 0;
  for (const intent of Object.values(session.state.pending)) {
    if (intent.op !== POOL_GROW_OP) continue;
    const runner = new StepRunner(session, { poolDmName: intent.args.dmName, reporter, durableOutcomes: true });
    await runner.resume(intent);
    reportGrown(intent.args, reporter);
    completed += 1;
  }
  return completed;
}

function reportGrown(args: GrowArgs, reporter: Reporter): void {
  for (const g of args.grow) reporter.notify({ code: 'pool.grown', role: g.role, fromBytes: g.fromBytes, toBytes: g.toBytes });
}

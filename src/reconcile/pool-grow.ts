// Growing a loop-backed pool: extend the sparse backing file, have the loop device take its new
// size (LOOP_SET_CAPACITY), then reload the thin-pool table with the new data length (load into the
// inactive slot, suspend, resume). A bigger metadata device is picked up by the kernel at the same
// resume. Used by watch mode's autoextend; a `thinlayer pool grow` command can call it too.
//
// `pool.grow` is an op like any other (its action is in actions.ts), run through the one step runner:
// a step.intent before anything is touched, a step.done or step.failed after. The work is
// idempotent (it only ever grows to a stated size), so an intent a crash left without an outcome is
// finished by completePendingGrows.

import { stat } from 'node:fs/promises';
import type { Session } from './session.ts';
import { currentPool } from '../lifecycle/current-pool.ts';
import { makeStep, type PoolGrowArgs, type PoolGrowResult, type PoolRole } from '../plan/steps.ts';
import { UserError } from '../errors/index.ts';
import { silentReporter, type Reporter } from '../messages/port.ts';
import { StepRunner, newRunId } from './step-runner.ts';

export const POOL_GROW_OP = 'pool.grow' as const;
const SECTOR = 512;

export type { PoolRole } from '../plan/steps.ts';
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
  /** Groups the step with a run in the log; a fresh id when not given. */
  runId?: string;
}

export async function growPool(session: Session, request: GrowRequest, opts: GrowOptions = {}): Promise<GrowResult> {
  const reporter = opts.reporter ?? silentReporter;
  const pool = currentPool(session.state);
  if (!pool) throw new UserError('no pool is recorded in this state dir: run `thinlayer apply -f MANIFEST` first', {}, 'E_NO_POOL');
  const { spec } = pool;
  const args: GrowArgs = { dmName: pool.dmName, data: spec.data, grow: [] };
  for (const role of ['data', 'metadata'] as const) {
    const wanted = role === 'data' ? request.dataBytes : request.metadataBytes;
    if (wanted === undefined) continue;
    const backing = spec[role];
    if (backing.kind !== 'file') {
      throw new UserError(`the pool's ${role} is the block device ${backing.device}: grow that device itself; thinlayer grows only file-backed pools`, { path: `pool.${role}` }, 'E_POOL_GROW');
    }
    const fromBytes = (await stat(session.stateDir.path(backing.file))).size;
    const toBytes = Math.ceil(wanted / SECTOR) * SECTOR;
    if (toBytes < fromBytes) {
      throw new UserError(`the pool's ${role} file is ${fromBytes} bytes; it can grow but not shrink (asked for ${wanted})`, { path: `pool.${role}.size`, expected: `at least ${fromBytes} bytes` }, 'E_POOL_GROW');
    }
    args.grow.push({ role, file: backing.file, fromBytes, toBytes });
  }
  if (args.grow.length === 0) throw new UserError('nothing to grow: give a new data or metadata size', {}, 'E_POOL_GROW');

  const stepId = `${opts.runId ?? newRunId()}:${POOL_GROW_OP}`;
  const runner = new StepRunner(session, { poolDmName: pool.dmName, reporter, durableOutcomes: true });
  const result = await runner.run(makeStep(POOL_GROW_OP, 'pool', 'update', args, 'grow the pool'), stepId);
  reportGrown(args, reporter);
  return result as GrowResult;
}

/** Finishes every pool.grow whose intent was logged without an outcome (a crash mid-grow). */
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

// `gc`: what the pool holds beyond the log. Without `yes` it says what it would delete; with it,
// it takes the lock and deletes through the log. `thinId` names one thin id this log did not
// create (asked about, with its mapped size); `keepForeign` records what is beyond the log as foreign.

import type { Session } from '../engine/session.ts';
import { inspect } from '../doctor/inspect.ts';
import { planGc, type GcPlan } from '../doctor/gc-plan.ts';
import { runGc, type GcResult } from '../doctor/gc-run.ts';
import { orphansOf, type DoctorFacts } from '../doctor/findings.ts';
import { stateDirExists } from './checked-session.ts';
import { reporterOf, withSession, type CommonOptions } from './options.ts';

export interface GcOptions extends CommonOptions {
  /** Delete; without it gc only shows what it would delete. */
  yes: boolean;
  /** Delete this one thin id, which this log did not create, once confirmed. */
  thinId?: number;
  /** Record what the pool holds beyond this log as foreign, so the log is no longer behind it. */
  keepForeign?: boolean;
  /** Asked before a named thin id is deleted; answers true to go ahead. Without it, only `yes` confirms. */
  confirm?: (question: string) => Promise<boolean>;
  /** Told the plan just before its steps run. */
  onRun?: (plan: GcPlan) => void;
}

/** What gc shows, as --json prints it. */
export interface GcSummary {
  dryRun: boolean;
  blockers: string[];
  steps: Array<{ op: string; target: string; reason: string }>;
  settle: GcPlan['settle'];
  skipped: GcPlan['skipped'];
  mappedBytes?: number;
}

export type GcOutcome =
  | { kind: 'nothing-recorded' }
  | { kind: 'keep-foreign-refused'; reason: string }
  | { kind: 'kept-foreign'; thinIds: number[]; txid: number }
  /** Shown, not run: a dry run, or a plan with blockers. */
  | { kind: 'shown'; plan: GcPlan; summary: GcSummary }
  /** A named thin id whose deletion was not confirmed: nothing was deleted. */
  | { kind: 'declined'; summary: GcSummary; question: string }
  | { kind: 'ran'; plan: GcPlan; summary: GcSummary; result: GcResult };

function nothingRecorded(s: Session): boolean {
  return !s.state.desired && !s.state.poolSpec && !s.state.pool;
}

export async function gc(opts: GcOptions): Promise<GcOutcome> {
  // Nothing recorded, and nothing made to say so: the same answer as up and pool grow.
  if (!(await stateDirExists(opts.stateDir))) return { kind: 'nothing-recorded' };
  const mutate = opts.yes || opts.thinId !== undefined || opts.keepForeign === true;
  // The signal stops gc between steps; waiting for the lock is not cut short by it.
  return withSession({ ...opts, signal: undefined }, mutate, 'gc', async (session) => {
    if (nothingRecorded(session)) return { kind: 'nothing-recorded' };
    const facts = await inspect(session);
    if (opts.keepForeign) return keepForeign(session, facts);
    const plan = planGc(facts, { thinId: opts.thinId });
    const summary: GcSummary = {
      dryRun: !opts.yes,
      blockers: plan.blockers,
      steps: plan.steps.map(({ op, target, reason }) => ({ op, target, reason })),
      settle: plan.settle,
      skipped: plan.skipped,
    };
    if (opts.thinId !== undefined && plan.blockers.length === 0) {
      const declined = await confirmNamed(session, facts, opts, summary);
      if (declined) return declined;
    } else if (plan.blockers.length > 0 || !opts.yes) return { kind: 'shown', plan, summary };
    opts.onRun?.(plan);
    const result = await runGc(session, plan, facts.poolDmName!, reporterOf(opts), opts.signal);
    return { kind: 'ran', plan, summary, result };
  });
}

/** A named thin id: say how much data it maps, and ask (or take `yes`). The summary learns the size. */
async function confirmNamed(session: Session, facts: DoctorFacts, opts: GcOptions, summary: GcSummary): Promise<GcOutcome | null> {
  const metadataDev = facts.observed.metadata!.loop?.path ?? facts.observed.metadata!.path;
  const bytes = await session.kernel.thinMappedBytes(facts.poolDmName!, metadataDev, opts.thinId!);
  const question = `thin id ${opts.thinId} maps ${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB) of data that this log did not create; deleting it loses that data. Delete it?`;
  const confirmed = opts.yes || (opts.confirm ? await opts.confirm(question) : false);
  if (!confirmed) return { kind: 'declined', summary: { ...summary, dryRun: true, mappedBytes: bytes }, question };
  summary.mappedBytes = bytes;
  return null;
}

/** The pool's transaction id and the thin ids beyond the log, recorded as foreign. */
async function keepForeign(session: Session, facts: DoctorFacts): Promise<GcOutcome> {
  const pool = facts.observed.pool;
  if (!session.state.pool || !pool)
    return { kind: 'keep-foreign-refused', reason: "the pool is not active, or not this state directory's: run `thinlayer up` first" };
  if (!facts.thinIds) return { kind: 'keep-foreign-refused', reason: `the pool's thin ids could not be read: ${facts.thinIdsError}` };
  const thinIds = orphansOf(facts).map((o) => o.thinId);
  await session.append([{ type: 'pool.foreign-kept', txid: pool.status.transactionId, thinIds }]);
  return { kind: 'kept-foreign', thinIds, txid: pool.status.transactionId };
}

// The reconciler: observe → plan → execute, repeated until a plan is empty (converged) or a bound is
// reached. Interrupted steps from an earlier crash need no special path: the projection marks them
// in doubt, the planner rolls them forward or back, and every action is idempotent.

import type { Manifest } from '../manifest/types.ts';
import type { Plan } from '../plan/steps.ts';
import type { LayerContent } from '../plan/layer-chain.ts';
import { plan as makePlan, type PlanMode } from '../plan/planner.ts';
import { currentPool } from '../lifecycle/current-pool.ts';
import { sameDesired } from '../plan/desired-state.ts';
import { StateError, UserError, ThinlayerError } from '../errors/index.ts';
import { observeSystem } from './observe.ts';
import { executePlan } from './execute.ts';
import { newRunId } from './step-runner.ts';
import { completePendingGrows } from './pool-grow.ts';
import type { Session } from './session.ts';
import type { Reporter } from '../messages/port.ts';

export interface ReconcileOptions {
  /** What should exist: a manifest, or null for nothing (destroy). */
  desired: Manifest | null;
  /** The digest of the manifest file it was read from (recorded with it), when it was read from one. */
  desiredDigest?: string | null;
  /** Its layers' resolved content; the recorded content is used when absent (up, down). */
  content?: LayerContent | null;
  mode: PlanMode;
  command: string;
  reporter: Reporter;
  /** Asked once before any step of destroy impact runs; false stops the run before it changes anything. */
  confirm: (plan: Plan) => Promise<boolean>;
  /** Record the desired state as an event once confirmed (apply and destroy do; up and down do not). */
  recordDesired: boolean;
  signal?: AbortSignal;
  maxPasses?: number;
}

export interface RunResult {
  outcome: 'converged' | 'stopped';
  runId: string;
  steps: number;
  passes: number;
  /** The first plan, as shown to the user. */
  plan: Plan;
}

export async function reconcile(session: Session, opts: ReconcileOptions): Promise<RunResult> {
  const { reporter } = opts;
  const runId = newRunId();
  const maxPasses = opts.maxPasses ?? 3;
  const pending = Object.keys(session.state.pending).length;
  if (pending > 0) reporter.notify({ code: 'recovery.pending', steps: pending });
  // A pool grow a crash interrupted is finished first: the pool table must match its files.
  await completePendingGrows(session, reporter);

  let firstPlan: Plan | null = null;
  let steps = 0;
  let confirmed = false;
  let started = false;
  try {
    for (let pass = 0; pass < maxPasses; pass++) {
      const pool = currentPool(session.state, opts.desired);
      const observed = await observeSystem(session.kernel, session.stateDir, pool?.spec ?? null);
      // Without resolved content, the recorded one serves only for the manifest it was resolved for.
      const sameManifest = sameDesired(session.state.desired, opts.desired);
      const content = opts.content ?? (sameManifest ? (session.state.content ?? undefined) : undefined);
      const plan = makePlan({ desired: opts.desired, state: session.state, observed, mode: opts.mode, content });
      firstPlan ??= plan;
      reporter.notify({ code: 'plan.ready', plan, pass });
      if (plan.blockers.length > 0) throw new StateError(plan.blockers.join('\n'), 'E_BLOCKED');
      const newDigest = typeof opts.desiredDigest === 'string' && opts.desiredDigest !== session.state.desiredDigest;
      const desiredChanged = opts.recordDesired && (!sameManifest || newDigest || !sameDesired(session.state.content, content));
      if (plan.steps.length === 0 && !desiredChanged) {
        if (started) await session.append([{ type: 'run.finished', runId, outcome: 'converged', steps }]);
        reporter.notify({ code: 'run.converged', steps, passes: pass });
        return { outcome: 'converged', runId, steps, passes: pass, plan: firstPlan };
      }
      if (plan.impact === 'destroy' && !confirmed) {
        if (!(await opts.confirm(plan))) throw new UserError('the plan deletes devices and was not confirmed: nothing was changed (re-run with --yes to confirm)', { path: '--yes' }, 'E_NOT_CONFIRMED');
        confirmed = true;
      }
      if (!started) {
        // Made durable by the first step's intent, which follows before the kernel is touched.
        await session.append([{ type: 'run.started', runId, command: opts.command, pid: process.pid }], { durable: false });
        started = true;
      }
      if (desiredChanged) await session.append([{ type: 'desired.set', manifest: opts.desired, content: content ?? null, source: opts.desired ? 'apply' : 'destroy', digest: opts.desiredDigest ?? null }], { durable: false });
      steps += await executePlan(session, plan.steps, pool?.dmName ?? '', { runId, reporter, signal: opts.signal, firstIndex: steps, observed: observed.devices });
      if (opts.signal?.aborted) {
        await session.append([{ type: 'run.finished', runId, outcome: 'failed', steps }]);
        return { outcome: 'stopped', runId, steps, passes: pass + 1, plan: firstPlan };
      }
    }
    throw new StateError(`did not converge after ${maxPasses} passes: the kernel keeps disagreeing with the plan (run \`thinlayer plan\` to see what remains)`, 'E_NOT_CONVERGED');
  } catch (e) {
    if (started) await session.append([{ type: 'run.finished', runId, outcome: 'failed', steps }]).catch(() => undefined);
    reporter.notify({ code: 'run.failed', error: e instanceof ThinlayerError ? e.message : String(e) });
    throw e;
  }
}

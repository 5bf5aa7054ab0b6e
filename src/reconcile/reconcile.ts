// The reconciler: observe → plan → execute, repeated until a plan is empty (converged) or a bound is
// reached. Interrupted steps from an earlier crash need no special path: the projection marks them
// in doubt, the planner rolls them forward or back, and every action is idempotent. Once a run has
// converged, the intents it found in doubt are settled in the log (recovery.note intent-resolved).
//
// A signal (SIGINT, SIGTERM: `signal` aborted) lets the current step finish and be recorded; the
// run then ends as 'interrupted', and the next run of the same command finishes the work.

import type { Manifest } from '../model/manifest.ts';
import type { Plan } from '../model/step-contract.ts';
import type { LayerContent } from '../model/layer-content.ts';
import { plan as makePlan, type PlanMode } from '../plan/planner.ts';
import { currentPool } from '../lifecycle/current-pool.ts';
import { sameDesired } from '../plan/desired-state.ts';
import { StateError, UserError, ThinlayerError } from '../errors/index.ts';
import { observeSystem } from '../engine/observe-system.ts';
import { observeThing, mountIndex } from '../plan/observe-thing.ts';
import type { Observation } from '../plan/observation.ts';
import { failedLayerSteps } from './failed-layer.ts';
import { checkMountpointsOnHost } from '../host/mountpoint-check.ts';
import { withRun, type Run } from '../engine/with-run.ts';
import { completePendingGrows } from '../actions/grow-pool.ts';
import type { Session } from '../engine/session.ts';
import type { Reporter } from '../messages/message-port.ts';

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
  outcome: 'converged' | 'interrupted';
  runId: string;
  /** Steps taken. */
  steps: number;
  /** Steps the run set out to take: those taken and those of the current plan not reached. */
  planned: number;
  passes: number;
  /** The first plan, as shown to the user. */
  plan: Plan;
}

export async function reconcile(session: Session, opts: ReconcileOptions): Promise<RunResult> {
  const { reporter } = opts;
  const pending = Object.keys(session.state.pending).length;
  if (pending > 0) reporter.notify({ code: 'recovery.pending', steps: pending });
  // A pool grow a crash interrupted is finished first: the pool table must match its files.
  await completePendingGrows(session, reporter);
  try {
    const result = await withRun(session, opts.command, (run) => converge(session, run, opts), {
      // Started once there is something to do: a run with nothing to change leaves no trace.
      lazy: true,
      // Not the snapshotter's: it runs while it serves, and what a killed one left is its own start-up's to recover.
      closeUnfinished: (last) => last.command !== 'snapshotter',
      outcome: (r) => r.outcome,
      // A layer whose content failed is deleted by this same run (failed-layer.ts).
      onFailure: async (run) => {
        await run.execute(session, await failedLayerSteps(session), currentPool(session.state, opts.desired)?.dmName ?? '', { reporter });
      },
    });
    if (result.outcome === 'converged') reporter.notify({ code: 'run.converged', steps: result.steps, passes: result.passes });
    else reporter.notify({ code: 'run.interrupted', steps: result.steps, planned: result.planned });
    return result;
  } catch (e) {
    reporter.notify({ code: 'run.failed', error: e instanceof ThinlayerError ? e.message : String(e) });
    throw e;
  }
}

/** Observe, plan and execute until a plan is empty, within one run. */
async function converge(session: Session, run: Run, opts: ReconcileOptions): Promise<RunResult> {
  const { reporter } = opts;
  const maxPasses = opts.maxPasses ?? 3;
  let firstPlan: Plan | null = null;
  let confirmed = false;
  for (let pass = 0; pass < maxPasses; pass++) {
    const pool = currentPool(session.state, opts.desired);
    const observed = await observeSystem(session.kernel, session.stateDir, pool?.spec ?? null, session.state);
    // Without resolved content, the recorded one serves only for the manifest it was resolved for.
    const sameManifest = sameDesired(session.state.desired, opts.desired);
    const content = opts.content ?? (sameManifest ? (session.state.content ?? undefined) : undefined);
    const plan = makePlan({ desired: opts.desired, state: session.state, observed, mode: opts.mode, content });
    firstPlan ??= plan;
    reporter.notify({ code: 'plan.ready', plan, pass });
    if (pass === 0) for (const text of plan.warnings ?? []) reporter.notify({ code: 'warning', text });
    if (plan.blockers.length > 0) throw new StateError(plan.blockers.join('\n'), 'E_BLOCKED');
    // Mountpoints on the host, before any step (after the blockers: a pool that is not ours is the first thing to say).
    if (pass === 0) await checkMountpointsOnHost(session.kernel, session.stateDir.root, opts.desired, opts.mode, observed.devices);
    const newDigest = typeof opts.desiredDigest === 'string' && opts.desiredDigest !== session.state.desiredDigest;
    const desiredChanged = opts.recordDesired && (!sameManifest || newDigest || !sameDesired(session.state.content, content));
    if (plan.steps.length === 0 && !desiredChanged) {
      await settleIntents(session, run.runId, observed);
      return { outcome: 'converged', runId: run.runId, steps: run.steps, planned: run.steps, passes: pass, plan: firstPlan };
    }
    if (plan.impact === 'destroy' && !confirmed) {
      if (!(await opts.confirm(plan)))
        throw new UserError(
          'the plan deletes devices and was not confirmed: nothing was changed (re-run with --yes to confirm)',
          { path: '--yes' },
          'E_NOT_CONFIRMED',
        );
      confirmed = true;
    }
    if (!run.started) {
      await run.start(session);
      reporter.notify({ code: 'run.started', runId: run.runId, command: opts.command });
    }
    if (desiredChanged)
      await session.append(
        [
          {
            type: 'desired.set',
            manifest: opts.desired,
            content: content ?? null,
            source: opts.desired ? 'apply' : 'destroy',
            digest: opts.desiredDigest ?? null,
          },
        ],
        { durable: false },
      );
    const before = run.steps;
    await run.execute(session, plan.steps, pool?.dmName ?? '', { reporter, signal: opts.signal, observed: observed.devices });
    if (opts.signal?.aborted) {
      return { outcome: 'interrupted', runId: run.runId, steps: run.steps, planned: before + plan.steps.length, passes: pass + 1, plan: firstPlan };
    }
  }
  throw new StateError(
    `did not converge after ${maxPasses} passes: the kernel keeps disagreeing with the plan (run \`thinlayer plan\` to see what remains)`,
    'E_NOT_CONVERGED',
  );
}

/** The ops whose intents their own command settles: gc reads the pool for an orphan's delete, a pool grow is finished before any plan. */
const SETTLED_ELSEWHERE = new Set(['orphan.delete', 'pool.grow']);

/**
 * Settles every intent an earlier run left without an outcome. Called once the plan is empty: the
 * kernel is where the desired state wants it, so each such step was rolled forward or made moot.
 * The intent stops being pending (doctor stops warning, gc is no longer blocked), and its device's
 * record takes the state the kernel shows (a create in doubt keeps its doubt for the planner).
 */
async function settleIntents(session: Session, runId: string, observed: Observation): Promise<void> {
  const open = Object.values(session.state.pending).filter((p) => !p.stepId.startsWith(`${runId}:`) && !SETTLED_ELSEWHERE.has(p.op));
  if (open.length === 0) return;
  const mounts = mountIndex(observed);
  const notes = open
    .sort((a, b) => a.seq - b.seq)
    .map((p) => {
      // The device's state as the kernel shows it now: its lifecycle may still be in the transient
      // state of the step in doubt, which the steps after it could not move (a device left
      // 'activating' would be recorded as active after a later deactivate). A create in doubt is not
      // observable this way (a thin id without a device looks the same as none) and keeps its doubt.
      const thing = session.state.things[p.target];
      const seen = thing ? observeThing(thing, observed, mounts) : null;
      const state = seen && !seen.uncertain ? { observed: seen.state, mountpoint: seen.mountedAt } : {};
      return { type: 'recovery.note' as const, kind: 'intent-resolved' as const, detail: { stepId: p.stepId, op: p.op, target: p.target, runId, ...state } };
    });
  await session.append(notes);
}

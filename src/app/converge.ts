// Converging to a desired state, in one place for apply, plan and every run of watch: the desired
// state read, refused or accepted and resolved (readDesired, desired.ts), then a raised data.size or
// metadata.size grown first through `pool grow`'s own step, then the reconcile. plan shows the same
// thing without doing it: the growth step first, then the planner's steps.

import { stat } from 'node:fs/promises';
import type { Manifest, Backing } from '../model/manifest.ts';
import { worstImpact, type Plan, type Step, type PoolGrowArgs } from '../model/step-contract.ts';
import type { PlanMode } from '../plan/wants.ts';
import { plan as makePlan } from '../plan/planner.ts';
import type { LayerContent } from '../model/layer-content.ts';
import type { Session } from '../engine/session.ts';
import { observeSystem } from '../engine/observe-system.ts';
import { reconcile, type RunResult } from '../reconcile/reconcile.ts';
import { runPoolGrow } from '../actions/grow-pool.ts';
import { currentPoolSpec, poolIdentity } from '../lifecycle/current-pool.ts';
import { checkMountpointsOnHost } from '../host/mountpoint-check.ts';
import { poolGrowth, poolGrowArgs, poolGrowStep } from '../plan/changes.ts';
import type { Reporter } from '../messages/message-port.ts';
import { UserError } from '../errors/index.ts';
import type { DesiredState } from './desired.ts';

/** A raised data.size or metadata.size: the growth, and the pool.grow step that carries it out (the step `pool grow` logs). */
export async function growthFor(s: Session, desired: Manifest): Promise<{ args: PoolGrowArgs; step: Step } | null> {
  const size = async (b: Backing) => (b.kind === 'file' ? ((await stat(s.stateDir.path(b.file)).catch(() => null))?.size ?? null) : null);
  const fileBytes = { data: await size(desired.pool.data), metadata: await size(desired.pool.metadata) };
  const growth = poolGrowth(s.state, desired, fileBytes);
  if (!growth) return null;
  const args = poolGrowArgs(poolIdentity(s.state, desired.pool.name), desired.pool, growth, fileBytes);
  return { args, step: poolGrowStep(args) };
}

/** A plan with the pool's growth as its first step. */
function withGrowth(plan: Plan, grow: { step: Step } | null): Plan {
  if (!grow) return plan;
  const steps = [grow.step, ...plan.steps];
  return { ...plan, steps, impact: worstImpact(steps) };
}

export interface PlanRequest {
  /** What to converge to: a manifest just read, the recorded one, or null (nothing). */
  target: Manifest | null;
  mode: PlanMode;
  content: LayerContent | undefined;
  /** A manifest just read: its raised sizes are grown first (converge mode only). */
  read: Manifest | null;
}

/** What converging to `target` would do, and what apply would do first: the pool's growth, then the planner's steps. */
export async function convergencePlan(s: Session, req: PlanRequest): Promise<Plan> {
  const observed = await observeSystem(s.kernel, s.stateDir, currentPoolSpec(s.state, req.target), s.state);
  await checkMountpointsOnHost(s.kernel, s.stateDir.root, req.target, req.mode, observed.devices);
  const planned = makePlan({ desired: req.target, state: s.state, observed, mode: req.mode, content: req.content });
  return withGrowth(planned, req.read && req.mode === 'converge' ? await growthFor(s, req.read) : null);
}

export interface ConvergeOptions {
  command: string;
  reporter: Reporter;
  /** Asked once before anything of destroy impact runs (the growth included, when the rest deletes). */
  confirm: (plan: Plan) => Promise<boolean>;
  signal?: AbortSignal;
}

/** Records `ready` as the desired state and converges to it: the pool grown first, then the reconcile. */
export async function convergeTo(s: Session, ready: DesiredState, opts: ConvergeOptions): Promise<RunResult> {
  const confirm = await growFirst(s, ready, opts);
  return reconcile(s, {
    desired: ready.desired,
    desiredDigest: ready.digest,
    content: ready.content,
    mode: 'converge',
    command: opts.command,
    reporter: opts.reporter,
    confirm,
    recordDesired: true,
    signal: opts.signal,
  });
}

/**
 * A raised size grows the pool first, through `pool grow`'s own path; when the rest of the plan
 * deletes, only once that plan is confirmed (asked once, growth included). Answers the confirmation
 * the reconcile is to use: already given, or still to ask.
 */
async function growFirst(s: Session, ready: DesiredState, opts: ConvergeOptions): Promise<(plan: Plan) => Promise<boolean>> {
  const grow = await growthFor(s, ready.desired);
  if (!grow) return opts.confirm;
  let confirm = opts.confirm;
  const observed = await observeSystem(s.kernel, s.stateDir, ready.desired.pool, s.state);
  const rest = makePlan({ desired: ready.desired, state: s.state, observed, mode: 'converge', content: ready.content });
  if (rest.impact === 'destroy') {
    if (!(await opts.confirm(withGrowth(rest, grow))))
      throw new UserError(
        'the plan deletes devices and was not confirmed: nothing was changed (re-run with --yes to confirm)',
        { path: '--yes' },
        'E_NOT_CONFIRMED',
      );
    confirm = async () => true;
  }
  await runPoolGrow(s, grow.args, { reporter: opts.reporter, command: opts.command });
  return confirm;
}

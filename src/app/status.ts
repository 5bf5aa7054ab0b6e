// `status`: what the log knows joined with what the kernel shows; with a plan, what `up` would change.

import type { Plan } from '../model/step-contract.ts';
import { plan as makePlan } from '../plan/planner.ts';
import { observeSystem } from '../engine/observe-system.ts';
import { currentPoolSpec } from '../lifecycle/current-pool.ts';
import { readLogAgain } from '../doctor/second-look.ts';
import { settlePlanInFlight } from '../doctor/in-flight.ts';
import { readLockHolder, isLockHolderAlive } from '../events/lock.ts';
import { readStatus, type StatusView } from './status-view.ts';
import { withSession, type CommonOptions } from './options.ts';

export async function status(opts: CommonOptions): Promise<StatusView> {
  return withSession(opts, false, 'status', (s) => readStatus(s));
}

/**
 * The status and what `up` would change, from one session and one look at the kernel
 * (`status --detailed-exitcode`: drift is what the planner would do, not a second opinion).
 */
export async function statusWithPlan(opts: CommonOptions): Promise<{ view: StatusView; plan: Plan }> {
  return withSession(opts, false, 'status', async (s) => {
    const observed = await observeSystem(s.kernel, s.stateDir, currentPoolSpec(s.state, s.state.desired), s.state);
    const plan = makePlan({ desired: s.state.desired, state: s.state, observed, mode: 'converge', content: s.state.content ?? undefined });
    const view = await readStatus(s, observed);
    // Beside a busy writer (the snapshotter): the log read again after the kernel, and what work
    // under way explains is in flight, not drift (src/doctor/in-flight.ts).
    const later = await readLogAgain(s.stateDir, s.state.lastSeq);
    if (!later) return { view, plan };
    const holder = await readLockHolder(s.stateDir);
    // status never holds the lock: any live holder is another session's run.
    const busy = holder !== null && (await isLockHolderAlive(holder));
    const settled = settlePlanInFlight(plan, s.state, later, observed.pool?.status.transactionId, busy);
    const pendingSteps = busy ? 0 : settled.stillPending;
    return { view: { ...view, pendingSteps, inFlightSteps: view.pendingSteps - pendingSteps }, plan: settled.plan };
  });
}

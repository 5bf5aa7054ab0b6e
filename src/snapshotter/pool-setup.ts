// The pool and the shared base, made when missing, as apply makes them: the planner writes the
// steps (pool files, loop devices, the pool table, the base: create, activate, mkfs, deactivate),
// the snapshotter runs only those. The base is the manifest's own: one mkfs per pool, shared by
// manifest layers and containerd's parentless snapshots.

import type { Manifest, PoolSpec } from '../model/manifest.ts';
import { plan as makePlan } from '../plan/planner.ts';
import { observeSystem } from '../engine/observe-system.ts';
import type { Session } from '../engine/session.ts';
import { StateError, UserError } from '../errors/index.ts';
import type { RunSteps } from './snapshot-steps.ts';
import { refuseDesired } from '../app/desired.ts';

export async function ensurePoolAndBase(session: Session, pool: PoolSpec, file: string, runSteps: RunSteps): Promise<void> {
  const recorded = session.state.desired?.pool ?? session.state.poolSpec ?? (session.state.pool ? { name: session.state.pool.name } : null);
  if (recorded && recorded.name !== pool.name) {
    throw new UserError(
      `${file}: pool.name: the state dir holds pool "${recorded.name}", not "${pool.name}" (one state dir, one pool)`,
      { file, path: 'pool.name', expected: recorded.name },
      'E_POOL_NAME',
    );
  }
  const poolOnly: Manifest = { file, version: 1, pool, layers: [], devices: [] };
  // The pool checked as apply checks it (app/desired.ts): a lowered base size or a changed pool is refused.
  refuseDesired(session.state, poolOnly);
  if (!session.state.desired) {
    // Nothing applied yet: record the pool, so that status, doctor, up and destroy know it.
    await session.append([{ type: 'desired.set', manifest: poolOnly, content: null, source: 'apply', digest: null }], { durable: false });
  }
  // The recorded manifest's pool and base; its layers and devices are apply's business, not ours.
  const desired: Manifest = { ...(session.state.desired ?? poolOnly), layers: [], devices: [] };
  for (let pass = 0; pass < 3; pass++) {
    const observed = await observeSystem(session.kernel, session.stateDir, desired.pool, session.state);
    const plan = makePlan({ desired, state: session.state, observed, mode: 'converge' });
    if (plan.blockers.length > 0) throw new StateError(plan.blockers.join('\n'), 'E_BLOCKED');
    const steps = plan.steps.filter((s) => s.target === 'pool' || s.target === 'base');
    if (steps.length === 0) return;
    await runSteps(session, steps, observed.devices);
  }
  throw new StateError('the pool and its base did not converge after 3 passes (run `thinlayer doctor`)', 'E_NOT_CONVERGED');
}

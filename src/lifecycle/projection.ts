// The projection: the engine's state, folded from the event log by a pure `evolve`.
// It holds what the log knows: the desired manifest, the pool's record, every thin device thinlayer
// created (its thin id, origin and lifecycle), and the steps whose intent was logged but whose outcome
// was not (a crash in between). The kernel says what is true now; the projection says what thinlayer did.
// Its shape, EngineState and its records, is src/model/engine-state.ts.

import type { ThinlayerEvent } from '../model/events.ts';
import type { StepOp } from '../model/step-contract.ts';
import { step as lifecycleStep, INITIAL_LIFECYCLE, type LifecycleCommand } from './machine.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import type { EngineState, ThingRecord } from '../model/engine-state.ts';

/** Bump when the shape of EngineState changes: stored snapshots of another schema are rebuilt by replay. */
export const PROJECTION_SCHEMA = 5;

/** A thing for people: layers are keyed by chain id, so their manifest name comes first. */
export function describeThing(t: Pick<ThingRecord, 'kind' | 'name' | 'label'>): string {
  if (t.kind === 'base') return 'the base';
  if (t.kind === 'layer' && t.label && t.label !== t.name) return `layer ${t.label} (${t.name})`;
  return `${t.kind} ${t.name}`;
}

/**
 * The next thin id to give: past the pool record's next id (which moves past foreign ids kept and
 * ids a collision skipped) and past every recorded thing's. Thin ids are never reused.
 */
export function nextFreeThinId(state: Pick<EngineState, 'pool' | 'things'>): number {
  let next = state.pool?.nextThinId ?? 0;
  for (const key in state.things) next = Math.max(next, state.things[key].thinId + 1);
  return next;
}

export function initialState(): EngineState {
  return {
    identity: null,
    desired: null,
    desiredDigest: null,
    content: null,
    poolSpec: null,
    pool: null,
    things: {},
    pending: {},
    snapshots: {},
    lastSeq: 0,
    lastRun: null,
  };
}

// The projection's fold: each event of the log folded into the engine's state (src/lifecycle/projection.ts).
// Events about the run, the desired state and containerd's records are folded here; a step's intent,
// outcome or failure is folded by its op's entry in the op table (op-table.ts), which is total, so a
// new op cannot fall through unnoticed. Pure.

import type { ThinlayerEvent, StepIntentEvent, StepDoneEvent, StepIntentOf, StepDoneOf } from '../model/events.ts';
import type { StepOp } from '../model/step-contract.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import type { EngineState } from '../model/engine-state.ts';
import { initialState } from './projection.ts';
import { OPS, NO_FOLD, updateThing, type OpSpec } from './op-table.ts';

/**
 * Folds one event into `s`, in place: its fields and its `things` and `pending` maps are changed,
 * while the records in them are replaced, never mutated, so a record someone holds stays as it
 * was. In place because copying the maps for each event made a fold O(events × devices); only the
 * owner of `s` (a session, a replay) may call it. `evolve` is the pure form.
 */
export function foldInto(s: EngineState, event: ThinlayerEvent): void {
  s.lastSeq = event.seq;
  switch (event.type) {
    case 'desired.set':
      s.desired = event.manifest;
      s.desiredDigest = event.digest ?? null;
      s.content = event.content ?? null;
      s.poolSpec = event.manifest?.pool ?? s.poolSpec;
      return;
    case 'run.started':
      s.lastRun = { runId: event.runId, command: event.command, outcome: 'running' };
      return;
    case 'run.finished':
      // Only the run it ends: a long-lived process's run (the snapshotter's) may end after another
      // command's run began, and must not settle that one.
      if (s.lastRun?.runId === event.runId) s.lastRun = { ...s.lastRun, outcome: event.outcome };
      return;
    case 'recovery.note':
      // A run that converged after an intent whose outcome was never logged settles it: the kernel
      // is now where the plan wants it, whichever way the step went.
      if (event.kind === 'intent-resolved' && typeof event.detail.stepId === 'string') {
        delete s.pending[event.detail.stepId];
        // With the device's state as observed then: its lifecycle leaves the step's transient state.
        const seen = event.detail.observed as StableState | undefined;
        const target = event.detail.target as string | undefined;
        if (seen && target) {
          const mountpoint = seen === 'mounted' ? ((event.detail.mountpoint as string | null | undefined) ?? null) : null;
          // Not a machine event: the note is the log saying where the device is, a stable state.
          updateThing(s, target, (t) => ({ ...t, lifecycle: { state: seen, from: seen, error: null }, mountpoint }));
        }
      }
      return;
    case 'state.identity':
      s.identity ??= event.id;
      return;
    case 'state.backend':
      s.backend ??= event.backend;
      return;
    case 'pool.foreign-kept':
      if (s.pool) {
        const top = Math.max(s.pool.nextThinId, ...event.thinIds.map((id) => id + 1));
        s.pool = {
          ...s.pool,
          txid: event.txid,
          nextThinId: top,
          foreign: { txid: event.txid, thinIds: [...new Set([...(s.pool.foreign?.thinIds ?? []), ...event.thinIds])].sort((a, b) => a - b) },
        };
      }
      return;
    case 'snapshot.set':
      s.snapshots[event.snapshot.id] = event.snapshot;
      return;
    case 'snapshot.removed':
      delete s.snapshots[event.id];
      return;
    case 'step.intent':
      s.pending[event.stepId] = event;
      foldIntent(s, event);
      return;
    case 'step.done':
      delete s.pending[event.stepId];
      if ('txid' in event.result && typeof event.result.txid === 'number' && s.pool) s.pool = { ...s.pool, txid: event.result.txid };
      foldDone(s, event);
      return;
    case 'step.failed': {
      delete s.pending[event.stepId];
      const fold = OPS[event.op].failed;
      if (fold !== NO_FOLD) fold(s, event);
      return;
    }
  }
}

/** The op's entry, typed by the op the event carries (the table is keyed by op, so they agree). */
function specOf<O extends StepOp>(op: O): OpSpec<O> {
  return OPS[op] as OpSpec<StepOp> as OpSpec<O>;
}

function foldIntent<O extends StepOp>(s: EngineState, event: StepIntentEvent & StepIntentOf<O>): void {
  const fold = specOf<O>(event.op as O).intent;
  if (fold !== NO_FOLD) fold(s, event);
}

function foldDone<O extends StepOp>(s: EngineState, event: StepDoneEvent & StepDoneOf<O>): void {
  const fold = specOf<O>(event.op as O).done;
  if (fold !== NO_FOLD) fold(s, event);
}

/** A copy of `state` that foldInto may change without touching the original. */
export function ownCopy(state: EngineState): EngineState {
  return { ...state, things: { ...state.things }, pending: { ...state.pending }, snapshots: { ...(state.snapshots ?? {}) } };
}

/** Pure: the state after one event. Copies the maps: for many events, use project(). */
export function evolve(state: EngineState, event: ThinlayerEvent): EngineState {
  const next = ownCopy(state);
  foldInto(next, event);
  return next;
}

/** Pure: the state after the events, folded in O(devices + events). */
export function project(events: ThinlayerEvent[], from: EngineState = initialState()): EngineState {
  const state = ownCopy(from);
  for (const event of events) foldInto(state, event);
  return state;
}

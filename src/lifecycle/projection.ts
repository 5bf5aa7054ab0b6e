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
  return { identity: null, desired: null, desiredDigest: null, content: null, poolSpec: null, pool: null, things: {}, pending: {}, snapshots: {}, lastSeq: 0, lastRun: null };
}

/** The lifecycle command an op performs on its target thin device, if any. */
export const OP_COMMAND: Partial<Record<StepOp, LifecycleCommand>> = {
  'thin.create': 'CREATE',
  'snap.create': 'CREATE',
  'thin.activate': 'ACTIVATE',
  'fs.mount': 'MOUNT',
  'fs.unmount': 'UNMOUNT',
  'thin.deactivate': 'DEACTIVATE',
  'thin.delete': 'DELETE',
};

/** Replaces (or, when `update` answers null, removes) one thing's record; records are never mutated. */
function updateThing(s: EngineState, key: string, update: (t: ThingRecord) => ThingRecord | null): void {
  const current = s.things[key];
  if (!current) return;
  const next = update(current);
  if (next) s.things[key] = next;
  else delete s.things[key];
}

function lifecycle(t: ThingRecord, event: Parameters<typeof lifecycleStep>[1]): ThingRecord {
  return { ...t, lifecycle: lifecycleStep(t.lifecycle, event) };
}

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
      if (s.lastRun) s.lastRun = { ...s.lastRun, outcome: event.outcome };
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
        s.pool = { ...s.pool, txid: event.txid, nextThinId: top, foreign: { txid: event.txid, thinIds: [...new Set([...(s.pool.foreign?.thinIds ?? []), ...event.thinIds])].sort((a, b) => a - b) } };
      }
      return;
    case 'snapshot.set':
      s.snapshots[event.snapshot.id] = event.snapshot;
      return;
    case 'snapshot.removed':
      delete s.snapshots[event.id];
      return;
    case 'step.intent': {
      s.pending[event.stepId] = event;
      if (event.op === 'pool.activate') {
        const a = event.args;
        s.pool ??= { name: a.pool, dmName: a.dmName, uuid: a.uuid, formatted: false, txid: 0, nextThinId: 0 };
        return;
      }
      if (event.op === 'thin.create' || event.op === 'snap.create') {
        const a = event.args;
        const snap = event.op === 'snap.create' ? event.args : null;
        const thing: ThingRecord = s.things[event.target] ?? {
          key: event.target,
          kind: a.kind,
          name: a.name,
          dmName: a.dmName,
          uuid: a.uuid,
          thinId: a.thinId,
          origin: snap?.origin ?? null,
          sizeBytes: a.sizeBytes,
          lifecycle: INITIAL_LIFECYCLE,
          ready: false,
          mountpoint: null,
          digest: null,
          ...(snap?.label ? { label: snap.label } : {}),
          ...(snap?.layer ? { layer: snap.layer } : {}),
        };
        s.things[event.target] = lifecycle(thing, { type: 'CREATE' });
        if (s.pool) s.pool = { ...s.pool, nextThinId: Math.max(s.pool.nextThinId, a.thinId + 1), createdIds: addId(s.pool.createdIds, a.thinId) };
        return;
      }
      const command = OP_COMMAND[event.op];
      if (command) updateThing(s, event.target, (t) => lifecycle(t, { type: command }));
      return;
    }
    case 'step.done': {
      delete s.pending[event.stepId];
      if ('txid' in event.result && typeof event.result.txid === 'number' && s.pool) s.pool = { ...s.pool, txid: event.result.txid };
      switch (event.op) {
        case 'pool.activate':
          if (s.pool) s.pool = { ...s.pool, formatted: true };
          return;
        case 'pool.delete-files':
          // The thin ids were in the files: whatever the log still held goes with them.
          s.pool = null;
          s.things = {};
          s.snapshots = {};
          if (!s.desired) s.poolSpec = null;
          return;
        case 'fs.mkfs':
        case 'fs.grow':
          return updateThing(s, event.target, (t) => ({ ...t, ready: true }));
        case 'layer.commit': {
          const { digest } = event.result;
          return updateThing(s, event.target, ({ failed: _, ...t }) => ({ ...t, ready: true, digest: digest ?? null }));
        }
        case 'thin.resize': {
          // The filesystem is grown to the new size next (fs.grow makes the device ready again).
          const { sizeBytes } = event.result;
          return updateThing(s, event.target, (t) => ({ ...t, sizeBytes: typeof sizeBytes === 'number' ? sizeBytes : t.sizeBytes, ready: false }));
        }
        case 'thin.delete':
          return updateThing(s, event.target, () => null);
        case 'fs.mount': {
          const { mountpoint } = event.result;
          return updateThing(s, event.target, (t) => ({ ...lifecycle(t, { type: 'DONE' }), mountpoint }));
        }
        case 'fs.unmount':
          return updateThing(s, event.target, (t) => ({ ...lifecycle(t, { type: 'DONE' }), mountpoint: null }));
        case 'thin.create':
        case 'snap.create': {
          const r = event.result;
          // The id was taken by something this log never created: the create went to the next free id.
          if (typeof r.thinId === 'number' && s.pool) {
            const others = (s.pool.createdIds ?? []).filter((id) => id !== r.collidedWith);
            s.pool = { ...s.pool, nextThinId: Math.max(s.pool.nextThinId, r.thinId + 1), createdIds: addId(others, r.thinId) };
          }
          const made = 'ready' in r ? r : null;
          // A layer without content is ready as soon as it exists; devices are ready at once too.
          return updateThing(s, event.target, (t) => ({
            ...lifecycle(t, { type: 'DONE' }),
            ...(typeof r.thinId === 'number' ? { thinId: r.thinId } : {}),
            ...('originThinId' in r && typeof r.originThinId === 'number' ? { originThinId: r.originThinId } : {}),
            ready: t.kind === 'base' ? t.ready : made?.ready === true || t.ready,
            digest: made?.ready === true && typeof made.digest === 'string' ? made.digest : t.digest,
          }));
        }
        default:
          if (OP_COMMAND[event.op]) updateThing(s, event.target, (t) => lifecycle(t, { type: 'DONE' }));
          return;
      }
    }
    case 'step.failed': {
      delete s.pending[event.stepId];
      if (OP_COMMAND[event.op]) updateThing(s, event.target, (t) => lifecycle(t, { type: 'FAIL', error: event.error.message }));
      if (event.op === 'layer.commit') updateThing(s, event.target, (t) => ({ ...t, failed: event.error.message }));
      return;
    }
  }
}

function addId(ids: number[] | undefined, id: number): number[] {
  if (ids?.includes(id)) return ids;
  return [...(ids ?? []), id];
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

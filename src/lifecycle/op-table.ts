// What each op means to the log, in one complete table: the lifecycle command it performs on its
// target thin device (or null), whether it changes the pool's metadata (fenced by the transaction
// id: src/engine/step-runner.ts), and what the projection learns from its intent, its outcome and its
// failure. `satisfies OpTable` makes the table total: an op added to StepContract
// (src/model/step-contract.ts) without its entry here does not compile, and each entry's folds take
// that op's own args and result. Pure: the projection (fold.ts) dispatches step events here.
//
// The rest of an op is its action (src/actions/action-table.ts, also total) and its arguments,
// written with makeStep or the step writer's builders (src/plan/step-writer.ts).

import type { StepOp } from '../model/step-contract.ts';
import type { StepIntentOf, StepDoneOf, StepFailedEvent } from '../model/events.ts';
import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import { step as lifecycleStep, INITIAL_LIFECYCLE, type LifecycleCommand } from './machine.ts';

/** One op's meaning to the log. Every field is required: "nothing" is said explicitly (null, false, NO_FOLD). */
export interface OpSpec<O extends StepOp> {
  /** The lifecycle command the op performs on its target thin device, or null (pool steps, gc's orphans, content). */
  command: LifecycleCommand | null;
  /** It changes the pool's metadata: its intent carries the pool's transaction id (the fence). */
  metadata: boolean;
  /** What the log learns when the intent is written, beyond the step being pending. */
  intent: ((s: EngineState, e: StepIntentOf<O>) => void) | typeof NO_FOLD;
  /** What the log learns from the outcome, beyond the step no longer pending and the pool's new transaction id. */
  done: ((s: EngineState, e: StepDoneOf<O>) => void) | typeof NO_FOLD;
  /** What the log learns from a failure, beyond the step no longer pending. */
  failed: ((s: EngineState, e: StepFailedEvent) => void) | typeof NO_FOLD;
}

/** The op teaches the projection nothing at this point. */
export const NO_FOLD = 'no-fold' as const;

export type OpTable = { [O in StepOp]: OpSpec<O> };

/** Replaces (or, when `update` answers null, removes) one thing's record; records are never mutated. */
export function updateThing(s: EngineState, key: string, update: (t: ThingRecord) => ThingRecord | null): void {
  const current = s.things[key];
  if (!current) return;
  const next = update(current);
  if (next) s.things[key] = next;
  else delete s.things[key];
}

function lifecycle(t: ThingRecord, event: Parameters<typeof lifecycleStep>[1]): ThingRecord {
  return { ...t, lifecycle: lifecycleStep(t.lifecycle, event) };
}

function addId(ids: number[] | undefined, id: number): number[] {
  if (ids?.includes(id)) return ids;
  return [...(ids ?? []), id];
}

/** The op's lifecycle command begins on its target (the intent of a thin device step). */
function begin(command: LifecycleCommand) {
  return (s: EngineState, e: { target: string }) => updateThing(s, e.target, (t) => lifecycle(t, { type: command }));
}

/** The op's lifecycle command finished on its target. */
function finish(s: EngineState, e: { target: string }): void {
  updateThing(s, e.target, (t) => lifecycle(t, { type: 'DONE' }));
}

/** The op's lifecycle command failed on its target. */
function fail(s: EngineState, e: StepFailedEvent): void {
  updateThing(s, e.target, (t) => lifecycle(t, { type: 'FAIL', error: e.error.message }));
}

/** A create's intent: the thing is recorded before the kernel is touched, and its thin id never given again. */
function createIntent(s: EngineState, e: StepIntentOf<'thin.create'> | StepIntentOf<'snap.create'>): void {
  const a = e.args;
  const snap = e.op === 'snap.create' ? e.args : null;
  const thing: ThingRecord = s.things[e.target] ?? {
    key: e.target,
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
    // A commit's snapshot derives from the layer its device is a snapshot of: that is its lineage.
    ...(snap?.committedFrom ? { committedFrom: snap.committedFrom.device, originThinId: snap.committedFrom.lineageThinId } : {}),
  };
  s.things[e.target] = lifecycle(thing, { type: 'CREATE' });
  if (s.pool) s.pool = { ...s.pool, nextThinId: Math.max(s.pool.nextThinId, a.thinId + 1), createdIds: addId(s.pool.createdIds, a.thinId) };
}

/** A create's outcome: the thin id it got (a collision moves it), and whether it is ready. */
function createDone(s: EngineState, e: StepDoneOf<'thin.create'> | StepDoneOf<'snap.create'>): void {
  const r = e.result;
  // The id was taken by something this log never created: the create went to the next free id.
  if (typeof r.thinId === 'number' && s.pool) {
    const others = (s.pool.createdIds ?? []).filter((id) => id !== r.collidedWith);
    s.pool = { ...s.pool, nextThinId: Math.max(s.pool.nextThinId, r.thinId + 1), createdIds: addId(others, r.thinId) };
  }
  const made = 'ready' in r ? r : null;
  // A layer without content is ready as soon as it exists; devices are ready at once too.
  updateThing(s, e.target, (t) => ({
    ...lifecycle(t, { type: 'DONE' }),
    ...(typeof r.thinId === 'number' ? { thinId: r.thinId } : {}),
    ...('originThinId' in r && typeof r.originThinId === 'number' && t.committedFrom === undefined ? { originThinId: r.originThinId } : {}),
    ready: t.kind === 'base' ? t.ready : made?.ready === true || t.ready,
    digest: made?.ready === true && typeof made.digest === 'string' ? made.digest : t.digest,
  }));
}

/** The filesystem fills the device (made, or grown to a raised size). */
function filesystemReady(s: EngineState, e: { target: string }): void {
  updateThing(s, e.target, (t) => ({ ...t, ready: true }));
}

/** Every op's meaning to the log. */
export const OPS = {
  'pool.files': { command: null, metadata: false, intent: NO_FOLD, done: NO_FOLD, failed: NO_FOLD },
  'pool.attach': { command: null, metadata: false, intent: NO_FOLD, done: NO_FOLD, failed: NO_FOLD },
  'pool.activate': {
    command: null,
    metadata: false,
    intent: (s, e) => {
      const a = e.args;
      s.pool ??= { name: a.pool, dmName: a.dmName, uuid: a.uuid, formatted: false, txid: 0, nextThinId: 0 };
    },
    done: (s) => {
      if (s.pool) s.pool = { ...s.pool, formatted: true };
    },
    failed: NO_FOLD,
  },
  'pool.deactivate': { command: null, metadata: false, intent: NO_FOLD, done: NO_FOLD, failed: NO_FOLD },
  'pool.detach': { command: null, metadata: false, intent: NO_FOLD, done: NO_FOLD, failed: NO_FOLD },
  'pool.delete-files': {
    command: null,
    metadata: false,
    intent: NO_FOLD,
    done: (s) => {
      // The thin ids were in the files: whatever the log still held goes with them.
      s.pool = null;
      s.things = {};
      s.snapshots = {};
      if (!s.desired) s.poolSpec = null;
    },
    failed: NO_FOLD,
  },
  'pool.grow': { command: null, metadata: false, intent: NO_FOLD, done: NO_FOLD, failed: NO_FOLD },
  'thin.create': { command: 'CREATE', metadata: true, intent: createIntent, done: createDone, failed: fail },
  'snap.create': { command: 'CREATE', metadata: true, intent: createIntent, done: createDone, failed: fail },
  'thin.activate': { command: 'ACTIVATE', metadata: false, intent: begin('ACTIVATE'), done: finish, failed: fail },
  'fs.mkfs': { command: null, metadata: false, intent: NO_FOLD, done: filesystemReady, failed: NO_FOLD },
  'layer.commit': {
    command: null,
    metadata: false,
    intent: NO_FOLD,
    done: (s, e) => {
      const { digest } = e.result;
      updateThing(s, e.target, ({ failed: _, ...t }) => ({ ...t, ready: true, digest: digest ?? null }));
    },
    // Until it is committed or deleted, status and doctor show the layer as failed.
    failed: (s, e) => updateThing(s, e.target, (t) => ({ ...t, failed: e.error.message })),
  },
  'layer.adopt': {
    command: null,
    metadata: false,
    intent: NO_FOLD,
    // The record moves to the layer's own key, with the name and dm identity of a layer of that chain id.
    done: (s, e) => {
      const t = s.things[e.target];
      if (!t) return;
      const a = e.result;
      delete s.things[e.target];
      s.things[a.key] = { ...t, key: a.key, name: a.name, dmName: a.newDmName, uuid: a.newUuid, ready: true, digest: a.chainId, label: a.label };
    },
    failed: NO_FOLD,
  },
  'fs.mount': {
    command: 'MOUNT',
    metadata: false,
    intent: begin('MOUNT'),
    done: (s, e) => {
      const { mountpoint } = e.result;
      updateThing(s, e.target, (t) => ({ ...lifecycle(t, { type: 'DONE' }), mountpoint }));
    },
    failed: fail,
  },
  'fs.grow': { command: null, metadata: false, intent: NO_FOLD, done: filesystemReady, failed: NO_FOLD },
  'thin.resize': {
    command: null,
    metadata: false,
    intent: NO_FOLD,
    done: (s, e) => {
      // The filesystem is grown to the new size next (fs.grow makes the device ready again).
      const { sizeBytes } = e.result;
      updateThing(s, e.target, (t) => ({ ...t, sizeBytes: typeof sizeBytes === 'number' ? sizeBytes : t.sizeBytes, ready: false }));
    },
    failed: NO_FOLD,
  },
  'fs.unmount': {
    command: 'UNMOUNT',
    metadata: false,
    intent: begin('UNMOUNT'),
    done: (s, e) => updateThing(s, e.target, (t) => ({ ...lifecycle(t, { type: 'DONE' }), mountpoint: null })),
    failed: fail,
  },
  'thin.deactivate': { command: 'DEACTIVATE', metadata: false, intent: begin('DEACTIVATE'), done: finish, failed: fail },
  'orphan.delete': { command: null, metadata: true, intent: NO_FOLD, done: NO_FOLD, failed: NO_FOLD },
  'thin.delete': { command: 'DELETE', metadata: true, intent: begin('DELETE'), done: (s, e) => updateThing(s, e.target, () => null), failed: fail },
} satisfies OpTable;

/** The lifecycle command an op performs on its target thin device, or null. */
export function commandOf(op: StepOp): LifecycleCommand | null {
  return OPS[op].command;
}

/** Whether an op changes the pool's metadata (its intent carries the fence). */
export function changesMetadata(op: StepOp): boolean {
  return OPS[op].metadata;
}

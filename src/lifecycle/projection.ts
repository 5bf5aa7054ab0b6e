// The projection: the engine's state, folded from the event log by a pure `evolve`.
// It holds what the log knows: the desired manifest, the pool's record, every thin device thinlayer
// created (its thin id, origin and lifecycle), and the steps whose intent was logged but whose outcome
// was not (a crash in between). The kernel says what is true now; the projection says what thinlayer did.

import type { Manifest, PoolSpec } from '../manifest/types.ts';
import type { ThinlayerEvent, StepIntentEvent } from '../events/types.ts';
import type { ThingKind } from '../domain/names.ts';
import type { LayerContent } from '../plan/layer-chain.ts';
import { step as lifecycleStep, INITIAL_LIFECYCLE, type LifecycleRecord, type LifecycleCommand } from './machine.ts';

/** Bump when the shape of EngineState changes: stored snapshots of another schema are rebuilt by replay. */
export const PROJECTION_SCHEMA = 2;

export interface ThingRecord {
  key: string;
  kind: ThingKind;
  name: string;
  dmName: string;
  uuid: string;
  thinId: number;
  /** Key of the origin it was snapshotted from (null for the base). */
  origin: string | null;
  sizeBytes: number;
  lifecycle: LifecycleRecord;
  /** Base: the filesystem was made. Layer: its content was applied and committed. */
  ready: boolean;
  /** Where it was last mounted (for unmounting after the manifest moved it). */
  mountpoint: string | null;
  /** Layer content identity (its chain id) once complete; null for devices. */
  digest: string | null;
  /** For people: the manifest's name for a layer. */
  label?: string;
}

export interface PoolRecord {
  name: string;
  dmName: string;
  uuid: string;
  /** The pool's metadata has been formatted by the kernel at least once: never zero it again. */
  formatted: boolean;
  /** The pool transaction id after the last metadata change thinlayer made. */
  txid: number;
  /** Thin ids are never reused, so a crashed create can always be rolled forward without a clash. */
  nextThinId: number;
}

export interface EngineState {
  desired: Manifest | null;
  /** The desired layers by chain id, with their sources, as resolved when the manifest was applied. */
  content: LayerContent | null;
  /** The last pool spec asked for: kept after a destroy is asked, until the pool is gone, so it can be torn down. */
  poolSpec: PoolSpec | null;
  pool: PoolRecord | null;
  things: Record<string, ThingRecord>;
  pending: Record<string, StepIntentEvent & { seq: number }>;
  lastSeq: number;
  lastRun: { runId: string; command: string; outcome: 'running' | 'converged' | 'failed' } | null;
}

export function initialState(): EngineState {
  return { desired: null, content: null, poolSpec: null, pool: null, things: {}, pending: {}, lastSeq: 0, lastRun: null };
}

/** The lifecycle command an op performs on its target thin device, if any. */
export const OP_COMMAND: Record<string, LifecycleCommand | undefined> = {
  'thin.create': 'CREATE',
  'snap.create': 'CREATE',
  'thin.activate': 'ACTIVATE',
  'fs.mount': 'MOUNT',
  'fs.unmount': 'UNMOUNT',
  'thin.deactivate': 'DEACTIVATE',
  'thin.delete': 'DELETE',
};

function withThing(state: EngineState, key: string, update: (t: ThingRecord) => ThingRecord | null): EngineState {
  const current = state.things[key];
  if (!current) return state;
  const next = update(current);
  const things = { ...state.things };
  if (next) things[key] = next;
  else delete things[key];
  return { ...state, things };
}

function lifecycle(t: ThingRecord, event: Parameters<typeof lifecycleStep>[1]): ThingRecord {
  return { ...t, lifecycle: lifecycleStep(t.lifecycle, event) };
}

/** Pure: the state after one event. */
export function evolve(state: EngineState, event: ThinlayerEvent): EngineState {
  let s: EngineState = { ...state, lastSeq: event.seq };
  switch (event.type) {
    case 'desired.set':
      return { ...s, desired: event.manifest, content: event.content ?? null, poolSpec: event.manifest?.pool ?? s.poolSpec };
    case 'run.started':
      return { ...s, lastRun: { runId: event.runId, command: event.command, outcome: 'running' } };
    case 'run.finished':
      return s.lastRun ? { ...s, lastRun: { ...s.lastRun, outcome: event.outcome } } : s;
    case 'recovery.note':
      return s;
    case 'step.intent': {
      s = { ...s, pending: { ...s.pending, [event.stepId]: event } };
      const a = event.args as Record<string, any>;
      if (event.op === 'pool.activate') {
        const pool = s.pool ?? { name: a.pool, dmName: a.dmName, uuid: a.uuid, formatted: false, txid: 0, nextThinId: 0 };
        return { ...s, pool };
      }
      if (event.op === 'thin.create' || event.op === 'snap.create') {
        const existing = s.things[event.target];
        const thing: ThingRecord = existing ?? {
          key: event.target,
          kind: a.kind,
          name: a.name,
          dmName: a.dmName,
          uuid: a.uuid,
          thinId: a.thinId,
          origin: a.origin ?? null,
          sizeBytes: a.sizeBytes,
          lifecycle: INITIAL_LIFECYCLE,
          ready: false,
          mountpoint: null,
          digest: null,
          ...(a.label ? { label: a.label } : {}),
        };
        s = { ...s, things: { ...s.things, [event.target]: lifecycle(thing, { type: 'CREATE' }) } };
        if (s.pool) s = { ...s, pool: { ...s.pool, nextThinId: Math.max(s.pool.nextThinId, a.thinId + 1) } };
        return s;
      }
      const command = OP_COMMAND[event.op];
      return command ? withThing(s, event.target, (t) => lifecycle(t, { type: command })) : s;
    }
    case 'step.done': {
      const pending = { ...s.pending };
      delete pending[event.stepId];
      s = { ...s, pending };
      const r = event.result as Record<string, any>;
      if (typeof r.txid === 'number' && s.pool) s = { ...s, pool: { ...s.pool, txid: r.txid } };
      switch (event.op) {
        case 'pool.activate':
          return s.pool ? { ...s, pool: { ...s.pool, formatted: true } } : s;
        case 'pool.delete-files':
          // The thin ids were in the files: whatever the log still held goes with them.
          return { ...s, pool: null, things: {}, poolSpec: s.desired ? s.poolSpec : null };
        case 'fs.mkfs':
          return withThing(s, event.target, (t) => ({ ...t, ready: true }));
        case 'layer.commit':
          return withThing(s, event.target, (t) => ({ ...t, ready: true, digest: (r.digest as string) ?? null }));
        case 'thin.delete':
          return withThing(s, event.target, () => null);
        case 'fs.mount':
          return withThing(s, event.target, (t) => ({ ...lifecycle(t, { type: 'DONE' }), mountpoint: r.mountpoint as string }));
        case 'fs.unmount':
          return withThing(s, event.target, (t) => ({ ...lifecycle(t, { type: 'DONE' }), mountpoint: null }));
        case 'snap.create':
        case 'thin.create':
          // A layer without content is ready as soon as it exists; devices are ready at once too.
          return withThing(s, event.target, (t) => ({
            ...lifecycle(t, { type: 'DONE' }),
            ready: t.kind === 'base' ? t.ready : r.ready === true || t.ready,
            digest: r.ready === true && typeof r.digest === 'string' ? r.digest : t.digest,
          }));
        case 'fs.grow':
          return withThing(s, event.target, (t) => ({ ...t, ready: true }));
        default:
          return OP_COMMAND[event.op] ? withThing(s, event.target, (t) => lifecycle(t, { type: 'DONE' })) : s;
      }
    }
    case 'step.failed': {
      const pending = { ...s.pending };
      delete pending[event.stepId];
      s = { ...s, pending };
      return OP_COMMAND[event.op] ? withThing(s, event.target, (t) => lifecycle(t, { type: 'FAIL', error: event.error.message })) : s;
    }
  }
}

export function project(events: ThinlayerEvent[], from: EngineState = initialState()): EngineState {
  return events.reduce(evolve, from);
}

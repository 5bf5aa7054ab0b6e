// The lifecycle of one thin device (the base, a layer or a writable device), as an xstate v5 machine.
//
//   absent ⇄ created ⇄ activated ⇄ mounted, each arrow through a transient state that exists while
//   the step is under way (an intent was logged, the outcome not yet), and `failed` carrying the error.
//
// Commands (CREATE, ACTIVATE, MOUNT, UNMOUNT, DEACTIVATE, DELETE) enter a transient state; DONE
// completes it and FAIL ends in `failed`. The machine is used only through the pure functions
// `transition` and `initialTransition`: the projection replays logged events through it, and the
// planner searches it for the commands that lead from an observed state to a desired one.

import { setup, assign, transition, initialTransition, type SnapshotFrom } from 'xstate';
import type { StableState, LifecycleState, LifecycleRecord } from '../model/lifecycle-state.ts';
import { InternalError } from '../errors/index.ts';

export const COMMANDS = ['CREATE', 'ACTIVATE', 'MOUNT', 'UNMOUNT', 'DEACTIVATE', 'DELETE'] as const;
export type LifecycleCommand = (typeof COMMANDS)[number];

// What the kernel shows now is not an event of the machine: the planner reads the observation
// beside the record (src/plan/observe-thing.ts), so the log's record stays what the log says. (A
// run that settles an intent in doubt logs where the device was then, a recovery.note the projection
// folds as that stable state.)
export type LifecycleEvent = { type: LifecycleCommand } | { type: 'DONE' } | { type: 'FAIL'; error: string };

export interface LifecycleContext {
  error: string | null;
  /** The stable state a transient or failed state came from. */
  from: StableState;
}

export const lifecycleMachine = setup({
  types: {
    context: {} as LifecycleContext,
    events: {} as LifecycleEvent,
  },
  actions: {
    // Entering a stable state remembers it (a later failure says where it came from) and clears the error.
    recordError: assign(({ event }) => ({ error: event.type === 'FAIL' ? event.error : 'failed' })),
  },
}).createMachine({
  id: 'device',
  context: { error: null, from: 'absent' },
  initial: 'absent',
  states: {
    absent: { entry: assign({ from: 'absent' as StableState, error: null }), on: { CREATE: 'creating' } },
    creating: { on: { DONE: 'created', FAIL: { target: 'failed', actions: 'recordError' } } },
    created: { entry: assign({ from: 'created' as StableState, error: null }), on: { ACTIVATE: 'activating', DELETE: 'deleting' } },
    activating: { on: { DONE: 'activated', FAIL: { target: 'failed', actions: 'recordError' } } },
    // DELETE from activated too: the delete step discards through the live device, then removes it.
    activated: { entry: assign({ from: 'activated' as StableState, error: null }), on: { MOUNT: 'mounting', DEACTIVATE: 'deactivating', DELETE: 'deleting' } },
    mounting: { on: { DONE: 'mounted', FAIL: { target: 'failed', actions: 'recordError' } } },
    mounted: { entry: assign({ from: 'mounted' as StableState, error: null }), on: { UNMOUNT: 'unmounting' } },
    unmounting: { on: { DONE: 'activated', FAIL: { target: 'failed', actions: 'recordError' } } },
    deactivating: { on: { DONE: 'created', FAIL: { target: 'failed', actions: 'recordError' } } },
    deleting: { on: { DONE: 'absent', FAIL: { target: 'failed', actions: 'recordError' } } },
    // A failed step leaves the device where the kernel left it; the next observation says where.
    failed: {},
  },
});

export type LifecycleSnapshot = SnapshotFrom<typeof lifecycleMachine>;

export const INITIAL_LIFECYCLE: LifecycleRecord = { state: 'absent', from: 'absent', error: null };

function toSnapshot(record: LifecycleRecord): LifecycleSnapshot {
  return lifecycleMachine.resolveState({ value: record.state, context: { error: record.error, from: record.from } });
}
function toRecord(snapshot: LifecycleSnapshot): LifecycleRecord {
  return { state: snapshot.value as LifecycleState, from: snapshot.context.from, error: snapshot.context.error };
}

// The machine is small and pure, so its answers are cached: replaying a long log and planning for
// thousands of devices ask the same few questions again and again.
const stepCache = new Map<string, LifecycleRecord>();

/** Pure: the record after one event. Events the current state does not accept leave it unchanged. */
export function step(record: LifecycleRecord, event: LifecycleEvent): LifecycleRecord {
  const cacheable = record.error === null && event.type !== 'FAIL';
  const key = cacheable ? `${record.state}|${record.from}|${event.type}` : '';
  const cached = cacheable ? stepCache.get(key) : undefined;
  if (cached) return { ...cached };
  const [next] = transition(lifecycleMachine, toSnapshot(record), event);
  const result = toRecord(next);
  if (cacheable) stepCache.set(key, { ...result });
  return result;
}

/** Whether the machine accepts a command in this state (the transition changes the state). */
export function accepts(record: LifecycleRecord, command: LifecycleCommand): boolean {
  return step(record, { type: command }).state !== record.state;
}

/**
 * The shortest sequence of commands that takes the machine from one stable state to another,
 * each command followed by its DONE. Found by breadth-first search over the machine itself, so the
 * planner and the projection can never disagree on what is reachable.
 */
const pathCache = new Map<string, LifecycleCommand[]>();

export function pathBetween(from: StableState, to: StableState): LifecycleCommand[] {
  const key = `${from}>${to}`;
  let path = pathCache.get(key);
  if (!path) {
    path = searchPath(from, to);
    pathCache.set(key, path);
  }
  return [...path];
}

function searchPath(from: StableState, to: StableState): LifecycleCommand[] {
  if (from === to) return [];
  const start: LifecycleRecord = { state: from, from, error: null };
  const queue: Array<{ record: LifecycleRecord; path: LifecycleCommand[] }> = [{ record: start, path: [] }];
  const seen = new Set<string>([from]);
  while (queue.length > 0) {
    const { record, path } = queue.shift()!;
    for (const command of COMMANDS) {
      const transient = step(record, { type: command });
      if (transient.state === record.state) continue;
      const landed = step(transient, { type: 'DONE' });
      if (seen.has(landed.state)) continue;
      const nextPath = [...path, command];
      if (landed.state === to) return nextPath;
      seen.add(landed.state);
      queue.push({ record: landed, path: nextPath });
    }
  }
  throw new InternalError(`no lifecycle path from ${from} to ${to}`);
}

/** A create was logged but its outcome was not (a crash, or a failure before the pool answered): the thin id may or may not exist. */
export function createInDoubt(record: LifecycleRecord): boolean {
  return record.state === 'creating' || (record.state === 'failed' && record.from === 'absent');
}

/** The machine's initial record, computed by xstate (kept as a check that the machine and INITIAL_LIFECYCLE agree). */
export function initialRecord(): LifecycleRecord {
  const [snapshot] = initialTransition(lifecycleMachine);
  return toRecord(snapshot);
}

// The events of the log. Every desired change and every step taken is one of these.
// Events are plain JSON; the log (src/events/log.ts) adds `seq` (1, 2, 3, ...) and `at` (ISO time)
// when appending.

import type { Manifest } from './manifest.ts';
import type { LayerContent } from './layer-content.ts';
import type { StepOp, StepArgs, StepResult } from './step-contract.ts';

export interface EventEnvelope {
  seq: number;
  at: string;
}

/** The user asked for a desired state (apply), or for everything down/destroyed. */
export interface DesiredSetEvent {
  type: 'desired.set';
  /** null: nothing is wanted any more (destroy). */
  manifest: Manifest | null;
  /** The manifest's layers by chain id, with their resolved sources (absent: empty layers only). */
  content?: LayerContent | null;
  source: 'apply' | 'destroy';
  /** The manifest file's digest (src/manifest/load.ts manifestDigest), when it was read from a file. */
  digest?: string | null;
}

/** A kernel mutation of one op is about to happen. Written (and fsync'd) before the mutation. */
export interface StepIntentOf<O extends StepOp> {
  type: 'step.intent';
  stepId: string; // unique per run: `${runId}:${index}`
  op: O;
  target: string; // device, layer or pool name
  args: StepArgs<O>;
  /** The pool transaction id expected before the step (the fence), when the step changes pool metadata. */
  txid?: number;
}
export type StepIntentEvent = { [O in StepOp]: StepIntentOf<O> }[StepOp];

/** The kernel mutation happened; the result is what the projection learns from it. */
export interface StepDoneOf<O extends StepOp> {
  type: 'step.done';
  stepId: string;
  op: O;
  target: string;
  result: StepResult<O>;
  /** true when this was established by recovery rather than observed directly. */
  recovered?: boolean;
}
export type StepDoneEvent = { [O in StepOp]: StepDoneOf<O> }[StepOp];

export interface StepFailedEvent {
  type: 'step.failed';
  stepId: string;
  op: StepOp;
  target: string;
  error: { code: string; message: string; errno?: number };
}

/** A run of apply/up/down/destroy began or ended. */
export interface RunStartedEvent {
  type: 'run.started';
  runId: string;
  command: string;
  pid: number;
}
export interface RunFinishedEvent {
  type: 'run.finished';
  runId: string;
  /** interrupted: SIGINT or SIGTERM stopped it between steps (the next run finishes the work). */
  outcome: 'converged' | 'failed' | 'interrupted';
  steps: number;
}

/**
 * Recovery found the log's tail torn, or an intent with no outcome, and what it concluded.
 * `torn-tail`: `detail.offset` and `detail.bytes` of the unterminated line cut off, and `detail.keptAs`,
 * the file in the state dir that keeps its bytes (torn/…).
 * `intent-resolved` settles the intent `detail.stepId` (with `detail.op`, `detail.target` and
 * `detail.runId`, the run that converged after it): it is no longer pending.
 */
export interface RecoveryEvent {
  type: 'recovery.note';
  kind: 'torn-tail' | 'intent-resolved' | 'drift';
  detail: Record<string, unknown>;
}

/**
 * The state directory's identity, recorded once when it is first used (src/domain/names.ts). Every
 * dm uuid the state dir gives carries it. `legacy`: the log already held events of a release before
 * identities (its recorded devices keep their old uuids).
 */
export interface StateIdentityEvent {
  type: 'state.identity';
  id: string;
  legacy?: boolean;
}

/**
 * The kernel backend the state dir was first changed with (recorded with the identity; for a state
 * dir of a release before backends were recorded, by its next change). A command on the other
 * backend is refused (src/kernel/select.ts refuseOtherBackend).
 */
export interface StateBackendEvent {
  type: 'state.backend';
  backend: 'sim' | 'kernel';
}

/**
 * The user chose to keep what a pool holds beyond this log as foreign (`thinlayer gc --keep-foreign`):
 * the pool's transaction id and thin ids as they were then. Those ids are never allocated and never
 * deleted without being named (`gc --thin-id N`).
 */
export interface PoolForeignKeptEvent {
  type: 'pool.foreign-kept';
  txid: number;
  thinIds: number[];
}

/** A containerd snapshot's record (src/snapshotter): made visible, renamed by a commit, or relabelled. */
export interface SnapshotSetEvent {
  type: 'snapshot.set';
  snapshot: SnapshotRecord;
}
/** A containerd snapshot is no longer visible; its thin device is deleted after this. */
export interface SnapshotRemovedEvent {
  type: 'snapshot.removed';
  id: string;
}

/** What containerd knows of one snapshot. `id` is the key of its thin device in the projection. */
export interface SnapshotRecord {
  id: string;
  /** containerd's namespace ('' when the request carried none) and key (or, once committed, name). */
  namespace: string;
  key: string;
  kind: 'active' | 'view' | 'committed';
  /** The parent's id (a committed snapshot of the same namespace), or null for a snapshot of the base. */
  parent: string | null;
  labels: Record<string, string>;
  /** Nanoseconds since the epoch, as decimal text (a JSON number cannot hold them exactly). */
  created: string;
  updated: string;
}

export type ThinlayerEventBody =
  | StateIdentityEvent
  | StateBackendEvent
  | PoolForeignKeptEvent
  | SnapshotSetEvent
  | SnapshotRemovedEvent
  | DesiredSetEvent
  | StepIntentEvent
  | StepDoneEvent
  | StepFailedEvent
  | RunStartedEvent
  | RunFinishedEvent
  | RecoveryEvent;

export type ThinlayerEvent = ThinlayerEventBody & EventEnvelope;

// The events of the log. Every desired change and every step taken is one of these.
// Events are plain JSON; the log adds `seq` (1, 2, 3, ...) and `at` (ISO time) when appending.

import type { Manifest } from '../manifest/types.ts';
import type { LayerContent } from '../plan/layer-chain.ts';

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

/** A kernel mutation is about to happen. Written (and fsync'd) before the mutation. */
export interface StepIntentEvent {
  type: 'step.intent';
  stepId: string; // unique per run: `${runId}:${index}`
  op: string; // StepOp, see src/plan/steps.ts
  target: string; // device, layer or pool name
  args: Record<string, unknown>;
  /** The pool transaction id expected before the step (the fence), when the step changes pool metadata. */
  txid?: number;
}

/** The kernel mutation happened; `facts` are what the projection learns from it. */
export interface StepDoneEvent {
  type: 'step.done';
  stepId: string;
  op: string;
  target: string;
  result: Record<string, unknown>;
  /** true when this was established by recovery rather than observed directly. */
  recovered?: boolean;
}

export interface StepFailedEvent {
  type: 'step.failed';
  stepId: string;
  op: string;
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
  outcome: 'converged' | 'failed';
  steps: number;
}

/** Recovery found the log's tail torn, or an intent with no outcome, and what it concluded. */
export interface RecoveryEvent {
  type: 'recovery.note';
  kind: 'torn-tail' | 'intent-resolved' | 'drift';
  detail: Record<string, unknown>;
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

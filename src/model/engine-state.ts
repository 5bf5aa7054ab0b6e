// The engine's state, as the projection folds it from the event log (src/lifecycle/projection.ts):
// the desired manifest, the pool's record, every thin device thinlayer created (its thin id, origin
// and lifecycle), and the steps whose intent was logged but whose outcome was not.

import type { Manifest, PoolSpec } from './manifest.ts';
import type { StepIntentEvent, SnapshotRecord } from './events.ts';
import type { ThingKind } from './thing-kind.ts';
import type { LayerContent } from './layer-content.ts';
import type { LifecycleRecord } from './lifecycle-state.ts';

export interface ThingRecord {
  key: string;
  kind: ThingKind;
  name: string;
  dmName: string;
  uuid: string;
  thinId: number;
  /** Key of the origin it was snapshotted from (null for the base): for a layer origin, its chain id. */
  origin: string | null;
  /**
   * The thin id it is a snapshot of, as its create_snap's outcome recorded it (absent before the
   * outcome, and in logs older than the field). With `origin`, what it IS, whatever was asked since.
   */
  originThinId?: number;
  /** Device: the manifest layer it was made from (absent in logs older than the field). */
  layer?: string;
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
  /** Layer made by `thinlayer commit`: the device it is a snapshot of (its record's key). */
  committedFrom?: string;
  /** Layer: why applying its content failed, until it is committed or deleted (status and doctor show it as failed). */
  failed?: string;
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
  /** Every thin id this log ever asked the pool to create (the only ones gc deletes unnamed). */
  createdIds?: number[];
  /** Thin ids the user chose to keep as foreign, and the pool transaction id accepted with them. */
  foreign?: { txid: number; thinIds: number[] };
}

export interface EngineState {
  /** The state directory's identity (null: none recorded yet). Every dm uuid it gives carries it. */
  identity: string | null;
  /** The kernel backend recorded with it (absent or null: none recorded yet). */
  backend?: 'sim' | 'kernel' | null;
  desired: Manifest | null;
  /** The digest of the manifest file `desired` was read from: the same file unchanged need not be read again. */
  desiredDigest: string | null;
  /** The desired layers by chain id, with their sources, as resolved when the manifest was applied. */
  content: LayerContent | null;
  /** The last pool spec asked for: kept after a destroy is asked, until the pool is gone, so it can be torn down. */
  poolSpec: PoolSpec | null;
  pool: PoolRecord | null;
  things: Record<string, ThingRecord>;
  pending: Record<string, StepIntentEvent & { seq: number }>;
  /** containerd's snapshots (src/snapshotter), by id: the key of each one's thin device in `things`. */
  snapshots: Record<string, SnapshotRecord>;
  lastSeq: number;
  lastRun: { runId: string; command: string; outcome: 'running' | 'converged' | 'failed' | 'interrupted' } | null;
}

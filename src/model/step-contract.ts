// A plan is plain data: an ordered list of steps, each with the impact it has.
// Impacts are ordered by severity (after aws-cdk's diff engine): the worst impact of a plan decides
// whether it needs confirmation.
//
// The step contract: every op's arguments and result are declared once, in StepContract. The step
// writer, the actions (src/actions/action-table.ts, a total table), the events (src/events/types.ts)
// and the op table (src/lifecycle/op-table.ts: lifecycle command, metadata fence, what the projection
// learns; total too) all take their types from here, so a misspelled argument, or an op without its
// action or its entry in the op table, fails to compile. The recipe for adding an op is in
// docs/architecture.md ("The step contract").

import type { Backing, MountOption, Filesystem } from './manifest.ts';
import type { ThingKind } from './thing-kind.ts';
import type { ResolvedLayer } from './layer-content.ts';
import { InternalError } from '../errors/index.ts';

export type PoolRole = 'data' | 'metadata';

/** A thin device as its steps name it. */
export interface ThinArgs {
  dmName: string;
  uuid: string;
  thinId: number;
  sizeBytes: number;
}

/** What a create logs: enough for the projection to record the thing before the kernel is touched. */
export interface CreateArgs extends ThinArgs {
  kind: ThingKind;
  name: string;
  /** Rolling forward a create whose intent is pending in this log: EEXIST for this id is this log's own create having landed (otherwise a collision). */
  resume?: boolean;
}

/** What a committed snapshot becomes: the layer of its chain id, under that layer's key, name and dm identity. */
export interface LayerAdoption {
  key: string;
  name: string;
  newDmName: string;
  newUuid: string;
  chainId: string;
  diffId: string;
  label: string;
}

/** A create's outcome: the new transaction id, and the id the thing got when its planned one was taken by something this log never created. */
export interface CreateResult {
  txid: number;
  thinId?: number;
  collidedWith?: number;
}

/** A pool grow's intent: everything needed to finish it after a crash. */
export interface PoolGrowArgs {
  dmName: string;
  /** The pool's uuid as the log recorded it: a device of that name with another uuid is not touched. */
  uuid?: string;
  data: Backing;
  grow: Array<{ role: PoolRole; file: string; fromBytes: number; toBytes: number }>;
}

export interface PoolGrowResult {
  /** The pool's data length in blocks after the reload (null when the pool is not active). */
  dataBlocks: number | null;
  lowWater: number | null;
  /** Whether the live pool table was reloaded (false when the pool is not active: its next activation uses the new size). */
  reloaded: boolean;
}

/** Every op: its arguments (logged in the intent) and its result (logged in the outcome). */
export interface StepContract {
  /** Create the sparse backing files. */
  'pool.files': { args: { data: Backing; metadata: Backing }; result: {} };
  /** Attach a backing file to a loop device. */
  'pool.attach': { args: { role: PoolRole; file: string }; result: { loop: string; major: number; minor: number } };
  /** Load the thin-pool table (the kernel formats blank metadata). */
  'pool.activate': {
    args: {
      pool: string;
      dmName: string;
      uuid: string;
      blockSizeBytes: number;
      noSpaceTimeoutSeconds: number;
      data: Backing;
      metadata: Backing;
      blank: boolean;
    };
    /** `poolTxid` is the pool's; `txid` (the log's) only when the pool was just formatted. */
    result: { txid?: number; poolTxid: number; dataBlocks: number; lowWater: number };
  };
  /** Remove the pool's dm device. */
  'pool.deactivate': { args: { dmName: string }; result: { deferred?: boolean } };
  /** Detach a loop device. */
  'pool.detach': { args: { role: PoolRole; loop: string }; result: {} };
  /** Remove the backing files (destroy). */
  'pool.delete-files': { args: { files: string[] }; result: {} };
  /** Extend a file-backed pool: file, loop capacity, table reload (src/actions/grow-pool.ts). */
  'pool.grow': { args: PoolGrowArgs; result: PoolGrowResult };
  /** create_thin (the base). */
  'thin.create': { args: CreateArgs; result: CreateResult };
  /** create_snap (layers and devices). */
  'snap.create': {
    /** `layer`: a device's manifest layer, recorded so that what it is a snapshot of is known whatever the manifest says later. */
    args: CreateArgs & {
      label?: string;
      layer?: string;
      origin: string;
      originThinId: number;
      originDmName: string;
      ready: boolean;
      digest?: string;
      /**
       * `thinlayer commit`: the device (its key) the snapshot is taken of, while `origin` and
       * `lineageThinId` name the layer that device is a snapshot of: what the committed layer derives from.
       */
      committedFrom?: { device: string; lineageThinId: number };
    };
    /** `originThinId`: the thin id it was made a snapshot of (the origin's, after any collision moved it). */
    result: CreateResult & { ready: boolean; digest?: string; originThinId?: number };
  };
  /** dm create with a thin table. */
  'thin.activate': { args: ThinArgs; result: { major: number; minor: number; devPath: string } };
  /** Make the base filesystem. */
  'fs.mkfs': { args: { dmName: string; filesystem: Filesystem }; result: {} };
  /** Apply a layer's content and record it as committed. */
  'layer.commit': {
    args: ThinArgs & { filesystem: Filesystem; content: ResolvedLayer; chainId: string; allowDevices: boolean; label: string };
    result: { digest: string; diffId: string; files: number; bytes: number };
  };
  /**
   * `thinlayer commit`: a device's snapshot, whose diff against its layer has been stored, becomes the
   * layer of that content, named by its chain id. It is inactive, so only its record changes.
   */
  'layer.adopt': {
    args: LayerAdoption & { dmName: string };
    /** The adoption, as the projection folds it (an outcome carries no args). */
    result: LayerAdoption;
  };
  /** Mounted nosuid,nodev unless mountOptions allow suid or dev (a device's manifest key). */
  'fs.mount': {
    args: { dmName: string; mountpoint: string; filesystem: Filesystem; readOnly: boolean; mountOptions?: MountOption[] };
    result: { mountpoint: string };
  };
  /** Grow a device's filesystem to fill a device larger than its layer (mounted: where it is; active but not mounted: at a private mountpoint, src/actions/fs-grow.ts). */
  'fs.grow': { args: { dmName: string; mountpoint: string | null; filesystem: Filesystem }; result: {} };
  /** A device's raised size: its record, and its live table reloaded with the new length (src/actions/thin-resize.ts). */
  'thin.resize': { args: ThinArgs & { fromBytes: number; live: boolean }; result: { sizeBytes: number } };
  'fs.unmount': { args: { dmName: string; mountpoint: string }; result: { lazy?: boolean } };
  /** dm remove. */
  'thin.deactivate': { args: { dmName: string }; result: { deferred?: boolean } };
  /** Delete a thin id in the pool that the log does not own (thinlayer gc; `named`: given by `gc --thin-id N`). */
  'orphan.delete': { args: { thinId: number; named?: boolean }; result: { txid?: number; thinId: number } };
  /** Discard (when asked), then delete the thin id. */
  'thin.delete': {
    args: ThinArgs & { discard: boolean /** A device deleted to be made anew from this layer (its layer changed). */; replacedBy?: string };
    result: { txid: number };
  };
}

export type StepOp = keyof StepContract;
export type StepArgs<O extends StepOp> = StepContract[O]['args'];
export type StepResult<O extends StepOp> = StepContract[O]['result'];

export type Impact = 'none' | 'update' | 'create' | 'destroy';
export const IMPACT_ORDER: Record<Impact, number> = { none: 0, update: 1, create: 2, destroy: 3 };

/** One step of one op. */
export interface StepOf<O extends StepOp> {
  op: O;
  /** `pool`, `base`, `layer:NAME`, `device:NAME`, `dm:NAME` or `thin:ID`. */
  target: string;
  impact: Impact;
  /** Everything the executor needs, so that a logged intent can be re-run after a crash. */
  args: StepArgs<O>;
  /** One line for people: why this step is needed. */
  reason: string;
}

/** A step: the union over every op, discriminated by `op`. */
export type Step = { [O in StepOp]: StepOf<O> }[StepOp];

/** Builds a step of one op; the arguments are checked against the op's contract. */
export function makeStep<O extends StepOp>(op: O, target: string, impact: Impact, args: StepArgs<O>, reason: string): Step {
  return { op, target, impact, args, reason } as StepOf<O> as Step;
}

/** The step as one op's, for a caller that knows which op it holds (tests, mostly); a bug otherwise. */
export function stepAs<O extends StepOp>(step: Step, op: O): StepOf<O> {
  if (step.op !== op) throw new InternalError(`expected a ${op} step, got ${step.op} ${step.target}`);
  return step as StepOf<O>;
}

export interface Plan {
  steps: Step[];
  impact: Impact;
  /** Problems that stop the plan from being carried out (e.g. a pool in read-only mode). */
  blockers: string[];
  /** Facts the user must hear even though the plan can run (e.g. a log behind its pool). */
  warnings?: string[];
  /** Everything the plan deletes with its data, for the confirmation that asks about it. */
  deletes?: PlanDeletes;
}

/** What a plan deletes: thin devices by kind (the base too), the pool, and the pool's files. */
export interface PlanDeletes {
  devices: string[];
  layers: string[];
  base: boolean;
  pool: boolean;
  files: string[];
}

export function worstImpact(steps: Step[]): Impact {
  let worst: Impact = 'none';
  for (const s of steps) if (IMPACT_ORDER[s.impact] > IMPACT_ORDER[worst]) worst = s.impact;
  return worst;
}

// A plan is plain data: an ordered list of steps, each with the impact it has.
// Impacts are ordered by severity (after aws-cdk's diff engine): the worst impact of a plan decides
// whether it needs confirmation.

export type StepOp =
  | 'pool.files' // create the sparse backing files
  | 'pool.attach' // attach a backing file to a loop device
  | 'pool.activate' // load the thin-pool table (formatting blank metadata)
  | 'pool.deactivate' // remove the pool's dm device
  | 'pool.detach' // detach a loop device
  | 'pool.delete-files' // remove the backing files (destroy)
  | 'pool.grow' // extend a file-backed pool: file, loop capacity, table reload (src/reconcile/pool-grow.ts)
  | 'thin.create' // create_thin (the base)
  | 'snap.create' // create_snap (layers and devices)
  | 'thin.activate' // dm create with a thin table
  | 'fs.mkfs' // make the base filesystem
  | 'layer.commit' // apply a layer's content and record it as committed
  | 'fs.mount'
  | 'fs.grow' // grow a device's filesystem to fill a device larger than its layer
  | 'thin.resize' // a device's raised size: its record, and its live table reloaded with the new length
  | 'fs.unmount'
  | 'thin.deactivate' // dm remove
  | 'orphan.delete' // delete a thin id in the pool that the log does not own (thinlayer gc)
  | 'thin.delete'; // discard, then delete the thin id

export type Impact = 'none' | 'update' | 'create' | 'destroy';
export const IMPACT_ORDER: Record<Impact, number> = { none: 0, update: 1, create: 2, destroy: 3 };

export interface Step {
  op: StepOp;
  /** `pool`, `base`, `layer:NAME` or `device:NAME`. */
  target: string;
  impact: Impact;
  /** Everything the executor needs, so that a logged intent can be re-run after a crash. */
  args: Record<string, unknown>;
  /** One line for people: why this step is needed. */
  reason: string;
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

/** Ops that change the pool's metadata: fenced by the pool transaction id. */
export const METADATA_OPS: ReadonlySet<StepOp> = new Set(['thin.create', 'snap.create', 'thin.delete', 'orphan.delete']);

// The planner: a pure function from (desired manifest, projected state, observation) to ordered steps.
// It never performs I/O. Lifecycle paths come from the lifecycle machine itself (pathBetween), so the
// plan, the projection and the replay all agree on what a device can do next.
//
// Order: the pool; mountpoints of things no longer wanted released; the wanted thin devices in
// creation order; the unwanted ones deleted (devices, then layers deepest first, the base last);
// and, for down or destroy, the pool's own teardown.

import type { Manifest, PoolSpec, Backing } from '../model/manifest.ts';
import { nextFreeThinId } from '../lifecycle/projection.ts';
import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import { dmIdentity } from '../domain/names.ts';
import { currentPoolSpec, poolIdentity } from '../lifecycle/current-pool.ts';
import { logBehindOf, logBehindText, LOG_BEHIND_REPAIR, type LogBehind } from './log-behind.ts';
import type { Observation } from './observation.ts';
import { worstImpact, type Plan, type PlanDeletes, type Step } from '../model/step-contract.ts';
import { poolModeBlocker, pressureBlocker } from './pressure.ts';
import { chainLayers } from './layer-chain.ts';
import type { LayerContent } from '../model/layer-content.ts';
import { wants, RANK, type PlanMode, type Want } from './wants.ts';
import { observeThing, mountIndex } from './observe-thing.ts';
import { StepWriter } from './step-writer.ts';
import { planDeviceChange } from './device-changes.ts';
import { missingBackingBlocker } from './missing-backing.ts';
import { staleOrigin } from './identity.ts';

export type { PlanMode } from './wants.ts';
export { observeThing, mountIndex } from './observe-thing.ts';

export interface PlanInput {
  /** What should exist; null means nothing (destroy). */
  desired: Manifest | null;
  state: EngineState;
  observed: Observation;
  mode: PlanMode;
  /** The desired layers by chain id, with their resolved content; derived as empty layers when absent. */
  content?: LayerContent;
}

interface PlanContext {
  input: PlanInput;
  w: StepWriter;
  blockers: string[];
  wanted: Want[];
  wantedKeys: Set<string>;
  mounts: Map<string, string>;
  poolName: string;
  poolIdentity: { dmName: string; uuid: string };
  poolSpec: PoolSpec | null;
  nextThinId: number;
  /** The pool's transaction id is ahead of the log: nothing is deleted or formatted in it. */
  logBehind: LogBehind | null;
  /**
   * destroy of a pool on two files: the files are deleted whole, and every thin id in them with
   * them, so nothing is discarded or deleted one by one (the devices are only unmounted and
   * deactivated), and a pool that is not running is not started just to empty it.
   */
  dropsPoolWhole: boolean;
  /** Said with the plan (plan.warnings). */
  warnings: string[];
}

export function plan(input: PlanInput): Plan {
  const { desired, state, observed, mode } = input;
  if (desired && !input.content && desired.layers.some((l) => l.source)) {
    // Taking layers with a source as empty would build empty layers and delete the real ones.
    return { steps: [], impact: 'none', blockers: ["the layers' content was not resolved for this manifest: run `thinlayer apply -f MANIFEST`"] };
  }
  const poolName = desired?.pool.name ?? state.poolSpec?.name ?? state.pool?.name ?? null;
  if (poolName === null) return { steps: [], impact: 'none', blockers: [] }; // nothing wanted, nothing recorded
  const content = desired ? (input.content ?? chainLayers(desired)) : { units: [], top: {} };
  const wanted = desired ? wants(desired, mode, content) : [];
  const fs = desired?.pool.filesystem ?? state.poolSpec?.filesystem ?? 'ext4';
  const ctx: PlanContext = {
    input,
    w: new StepWriter(fs, new Map(wanted.filter((x) => x.unit).map((x) => [x.key, x.unit!]))),
    blockers: [],
    wanted,
    wantedKeys: new Set(wanted.map((x) => x.key)),
    mounts: mountIndex(observed),
    poolName,
    poolIdentity: poolIdentity(state, poolName),
    poolSpec: currentPoolSpec(state, desired),
    nextThinId: nextFreeThinId(state),
    logBehind: observed.pool ? logBehindOf(state, observed.pool.status) : null,
    dropsPoolWhole: false,
    warnings: [],
  };
  ctx.dropsPoolWhole =
    desired === null && mode === 'converge' && ctx.poolSpec !== null && ctx.poolSpec.data.kind === 'file' && ctx.poolSpec.metadata.kind === 'file';

  planPool(ctx);
  const converging = mode === 'converge' && ctx.blockers.length === 0;
  const unwanted = converging ? unwantedThings(ctx) : [];
  releaseMounts(ctx, unwanted);
  if (converging && desired) planWanted(ctx);
  if (converging) planRemovals(ctx, unwanted);
  if (mode === 'down' && ctx.blockers.length === 0) planDown(ctx);
  planTeardown(ctx);

  const { steps } = ctx.w;
  if (ctx.logBehind) {
    // A standing fact, not something this run may paper over: whatever the log does not know of may
    // be someone's data, so nothing is deleted or formatted until the user has chosen.
    const withheld = steps.filter((s) => s.impact === 'destroy' || s.op === 'fs.mkfs');
    if (withheld.length > 0) {
      ctx.blockers.push(`${logBehindText(ctx.logBehind)}; refusing to ${withheld.map((s) => s.reason).join(', ')} while it stands: ${LOG_BEHIND_REPAIR}`);
      return { steps: [], impact: 'none', blockers: ctx.blockers, warnings: [] };
    }
  }
  const warnings = [
    ...ctx.warnings,
    ...(ctx.logBehind ? [`${logBehindText(ctx.logBehind)}: nothing is deleted or formatted in the pool until then; ${LOG_BEHIND_REPAIR}`] : []),
  ];
  // Refuse to add snapshots to a nearly full pool: devices made there would fail on their first writes.
  const creates = steps.filter((s) => s.op === 'snap.create' || s.op === 'thin.create').length;
  const pressure = observed.pool && desired ? pressureBlocker(observed.pool.status, desired.pool.minFreeFraction, creates) : null;
  if (pressure) return { steps: [], impact: 'none', blockers: [...ctx.blockers, pressure], warnings };
  return { steps, impact: worstImpact(steps), blockers: ctx.blockers, warnings, deletes: deletesOf(ctx, steps) };
}

/**
 * What the steps delete with its data: the thin devices deleted one by one, and, when the pool's
 * files are deleted whole, every thin device in them (no step names those one by one).
 */
function deletesOf(ctx: PlanContext, steps: Step[]): PlanDeletes {
  const { things } = ctx.input.state;
  const gone = new Set(steps.filter((s) => s.op === 'thin.delete').map((s) => s.target));
  const files = steps.filter((s) => s.op === 'pool.delete-files').flatMap((s) => (s.args.files as string[]) ?? []);
  const poolGoes = steps.some((s) => s.op === 'pool.delete-files');
  if (ctx.dropsPoolWhole && poolGoes) for (const key of Object.keys(things)) gone.add(key);
  const named = (kind: 'device' | 'layer') =>
    [...gone]
      .filter((k) => things[k]?.kind === kind)
      .map((k) => things[k].label ?? things[k].name)
      .sort();
  return { devices: named('device'), layers: named('layer'), base: gone.has('base'), pool: poolGoes, files };
}

/** The pool must run to converge, and also to delete what is no longer wanted (destroy after a reboot). */
function planPool(ctx: PlanContext): void {
  const { input, w, blockers, poolIdentity, poolSpec, poolName } = ctx;
  const { state, observed, mode, desired } = input;
  const poolWanted = desired !== null;
  const hasUnwanted = Object.values(state.things).some((t) => !ctx.wantedKeys.has(t.key) && !leftAlone(t, desired));
  if (observed.foreignPool) {
    const f = observed.foreignPool;
    const where = f.backingFiles.length > 0 ? `; its backing files are ${f.backingFiles.join(' and ')}` : '';
    blockers.push(
      `pool ${f.dmName} belongs to ${f.owner}${where}: ${f.why}. thinlayer never loads, formats, snapshots or mounts another owner's pool; give this manifest's pool another name, or use that state directory`,
    );
    return;
  }
  if (observed.pool) {
    const modeBlocker = poolModeBlocker(observed.pool.status, poolIdentity.dmName);
    if (modeBlocker) blockers.push(modeBlocker);
  }
  const needPool = mode === 'converge' && (poolWanted || (hasUnwanted && !ctx.dropsPoolWhole));
  if (!needPool || !poolSpec) return;
  const missing = missingBackingBlocker(observed, state.pool?.formatted ?? false);
  if (missing) return void blockers.push(missing);
  const missingFiles = [observed.data, observed.metadata].filter((b) => b && b.kind === 'file' && !b.exists);
  if (missingFiles.length > 0) {
    if (state.pool?.formatted)
      blockers.push(
        `the pool's backing file ${missingFiles.map((b) => b!.path).join(' and ')} is missing but the log says the pool holds data: restore it, or run \`thinlayer destroy\` to start over`,
      );
    else if (poolWanted)
      w.add(
        'pool.files',
        'pool',
        'create',
        { data: backingArgs(poolSpec.data), metadata: backingArgs(poolSpec.metadata) },
        'create the sparse data and metadata files',
      );
  }
  for (const role of ['metadata', 'data'] as const) {
    const spec = poolSpec[role];
    if (spec.kind === 'file' && !observed[role]?.loop)
      w.add('pool.attach', 'pool', 'update', { role, file: spec.file }, `attach the ${role} file to a loop device`);
  }
  if (!observed.pool) {
    const formatted = state.pool?.formatted ?? false;
    const blank = observed.metadataBlank || missingFiles.length > 0;
    if (blank && formatted)
      blockers.push(
        `the pool's metadata is blank but the log says pool ${poolIdentity.dmName} was formatted: its metadata was lost; refusing to create an empty pool over it (run \`thinlayer destroy\` to start over)`,
      );
    else if (!blank && !state.pool)
      blockers.push(
        `the metadata ${observed.metadata?.path ?? ''} holds data thinlayer did not write: refusing to format it (clear its first 4 KiB yourself to reuse it)`,
      );
    else
      w.add(
        'pool.activate',
        'pool',
        blank ? 'create' : 'update',
        {
          pool: poolName,
          ...poolIdentity,
          blockSizeBytes: poolSpec.blockSizeBytes,
          noSpaceTimeoutSeconds: poolSpec.noSpaceTimeoutSeconds,
          data: backingArgs(poolSpec.data),
          metadata: backingArgs(poolSpec.metadata),
          blank,
        },
        blank ? 'format the pool metadata and load the thin-pool' : 'load the thin-pool from its metadata',
      );
  }
}

/** Thin devices the log has that the desired state does not: devices, then layers deepest first, the base last. */
function unwantedThings(ctx: PlanContext): ThingRecord[] {
  const things = ctx.input.state.things;
  const depth = (t: ThingRecord): number => (t.origin && things[t.origin] ? 1 + depth(things[t.origin]) : 0);
  const order = { device: 0, snapshot: 0, layer: 1, base: 2 } as const;
  return Object.values(things)
    .filter((t) => !ctx.wantedKeys.has(t.key) && !leftAlone(t, ctx.input.desired))
    .sort((a, b) => order[a.kind] - order[b.kind] || depth(b) - depth(a) || a.key.localeCompare(b.key));
}

/**
 * containerd's snapshots belong to the snapshotter (src/snapshotter): a manifest never wants them, and
 * apply, up and down leave them alone. Only destroy (nothing desired) takes them with the pool.
 */
function leftAlone(t: ThingRecord, desired: Manifest | null): boolean {
  return t.kind === 'snapshot' && desired !== null;
}

/** Things no longer wanted give up their mountpoints first: a wanted one may be mounted in the same place. */
function releaseMounts(ctx: PlanContext, unwanted: ThingRecord[]): void {
  for (const t of unwanted) {
    const seen = observeThing(t, ctx.input.observed, ctx.mounts);
    if (seen.state === 'mounted') ctx.w.emit('UNMOUNT', t, seen.mountedAt, null);
  }
}

/** The wanted thin devices, in creation order, each brought to its desired state. */
function planWanted(ctx: PlanContext): void {
  const { w } = ctx;
  const { state, observed } = ctx.input;
  const mounts = ctx.mounts;
  for (const want of ctx.wanted) {
    let t: ThingRecord | undefined = state.things[want.key];
    let seen = observeThing(t, observed, mounts);
    // Layers are keyed by chain id, so a changed source or parent is a new key and never a rewrite in
    // place. A layer whose content was never committed is deleted and built again under a new thin id,
    // and so is one made from an older device of its parent (the parent made again since, or in this
    // plan: identity.ts). A writable device keeps its data when its layer's source is edited in place:
    // it is a snapshot, independent of its origin.
    const unfinishedLayer = t && t.kind === 'layer' && (!t.ready || staleOrigin(t, w.planned.get(want.origin ?? ''))) && !seen.uncertain;
    if (t && unfinishedLayer) {
      w.lifecycle(t, seen.state, 'absent', seen.mountedAt, null);
      t = undefined;
      seen = { state: 'absent', uncertain: false, mountedAt: null };
    }
    if (t && ctx.input.desired) {
      // A device's new layer replaces it; a raised size grows it (device-changes.ts).
      const changed = planDeviceChange(w, state, ctx.input.desired, t, seen, want);
      if (changed === null) seen = { state: 'absent', uncertain: false, mountedAt: null };
      t = changed ?? undefined;
    }
    if (!t) {
      const id = dmIdentity(ctx.poolName, want.kind, want.name, state.identity);
      t = {
        key: want.key,
        kind: want.kind,
        name: want.name,
        ...id,
        thinId: ctx.nextThinId++,
        origin: want.origin,
        // A layer has its origin's size (the base's when the base was made): a raised baseSize is for
        // new devices, whose filesystems are grown; layers are never resized.
        sizeBytes: want.kind === 'layer' && want.origin && w.planned.get(want.origin) ? w.planned.get(want.origin)!.sizeBytes : want.sizeBytes,
        lifecycle: { state: 'absent', from: 'absent', error: null },
        label: want.label,
        ...(want.layer ? { layer: want.layer } : {}),
        ready: false,
        mountpoint: null,
        digest: null,
      };
    }
    w.planned.set(want.key, t);
    if (seen.uncertain) {
      // A create was logged but not its outcome: roll it forward (the kernel answers EEXIST if it
      // happened, which counts as done only because this log's intent for that id is pending).
      w.create(t, true);
      seen = { state: 'created', uncertain: false, mountedAt: null };
    }
    if (t.kind === 'base' && !t.ready) {
      // The base is formatted once: activate, mkfs, deactivate.
      if (seen.state === 'absent') w.create(t);
      if (RANK[seen.state] < RANK.activated) w.emit('ACTIVATE', t, null, null);
      w.mkfs(t);
      w.emit('DEACTIVATE', t, null, null);
      continue;
    }
    if (seen.state === 'mounted' && want.state === 'mounted' && seen.mountedAt !== want.mountpoint) {
      w.emit('UNMOUNT', t, seen.mountedAt, want);
      seen = { ...seen, state: 'activated', mountedAt: null };
    }
    if (want.kind === 'layer' && want.unit?.content && (!t.ready || seen.state === 'absent')) {
      // Content goes in before the layer is activated or mounted for anything else.
      if (seen.state === 'absent') {
        w.create(t);
        seen = { state: 'created', uncertain: false, mountedAt: null };
      }
      w.commit(t, want.unit);
    }
    w.lifecycle(t, seen.state, want.state, seen.mountedAt, want);
    const origin = want.origin ? w.planned.get(want.origin) : undefined;
    const needsGrow = want.kind === 'device' && origin !== undefined && t.sizeBytes > origin.sizeBytes && (seen.state === 'absent' || !t.ready);
    // Online when mounted; an active device that is not mounted is mounted privately for the grow (fs-grow.ts).
    if (needsGrow && RANK[want.state] >= RANK.activated) {
      w.grow(t, want.state === 'mounted' ? want.mountpoint : null);
    }
  }
}

function planRemovals(ctx: PlanContext, unwanted: ThingRecord[]): void {
  for (const t of unwanted) {
    const seen = observeThing(t, ctx.input.observed, ctx.mounts);
    // Already unmounted by releaseMounts, before anything wanted could need its mountpoint.
    const from = seen.state === 'mounted' ? 'activated' : seen.state;
    if (ctx.dropsPoolWhole) {
      // Its thin id goes with the pool's files: only let go of the device.
      if (RANK[from] > RANK.created) ctx.w.lifecycle(t, from, 'created', null, null);
    } else {
      ctx.w.lifecycle(t, from, 'absent', null, null);
    }
  }
}

/** down: unmount and deactivate everything, keeping every thin device. */
function planDown(ctx: PlanContext): void {
  for (const t of Object.values(ctx.input.state.things)) {
    if (leftAlone(t, ctx.input.desired)) continue;
    const seen = observeThing(t, ctx.input.observed, ctx.mounts);
    if (RANK[seen.state] > RANK.created) ctx.w.lifecycle(t, seen.state, 'created', seen.mountedAt, null);
  }
}

/** The pool's own teardown, for down and destroy. */
function planTeardown(ctx: PlanContext): void {
  const { w, poolIdentity } = ctx;
  const { state, observed, mode, desired } = ctx.input;
  const poolWanted = desired !== null;
  const tearDown = mode === 'down' || (!poolWanted && state.pool !== null);
  if (!tearDown || ctx.blockers.length > 0) return;
  if (mode === 'down') {
    // down leaves containerd's snapshots alone, so the pool under an active one stays: deactivating
    // it would fail (the snapshot holds it open) after its loop devices were already let go.
    const inUse = Object.values(state.things).filter((t) => leftAlone(t, desired) && RANK[observeThing(t, observed, ctx.mounts).state] > RANK.created);
    if (inUse.length > 0) {
      const ids =
        inUse
          .slice(0, 3)
          .map((t) => t.thinId)
          .join(', ') + (inUse.length > 3 ? ', …' : '');
      ctx.warnings.push(
        `the pool stays active: ${inUse.length} containerd snapshot(s) are active on it (thin id ${ids}), and down leaves containerd's snapshots alone, and the pool they live on with them (destroy takes both)`,
      );
      return;
    }
  }
  if (observed.pool) w.add('pool.deactivate', 'pool', 'update', { dmName: poolIdentity.dmName }, 'deactivate the thin-pool');
  for (const role of ['data', 'metadata'] as const) {
    const b = observed[role];
    if (b?.loop) w.add('pool.detach', 'pool', 'update', { role, loop: b.loop.path }, `detach the ${role} loop device ${b.loop.path}`);
  }
  if (!poolWanted && mode === 'converge') {
    const files = [observed.data, observed.metadata].filter((b) => b && b.kind === 'file' && b.exists).map((b) => b!.path);
    w.add('pool.delete-files', 'pool', 'destroy', { files }, files.length ? `delete the backing files ${files.join(', ')}` : 'forget the pool');
  }
}

function backingArgs(b: Backing): Backing {
  return b.kind === 'file' ? { kind: 'file', file: b.file, sizeBytes: b.sizeBytes } : { kind: 'device', device: b.device };
}

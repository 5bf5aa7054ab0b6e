// Writes plan steps for thin devices: one place that turns a lifecycle command, a snapshot, a layer
// commit or a filesystem step into a Step with its impact, its arguments (everything needed to run
// it again after a crash) and its reason. Pure; the planner decides which steps, this says how.

import { describeThing } from '../lifecycle/projection.ts';
import type { ThingRecord } from '../model/engine-state.ts';
import { pathBetween, type LifecycleCommand } from '../lifecycle/machine.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import type { Filesystem } from '../model/manifest.ts';
import { makeStep, type Step, type StepOp, type StepArgs, type Impact, type ThinArgs } from '../model/step-contract.ts';
import type { ThingKind } from '../model/thing-kind.ts';
import { InternalError } from '../errors/index.ts';
import { formatBytes } from '../messages/format.ts';
import { chainHex } from './layer-chain.ts';
import type { LayerUnit } from '../model/layer-content.ts';
import type { Want } from './wants.ts';

/** A thin device as its steps name it. */
export type ThinStepTarget = Pick<ThingRecord, 'key' | 'dmName' | 'uuid' | 'thinId' | 'sizeBytes'>;

function thinArgs(t: ThinStepTarget): ThinArgs {
  return { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes };
}

// The builders of thin device steps, shared by the planner's step writer and the snapshotter: `who`
// names the device for people (its reason), the rest is the op's contract.

export function activateStep(t: ThinStepTarget, who: string): Step {
  return makeStep('thin.activate', t.key, 'update', thinArgs(t), `activate ${who}`);
}

export function deactivateStep(t: ThinStepTarget, who: string): Step {
  return makeStep('thin.deactivate', t.key, 'update', { dmName: t.dmName }, `deactivate ${who}`);
}

/** Discard, then delete the thin id: the pool gets its space back. */
export function deleteStep(t: ThinStepTarget, who: string): Step {
  return makeStep('thin.delete', t.key, 'destroy', { ...thinArgs(t), discard: true }, `delete ${who} (thin id ${t.thinId}) and return its space`);
}

export function mountStep(t: ThinStepTarget, who: string, mount: Omit<StepArgs<'fs.mount'>, 'dmName'>): Step {
  return makeStep('fs.mount', t.key, 'update', { dmName: t.dmName, ...mount }, `mount ${who} at ${mount.mountpoint}`);
}

export function unmountStep(t: ThinStepTarget, mountpoint: string, reason: string): Step {
  return makeStep('fs.unmount', t.key, 'update', { dmName: t.dmName, mountpoint }, reason);
}

/** create_snap of `origin` as `t`; `resume`: rolling forward a create whose intent is pending in this log. */
export function snapshotStep(
  t: ThinStepTarget & { kind: ThingKind; name: string },
  origin: ThinStepTarget,
  opts: {
    who: string;
    originWho: string;
    ready: boolean;
    resume?: boolean;
    label?: string;
    layer?: string;
    digest?: string;
    /** `thinlayer commit`: `origin` is a device, and the layer it is a snapshot of is the new one's lineage. */
    lineage?: Pick<ThinStepTarget, 'key' | 'thinId'>;
  },
): Step {
  const { who, originWho, ready, resume, label, layer, digest, lineage } = opts;
  return makeStep(
    'snap.create',
    t.key,
    'create',
    {
      kind: t.kind,
      name: t.name,
      ...thinArgs(t),
      ...(resume ? { resume: true } : {}),
      ...(label !== undefined ? { label } : {}),
      ...(layer ? { layer } : {}),
      origin: lineage ? lineage.key : origin.key,
      originThinId: origin.thinId,
      originDmName: origin.dmName,
      ready,
      ...(digest ? { digest } : {}),
      ...(lineage ? { committedFrom: { device: origin.key, lineageThinId: lineage.thinId } } : {}),
    },
    `snapshot ${originWho} as ${who} (thin id ${t.thinId})`,
  );
}

export class StepWriter {
  readonly steps: Step[] = [];
  /** Thin devices as they will be after the plan, by key: what snapshots name as their origin. */
  readonly planned = new Map<string, ThingRecord>();

  constructor(
    private readonly fs: Filesystem,
    private readonly units: Map<string, LayerUnit>,
  ) {}

  add<O extends StepOp>(op: O, target: string, impact: Impact, args: StepArgs<O>, reason: string): void {
    this.steps.push(makeStep(op, target, impact, args, reason));
  }

  /** The steps of the lifecycle machine's path from one stable state to another. */
  lifecycle(t: ThingRecord, from: StableState, to: StableState, mountedAt: string | null, want: Want | null): void {
    for (const command of pathBetween(from, to)) this.emit(command, t, mountedAt, want);
  }

  emit(command: LifecycleCommand, t: ThingRecord, mountedAt: string | null, want: Want | null): void {
    const who = describeThing(t);
    switch (command) {
      case 'CREATE':
        this.create(t);
        return;
      case 'ACTIVATE':
        return void this.steps.push(activateStep(t, who));
      case 'MOUNT': {
        // Devices are mounted read-write; layers only ever for inspection, read-only.
        const mountpoint = required(want?.mountpoint, `a mountpoint for ${who}`);
        // nosuid and nodev unless the device's mountOptions allow them.
        return void this.steps.push(
          mountStep(t, who, {
            mountpoint,
            filesystem: this.fs,
            readOnly: t.kind !== 'device',
            ...(want?.mountOptions ? { mountOptions: want.mountOptions } : {}),
          }),
        );
      }
      case 'UNMOUNT':
        this.unmount(t, mountedAt, `unmount ${who} from ${mountedAt ?? t.mountpoint}`);
        return;
      case 'DEACTIVATE':
        return void this.steps.push(deactivateStep(t, who));
      case 'DELETE':
        return void this.steps.push(deleteStep(t, who));
    }
  }

  /** Unmount a thing from where it is mounted (or was last mounted). */
  unmount(t: ThingRecord, mountedAt: string | null, reason: string): void {
    this.steps.push(unmountStep(t, required(mountedAt ?? t.mountpoint, `the mountpoint of ${describeThing(t)}`), reason));
  }

  /** create_thin for the base, create_snap of its origin for everything else. */
  create(t: ThingRecord, resume = false): void {
    // resume: rolling forward a create whose intent is pending in this log, so EEXIST for this id is
    // this log's own create having landed; otherwise EEXIST is a collision (src/actions/action-table.ts).
    const common: StepArgs<'thin.create'> = {
      kind: t.kind,
      name: t.name,
      dmName: t.dmName,
      uuid: t.uuid,
      thinId: t.thinId,
      sizeBytes: t.sizeBytes,
      ...(resume ? { resume: true } : {}),
    };
    if (t.kind === 'base') {
      this.add('thin.create', t.key, 'create', common, `create the base thin device (thin id ${t.thinId})`);
      return;
    }
    const origin = this.planned.get(t.origin!)!;
    const unit = this.units.get(t.key) ?? null;
    // An empty layer is complete once it exists; a layer with content once it is committed; a device
    // once its filesystem fills it (a device larger than its layer needs its filesystem grown).
    const ready = t.kind === 'layer' ? unit !== null && unit.content === null : t.sizeBytes <= origin.sizeBytes;
    this.steps.push(
      snapshotStep(t, origin, {
        who: describeThing(t),
        originWho: describeThing(origin),
        ready,
        resume,
        label: t.label,
        ...(t.kind === 'device' && t.layer ? { layer: t.layer } : {}),
        ...(t.kind === 'layer' && unit ? { digest: unit.chainId } : {}),
      }),
    );
  }

  /** Apply a layer's content into its new snapshot and record it as committed. */
  commit(t: ThingRecord, unit: LayerUnit): void {
    this.add(
      'layer.commit',
      t.key,
      'create',
      {
        dmName: t.dmName,
        uuid: t.uuid,
        thinId: t.thinId,
        sizeBytes: t.sizeBytes,
        filesystem: this.fs,
        content: required(unit.content, `content for layer ${unit.label}`),
        chainId: unit.chainId,
        allowDevices: unit.allowDevices,
        label: unit.label,
      },
      `apply the content of layer ${unit.label} (${unit.content!.label ?? unit.content!.path}) and commit it as ${chainHex(unit.chainId)}`,
    );
  }

  /** The base is formatted once. */
  mkfs(t: ThingRecord): void {
    this.add('fs.mkfs', t.key, 'create', { dmName: t.dmName, filesystem: this.fs }, `make the ${this.fs} filesystem on the base`);
  }

  /** Grow a device's filesystem to fill a device larger than its layer. */
  grow(t: ThingRecord, mountpoint: string | null): void {
    this.add(
      'fs.grow',
      t.key,
      'update',
      { dmName: t.dmName, mountpoint, filesystem: this.fs },
      `grow the filesystem of ${describeThing(t)} to fill its ${formatBytes(t.sizeBytes)}`,
    );
  }
}

/** A value the planner's own logic guarantees; its absence is a bug. */
function required<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new InternalError(`the plan has no ${what}`);
  return value;
}

// The planner: a pure function from (desired manifest, projected state, observation) to ordered steps.
// It never performs I/O. Lifecycle paths come from the lifecycle machine itself (pathBetween), so the
// plan, the projection and the replay all agree on what a device can do next.

import type { Manifest, DesiredDeviceState } from '../manifest/types.ts';
import type { EngineState, ThingRecord } from '../lifecycle/projection.ts';
import { pathBetween, type StableState, type LifecycleCommand } from '../lifecycle/machine.ts';
import { dmIdentity, thingKey, type ThingKind } from '../domain/names.ts';
import type { Observation } from './observation.ts';
import { worstImpact, type Plan, type Step, type Impact } from './steps.ts';
import { poolModeBlocker, pressureBlocker } from './pressure.ts';
import { chainLayers, chainHex, type LayerContent, type LayerUnit } from './layer-chain.ts';

export type PlanMode =
  /** Bring everything to the desired state. */
  | 'converge'
  /** Unmount and deactivate everything, keep all data (`thinlayer down`). */
  | 'down';

export interface PlanInput {
  /** What should exist; null means nothing (destroy). */
  desired: Manifest | null;
  state: EngineState;
  observed: Observation;
  mode: PlanMode;
  /** The desired layers by chain id, with their resolved content; derived as empty layers when absent. */
  content?: LayerContent;
}

const RANK: Record<StableState, number> = { absent: 0, created: 1, activated: 2, mounted: 3 };

interface Want {
  key: string;
  kind: ThingKind;
  name: string;
  origin: string | null; // key
  state: StableState;
  sizeBytes: number;
  mountpoint: string | null;
  /** Layers: what to extract into the snapshot (null content: an empty layer). */
  unit: LayerUnit | null;
  /** For people: the manifest's name for it. */
  label: string;
}

/** The desired thin devices in creation order: the base, layers parents-first, then devices. */
function wants(desired: Manifest, mode: PlanMode, content: LayerContent): Want[] {
  const base = desired.pool.baseSizeBytes;
  const layerKey = (id: string) => thingKey('layer', chainHex(id));
  const out: Want[] = [{ key: 'base', kind: 'base', name: 'base', origin: null, state: 'created', sizeBytes: base, mountpoint: null, unit: null, label: 'base' }];
  // A layer mounted for inspection is the top of a manifest layer that names a mountpoint.
  const inspectAt = new Map<string, string>();
  for (const layer of desired.layers) if (layer.mountpoint && content.top[layer.name] && !inspectAt.has(content.top[layer.name])) inspectAt.set(content.top[layer.name], layer.mountpoint);
  for (const unit of content.units) {
    const mountpoint = inspectAt.get(unit.chainId) ?? null;
    out.push({
      key: layerKey(unit.chainId),
      kind: 'layer',
      name: chainHex(unit.chainId),
      origin: unit.parentChainId ? layerKey(unit.parentChainId) : 'base',
      state: mountpoint && mode !== 'down' ? 'mounted' : 'created',
      sizeBytes: base,
      mountpoint,
      unit,
      label: unit.label,
    });
  }
  for (const device of desired.devices) {
    const target: DesiredDeviceState = device.state;
    const state: StableState = mode === 'down' && RANK[target] > RANK.created ? 'created' : target;
    out.push({
      key: thingKey('device', device.name),
      kind: 'device',
      name: device.name,
      origin: layerKey(content.top[device.layer]),
      state,
      sizeBytes: device.sizeBytes ?? base,
      mountpoint: device.mountpoint,
      unit: null,
      label: device.name,
    });
  }
  return out;
}

/** Where the kernel has a thin device now. `uncertain`: a create was logged but its outcome was not. */
export function observeThing(t: ThingRecord | undefined, obs: Observation, mountsByDevice: Map<string, string>): { state: StableState; uncertain: boolean; mountedAt: string | null } {
  if (!t) return { state: 'absent', uncertain: false, mountedAt: null };
  const info = obs.devices[t.dmName];
  if (info && info.liveTable) {
    const mountedAt = mountsByDevice.get(`${info.major}:${info.minor}`) ?? null;
    return { state: mountedAt ? 'mounted' : 'activated', uncertain: false, mountedAt };
  }
  const lc = t.lifecycle;
  const createInDoubt = lc.state === 'creating' || (lc.state === 'failed' && lc.from === 'absent');
  return { state: 'created', uncertain: createInDoubt, mountedAt: null };
}

export function plan(input: PlanInput): Plan {
  const { desired, state, observed, mode } = input;
  const content = desired ? (input.content ?? chainLayers(desired)) : { units: [], top: {} };
  if (desired && !input.content && desired.layers.some((l) => l.source)) {
    // Taking layers with a source as empty would build empty layers and delete the real ones.
    return { steps: [], impact: 'none', blockers: ['the layers\' content was not resolved for this manifest: run `thinlayer apply -f MANIFEST`'] };
  }
  const steps: Step[] = [];
  const blockers: string[] = [];
  const mountsByDevice = mountIndex(observed);

  let nextThinId = Math.max(state.pool?.nextThinId ?? 0, ...Object.values(state.things).map((t) => t.thinId + 1));
  const poolName = desired?.pool.name ?? state.poolSpec?.name ?? state.pool?.name ?? null;
  const fs = desired?.pool.filesystem ?? state.poolSpec?.filesystem ?? 'ext4';
  const poolIdentity = poolName ? dmIdentity(poolName, 'pool') : null;
  const poolWanted = desired !== null;

  const add = (op: Step['op'], target: string, impact: Impact, args: Record<string, unknown>, reason: string) => steps.push({ op, target, impact, args, reason });

  // --- the pool ---------------------------------------------------------------------------------
  // It must run to converge, and also to delete what is no longer wanted (destroy after a reboot).
  const wanted = desired ? wants(desired, mode, content) : [];
  const wantedNames = new Set(wanted.map((w) => w.key));
  const hasUnwanted = Object.keys(state.things).some((k) => !wantedNames.has(k));
  const poolSpec = desired?.pool ?? state.poolSpec ?? null;
  const needPool = mode === 'converge' && (poolWanted || hasUnwanted);
  if (poolIdentity && observed.pool) {
    const modeBlocker = poolModeBlocker(observed.pool.status, poolIdentity.dmName);
    if (modeBlocker) blockers.push(modeBlocker);
  }
  if (needPool && poolIdentity && poolSpec) {
    const missingFiles = [observed.data, observed.metadata].filter((b) => b && b.kind === 'file' && !b.exists);
    if (missingFiles.length > 0) {
      if (state.pool?.formatted) blockers.push(`the pool's backing file ${missingFiles.map((b) => b!.path).join(' and ')} is missing but the log says the pool holds data: restore it, or run \`thinlayer destroy\` to start over`);
      else if (poolWanted) add('pool.files', 'pool', 'create', { data: backingArgs(poolSpec.data), metadata: backingArgs(poolSpec.metadata) }, 'create the sparse data and metadata files');
    }
    for (const role of ['metadata', 'data'] as const) {
      const spec = poolSpec[role];
      if (spec.kind === 'file' && !observed[role]?.loop) add('pool.attach', 'pool', 'update', { role, file: spec.file }, `attach the ${role} file to a loop device`);
    }
    if (!observed.pool) {
      const formatted = state.pool?.formatted ?? false;
      const blank = observed.metadataBlank || missingFiles.length > 0;
      if (blank && formatted) blockers.push(`the pool's metadata is blank but the log says pool ${poolIdentity.dmName} was formatted: its metadata was lost; refusing to create an empty pool over it (run \`thinlayer destroy\` to start over)`);
      else if (!blank && !state.pool) blockers.push(`the metadata ${observed.metadata?.path ?? ''} holds data thinlayer did not write: refusing to format it (clear its first 4 KiB yourself to reuse it)`);
      else
        add('pool.activate', 'pool', blank ? 'create' : 'update', {
          pool: poolName,
          ...poolIdentity,
          blockSizeBytes: poolSpec.blockSizeBytes,
          noSpaceTimeoutSeconds: poolSpec.noSpaceTimeoutSeconds,
          data: backingArgs(poolSpec.data),
          metadata: backingArgs(poolSpec.metadata),
          blank,
        }, blank ? 'format the pool metadata and load the thin-pool' : 'load the thin-pool from its metadata');
    }
  }

  // --- thin devices -----------------------------------------------------------------------------
  const planned = new Map<string, ThingRecord>(); // things as they will be after the plan, for origins
  const fenced = poolWanted && mode === 'converge' && blockers.length === 0;

  const lifecycleSteps = (t: ThingRecord, from: StableState, to: StableState, mountedAt: string | null, want: Want | null) => {
    for (const command of pathBetween(from, to)) emit(command, t, mountedAt, want);
  };
  const emit = (command: LifecycleCommand, t: ThingRecord, mountedAt: string | null, want: Want | null) => {
    const who = describeThing(t);
    switch (command) {
      case 'CREATE':
        return createStep(t);
      case 'ACTIVATE':
        return add('thin.activate', t.key, 'update', { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes }, `activate ${who}`);
      case 'MOUNT':
        return add('fs.mount', t.key, 'update', { dmName: t.dmName, mountpoint: want?.mountpoint, filesystem: fs, readOnly: t.kind !== 'device' }, `mount ${who} at ${want?.mountpoint}`);
      case 'UNMOUNT':
        return add('fs.unmount', t.key, 'update', { dmName: t.dmName, mountpoint: mountedAt ?? t.mountpoint }, `unmount ${who} from ${mountedAt ?? t.mountpoint}`);
      case 'DEACTIVATE':
        return add('thin.deactivate', t.key, 'update', { dmName: t.dmName }, `deactivate ${who}`);
      case 'DELETE':
        return add('thin.delete', t.key, 'destroy', { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes, discard: true }, `delete ${who} (thin id ${t.thinId}) and return its space`);
    }
  };
  const createStep = (t: ThingRecord) => {
    const common = { kind: t.kind, name: t.name, dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes };
    if (t.kind === 'base') return add('thin.create', t.key, 'create', common, `create the base thin device (thin id ${t.thinId})`);
    const origin = planned.get(t.origin!)!;
    const unit = unitByKey.get(t.key) ?? null;
    // An empty layer is complete once it exists; a layer with content once it is committed; a device
    // once its filesystem fills it (a device larger than its layer needs its filesystem grown).
    const ready = t.kind === 'layer' ? unit !== null && unit.content === null : t.sizeBytes <= origin.sizeBytes;
    return add(
      'snap.create',
      t.key,
      'create',
      { ...common, label: t.label, origin: origin.key, originThinId: origin.thinId, originDmName: origin.dmName, ready, ...(t.kind === 'layer' && unit ? { digest: unit.chainId } : {}) },
      `snapshot ${describeThing(origin)} as ${describeThing(t)} (thin id ${t.thinId})`,
    );
  };
  const unitByKey = new Map(wanted.filter((w) => w.unit).map((w) => [w.key, w.unit!]));
  const commitStep = (t: ThingRecord, unit: LayerUnit) =>
    add(
      'layer.commit',
      t.key,
      'create',
      { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes, filesystem: fs, content: unit.content, chainId: unit.chainId, allowDevices: unit.allowDevices, label: unit.label },
      `apply the content of layer ${unit.label} (${unit.content!.label ?? unit.content!.path}) and commit it as ${chainHex(unit.chainId)}`,
    );

  // Things no longer wanted give up their mountpoints first: a wanted device or layer may be about
  // to be mounted in the same place.
  const removing = mode === 'converge' && blockers.length === 0;
  const depth = (t: ThingRecord): number => (t.origin && state.things[t.origin] ? 1 + depth(state.things[t.origin]) : 0);
  const order = { device: 0, layer: 1, base: 2 } as const;
  const unwanted = removing
    ? Object.values(state.things)
        .filter((t) => !wantedNames.has(t.key))
        .sort((a, b) => order[a.kind] - order[b.kind] || depth(b) - depth(a) || a.key.localeCompare(b.key))
    : [];
  for (const t of unwanted) {
    const seen = observeThing(t, observed, mountsByDevice);
    if (seen.state === 'mounted') emit('UNMOUNT', t, seen.mountedAt, null);
  }

  if (fenced) {
    for (const want of wanted) {
      let t: ThingRecord | undefined = state.things[want.key];
      let seen = observeThing(t, observed, mountsByDevice);
      // Layers are keyed by chain id, so a changed source or parent is a new key and never a rewrite in
      // place. A layer whose content was never committed is deleted and built again under a new thin id.
      // A writable device keeps its data when its layer changes: it is a snapshot, independent of its origin.
      const unfinishedLayer = t && t.kind === 'layer' && !t.ready && !seen.uncertain;
      if (t && unfinishedLayer) {
        lifecycleSteps(t, seen.state, 'absent', seen.mountedAt, null);
        t = undefined;
        seen = { state: 'absent', uncertain: false, mountedAt: null };
      }
      if (!t) {
        const id = dmIdentity(poolName!, want.kind, want.name);
        t = {
          key: want.key,
          kind: want.kind,
          name: want.name,
          ...id,
          thinId: nextThinId++,
          origin: want.origin,
          // A layer has its origin's size (the base's when the base was made): a raised baseSize is for
          // new devices, whose filesystems are grown; layers are never resized.
          sizeBytes: want.kind === 'layer' && want.origin && planned.get(want.origin) ? planned.get(want.origin)!.sizeBytes : want.sizeBytes,
          lifecycle: { state: 'absent', from: 'absent', error: null },
          label: want.label,
          ready: false,
          mountpoint: null,
          digest: null,
        };
      }
      planned.set(want.key, t);
      if (seen.uncertain) {
        // A create was logged but not its outcome: roll it forward (the kernel answers EEXIST if it happened).
        createStep(t);
        seen = { state: 'created', uncertain: false, mountedAt: null };
      }
      if (t.kind === 'base' && !t.ready) {
        // The base is formatted once: activate, mkfs, deactivate.
        if (seen.state === 'absent') createStep(t);
        if (RANK[seen.state] < RANK.activated) emit('ACTIVATE', t, null, null);
        add('fs.mkfs', t.key, 'create', { dmName: t.dmName, filesystem: fs }, `make the ${fs} filesystem on the base`);
        emit('DEACTIVATE', t, null, null);
        continue;
      }
      if (seen.state === 'mounted' && want.state === 'mounted' && seen.mountedAt !== want.mountpoint) {
        emit('UNMOUNT', t, seen.mountedAt, want);
        seen = { ...seen, state: 'activated', mountedAt: null };
      }
      if (want.kind === 'layer' && want.unit?.content && (!t.ready || seen.state === 'absent')) {
        // Content goes in before the layer is activated or mounted for anything else.
        if (seen.state === 'absent') {
          createStep(t);
          seen = { state: 'created', uncertain: false, mountedAt: null };
        }
        commitStep(t, want.unit);
      }
      lifecycleSteps(t, seen.state, want.state, seen.mountedAt, want);
      const origin = want.origin ? planned.get(want.origin) : undefined;
      const needsGrow = want.kind === 'device' && origin !== undefined && t.sizeBytes > origin.sizeBytes && (seen.state === 'absent' || !t.ready);
      if (needsGrow && want.state === 'mounted') {
        add('fs.grow', t.key, 'update', { dmName: t.dmName, mountpoint: want.mountpoint, filesystem: fs }, `grow the filesystem of ${describeThing(t)} to fill its ${t.sizeBytes} bytes`);
      }
    }
  }

  // --- thin devices no longer wanted: devices first, then layers deepest first, the base last -------
  if (removing) {
    for (const t of unwanted) {
      const seen = observeThing(t, observed, mountsByDevice);
      // Already unmounted above, before anything wanted could need its mountpoint.
      lifecycleSteps(t, seen.state === 'mounted' ? 'activated' : seen.state, 'absent', null, null);
    }
  }

  // --- down: unmount and deactivate everything, then the pool ------------------------------------
  if (mode === 'down') {
    for (const t of Object.values(state.things)) {
      const seen = observeThing(t, observed, mountsByDevice);
      if (RANK[seen.state] > RANK.created) lifecycleSteps(t, seen.state, 'created', seen.mountedAt, null);
    }
  }

  // --- the pool's own teardown ------------------------------------------------------------------
  const tearDown = mode === 'down' || (!poolWanted && state.pool !== null);
  if (tearDown && blockers.length === 0) {
    if (observed.pool && poolIdentity) add('pool.deactivate', 'pool', 'update', { dmName: poolIdentity.dmName }, 'deactivate the thin-pool');
    for (const role of ['data', 'metadata'] as const) {
      const b = observed[role];
      if (b?.loop) add('pool.detach', 'pool', 'update', { role, loop: b.loop.path }, `detach the ${role} loop device ${b.loop.path}`);
    }
    if (!poolWanted && mode === 'converge') {
      const files = [observed.data, observed.metadata].filter((b) => b && b.kind === 'file' && b.exists).map((b) => b!.path);
      add('pool.delete-files', 'pool', 'destroy', { files }, files.length ? `delete the backing files ${files.join(', ')}` : 'forget the pool');
    }
  }

  // Refuse to add snapshots to a nearly full pool: devices made there would fail on their first writes.
  const creates = steps.filter((s) => s.op === 'snap.create' || s.op === 'thin.create').length;
  const pressure = observed.pool && desired ? pressureBlocker(observed.pool.status, desired.pool.minFreeFraction, creates) : null;
  if (pressure) return { steps: [], impact: 'none', blockers: [...blockers, pressure] };
  return { steps, impact: worstImpact(steps), blockers };
}

function backingArgs(b: Manifest['pool']['data']): Record<string, unknown> {
  return b.kind === 'file' ? { kind: 'file', file: b.file, sizeBytes: b.sizeBytes } : { kind: 'device', device: b.device };
}

/** Mountpoint by the mounted device's major:minor. */
export function mountIndex(observed: Observation): Map<string, string> {
  const index = new Map<string, string>();
  for (const [mountpoint, m] of Object.entries(observed.mounts)) index.set(`${m.major}:${m.minor}`, mountpoint);
  return index;
}

function describeThing(t: Pick<ThingRecord, 'kind' | 'name' | 'label'>): string {
  if (t.kind === 'base') return 'the base';
  if (t.kind === 'layer') return `layer ${t.label ?? t.name}`;
  return `device ${t.name}`;
}

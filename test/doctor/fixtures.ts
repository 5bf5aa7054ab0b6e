// In-memory facts for doctor's pure tests: a pool, a few things in the log, an observation.

import type { DmInfo } from '../../src/kernel/kernel-port.ts';
import type { PoolStatus } from '../../src/kernel/thin-pool.ts';
import type { EngineState, ThingRecord } from '../../src/model/engine-state.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import type { LifecycleState, StableState } from '../../src/model/lifecycle-state.ts';
import type { Observation } from '../../src/plan/observation.ts';
import type { DoctorFacts, DmFact } from '../../src/doctor/findings.ts';
import type { Manifest } from '../../src/model/manifest.ts';
import { dmIdentity, parseThingKey, thingKey } from '../../src/domain/names.ts';
import { chainLayers, chainHex } from '../../src/plan/layer-chain.ts';

export const POOL = 'demo';
export const POOL_DM = dmIdentity(POOL, 'pool');
export const POOL_DEV = '253:0';

export function poolStatus(over: Partial<PoolStatus> = {}): PoolStatus {
  return {
    transactionId: 5,
    metadataUsed: 100,
    metadataTotal: 1000,
    dataUsed: 100,
    dataTotal: 1000,
    heldMetadataRoot: null,
    mode: 'rw',
    discardPassdown: true,
    errorIfNoSpace: false,
    needsCheck: false,
    ...over,
  };
}

export function dmInfo(name: string, uuid: string, minor: number, over: Partial<DmInfo> = {}): DmInfo {
  return {
    name,
    uuid,
    major: 253,
    minor,
    openCount: 0,
    suspended: false,
    liveTable: true,
    inactiveTable: false,
    readOnly: false,
    eventNr: 0,
    targetCount: 1,
    devPath: `/dev/dm-${minor}`,
    ...over,
  };
}

export function thing(key: string, thinId: number, origin: string | null, state: LifecycleState = 'created', over: Partial<ThingRecord> = {}): ThingRecord {
  const { kind, name } = parseThingKey(key);
  const from: StableState = state === 'absent' || state === 'created' || state === 'activated' || state === 'mounted' ? state : 'created';
  return {
    key,
    kind,
    name,
    ...dmIdentity(POOL, kind, name),
    thinId,
    origin,
    sizeBytes: 1 << 30,
    lifecycle: { state, from, error: null },
    ready: true,
    mountpoint: null,
    digest: null,
    ...over,
  };
}

/** The key of the empty layer at the top of `stack` (bottom first, each the parent of the next), as the planner keys it. */
export function layerKey(...stack: string[]): string {
  return thingKey('layer', chainHex(chainLayers(manifest(stack)).top[stack[stack.length - 1]]));
}

/** The record of the empty layer at the top of `stack`, labelled with its manifest name. */
export function layer(stack: string[], thinId: number, state: LifecycleState = 'created', over: Partial<ThingRecord> = {}): ThingRecord {
  const origin = stack.length > 1 ? layerKey(...stack.slice(0, -1)) : 'base';
  return thing(layerKey(...stack), thinId, origin, state, { label: stack[stack.length - 1], ...over });
}

export function manifest(layers: string[], devices: Array<{ name: string; layer: string }> = []): Manifest {
  return {
    file: '',
    version: 1,
    pool: {
      name: POOL,
      data: { kind: 'file', file: 'data.img', sizeBytes: 1 << 30 },
      metadata: { kind: 'file', file: 'metadata.img', sizeBytes: 1 << 26 },
      blockSizeBytes: 65536,
      baseSizeBytes: 1 << 30,
      filesystem: 'ext4',
      minFreeFraction: 0.1,
      noSpaceTimeoutSeconds: 60,
    },
    layers: layers.map((name, i) => ({ name, parent: i === 0 ? null : layers[i - 1] })),
    devices: devices.map((d) => ({ name: d.name, layer: d.layer, state: 'activated', mountpoint: null, sizeBytes: null })),
  };
}

/** The key of layer os in baseState(). */
export const OS = layerKey('os');

/** base 0, layer os 1, device web 2 (activated), txid 5, pool active. */
export function baseState(over: Partial<EngineState> = {}): EngineState {
  const things = [thing('base', 0, null), layer(['os'], 1), thing('device:web', 2, OS, 'activated')];
  const desired = manifest(['os'], [{ name: 'web', layer: 'os' }]);
  return {
    ...initialState(),
    desired,
    poolSpec: desired.pool,
    pool: { name: POOL, ...POOL_DM, formatted: true, txid: 5, nextThinId: 3 },
    things: Object.fromEntries(things.map((t) => [t.key, t])),
    lastSeq: 40,
    ...over,
  };
}

export interface FactsOptions {
  state?: EngineState;
  status?: PoolStatus | null;
  thinIds?: number[] | null;
  /** Live thin devices: dm name -> thin id (pool POOL_DEV unless given as 'MAJ:MIN/ID'). */
  live?: Record<string, number | string>;
  foreign?: DmFact[];
  mounts?: Record<string, string>; // mountpoint -> dm name
  extraOwned?: DmFact[];
}

/** Facts as inspect.ts would gather them; by default everything agrees with baseState(). */
export function facts(opts: FactsOptions = {}): DoctorFacts {
  const state = opts.state ?? baseState();
  const status = opts.status === undefined ? poolStatus() : opts.status;
  const byName = new Map(Object.values(state.things).map((t) => [t.dmName, t]));
  const live = opts.live ?? { [state.things['device:web']?.dmName ?? 'x']: 2 };
  const devices: Record<string, DmInfo> = {};
  const dm: DmFact[] = [];
  let minor = 1;
  if (status) devices[POOL_DM.dmName] = dmInfo(POOL_DM.dmName, POOL_DM.uuid, 0);
  for (const [name, target] of Object.entries(live)) {
    const [pool, id] = typeof target === 'number' ? [POOL_DEV, target] : target.split('/');
    const uuid = byName.get(name)?.uuid ?? `thinlayer-${name}`;
    devices[name] = dmInfo(name, uuid, minor++);
    dm.push({ name, uuid, owned: true, liveTable: true, openCount: 0, thin: { pool, thinId: Number(id) } });
  }
  for (const d of opts.extraOwned ?? []) {
    devices[d.name] = dmInfo(d.name, d.uuid, minor++, { openCount: d.openCount });
    dm.push(d);
  }
  const mounts: Observation['mounts'] = {};
  for (const [mountpoint, name] of Object.entries(opts.mounts ?? {})) {
    const info = devices[name];
    mounts[mountpoint] = { source: info.devPath, major: info.major, minor: info.minor, mountpoint, fstype: 'ext4', options: ['rw'] };
  }
  const backing = (file: string) => ({ path: `/state/${file}`, kind: 'file' as const, exists: true, sizeBytes: 1 << 30, loop: null, majorMinor: '7:0' });
  const observed: Observation = {
    backend: 'sim',
    data: backing('data.img'),
    metadata: backing('metadata.img'),
    metadataBlank: false,
    foreignPool: null,
    pool: status ? { info: devices[POOL_DM.dmName], status } : null,
    devices,
    mounts,
  };
  return {
    state,
    observed,
    poolDmName: POOL_DM.dmName,
    thinIds: opts.thinIds === undefined ? (status ? [0, 1, 2] : null) : opts.thinIds,
    thinIdsError: null,
    devices: [...dm, ...(opts.foreign ?? [])],
    runInProgress: null,
  };
}

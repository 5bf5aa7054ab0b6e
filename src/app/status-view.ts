// The status view: what the log knows joined with what the kernel shows, as plain data.

import { liveHolders, type HolderRecord } from '../events/holders.ts';
import { currentPool } from '../lifecycle/current-pool.ts';
import type { Session } from '../engine/session.ts';
import { observeSystem } from '../engine/observe-system.ts';
import { observeThing, mountIndex } from '../plan/planner.ts';
import { thingKey } from '../domain/names.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import type { Observation } from '../plan/observation.ts';
import { chainLayers, chainHex } from '../plan/layer-chain.ts';
import { parseThinStatus } from '../kernel/thin-pool.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import { layerDriftOf, madeFromLayer } from '../plan/identity.ts';
import { SECTOR_BYTES } from '../model/units.ts';

export interface SpaceUse {
  used: number;
  total: number;
  usedBytes: number;
  totalBytes: number;
  percent: number;
}

export interface StatusView {
  backend: 'sim' | 'kernel';
  stateDir: string;
  pool: null | {
    name: string;
    dmName: string;
    active: boolean;
    mode: string | null;
    transactionId: number | null;
    data: SpaceUse | null;
    metadata: SpaceUse | null;
    needsCheck: boolean;
  };
  /** `failed`: its content failed to apply and the half-made layer is still there (`error` says why); the next apply deletes it and builds it again. */
  layers: Array<{
    name: string;
    parent: string | null;
    chainId: string | null;
    state: StableState | 'failed';
    error: string | null;
    mountpoint: string | null;
    thinId: number | null;
    ready: boolean;
    digest: string | null;
    usedBy: string[];
  }>;
  devices: Array<{
    name: string;
    /** The desired layer (the manifest's). */
    layer: string;
    /** The layer it is a snapshot of, as its own record says (null while it does not exist). */
    actualLayer: string | null;
    /** That layer's chain id, when the log knows it. */
    actualChainId: string | null;
    /** It is a snapshot of another layer than the desired one: the next apply replaces it. */
    layerDrift: boolean;
    state: StableState;
    desired: string;
    mountpoint: string | null;
    /** Where the mount's files are seen on this host, when not at the mountpoint (the simulated kernel keeps its mounts in the state dir). */
    seenAt?: string;
    thinId: number | null;
    dmName: string | null;
    devPath: string | null;
    /**
     * The device's name-stable node, /dev/mapper/NAME (a /dev/dm-N changes across reboots): devPath on
     * the real kernel when udev made that node, /dev/dm-N there without udev; on the simulated kernel,
     * which stands for a host with udev, /dev/mapper/NAME. Null while the device is not active.
     */
    stablePath?: string | null;
    /** The device's virtual size (null before it is made). */
    sizeBytes: number | null;
    /** Bytes the device maps in the pool, like lvs' Data% (null while it is not active: only an active thin device reports it). */
    mappedBytes: number | null;
    /** mappedBytes as a percentage of sizeBytes, two decimals. */
    mappedPercent: number | null;
  }>;
  /** containerd's snapshots (thinlayer snapshotter), which apply leaves alone. */
  snapshots?: Array<{
    namespace: string;
    key: string;
    kind: 'active' | 'view' | 'committed';
    parent: string | null;
    thinId: number | null;
    dmName: string | null;
    active: boolean;
  }>;
  /** Things the log owns that the manifest no longer wants (deleted by the next apply). */
  unwanted: string[];
  pendingSteps: number;
  /** Steps of the first look that another live process (the snapshotter) was carrying out: in flight, not interrupted (status --detailed-exitcode). */
  inFlightSteps?: number;
  lastRun: Session['state']['lastRun'];
  /** The snapshotter and watch running on this state dir (src/events/holders.ts): destroy and down refuse while they run. */
  holders?: HolderRecord[];
}

function use(used: number, total: number, unit: number): SpaceUse {
  return { used, total, usedBytes: used * unit, totalBytes: total * unit, percent: total > 0 ? Math.round((used / total) * 1000) / 10 : 0 };
}

export async function readStatus(session: Session, observed?: Observation): Promise<StatusView> {
  const state = session.state;
  const desired = state.desired;
  const current = currentPool(state);
  const poolSpec = current?.spec ?? null;
  const obs = observed ?? (await observeSystem(session.kernel, session.stateDir, poolSpec, session.state));
  const mounts = mountIndex(obs);
  const seen = (key: string): StableState => (state.things[key] ? observeThing(state.things[key], obs, mounts).state : 'absent');
  const st = obs.pool?.status ?? null;
  const pool = poolSpec
    ? {
        name: poolSpec.name,
        dmName: current!.dmName,
        active: obs.pool !== null,
        mode: st?.mode ?? null,
        transactionId: st?.transactionId ?? null,
        data: st ? use(st.dataUsed, st.dataTotal, poolSpec.blockSizeBytes) : null,
        metadata: st ? use(st.metadataUsed, st.metadataTotal, 4096) : null,
        needsCheck: st?.needsCheck ?? false,
      }
    : null;
  const content = state.content ?? (desired ? chainLayers(desired) : { units: [], top: {} });
  const layerKeyOf = (name: string) => thingKey('layer', chainHex(content.top[name] ?? ''));
  const layers = (desired?.layers ?? []).map((l) => {
    const key = layerKeyOf(l.name);
    const t = state.things[key];
    return {
      name: l.name,
      parent: l.parent,
      chainId: content.top[l.name] ?? null,
      state: t?.failed !== undefined && !t.ready ? ('failed' as const) : seen(key),
      error: t?.failed !== undefined && !t.ready ? t.failed : null,
      mountpoint: l.mountpoint ?? null,
      thinId: t?.thinId ?? null,
      ready: t?.ready ?? false,
      digest: t?.digest ?? null,
      usedBy: (desired?.devices ?? []).filter((d) => d.layer === l.name).map((d) => d.name),
    };
  });
  const devices = await Promise.all(
    (desired?.devices ?? []).map(async (d) => {
      const key = thingKey('device', d.name);
      const t = state.things[key];
      const info = t ? obs.devices[t.dmName] : undefined;
      const observedState = seen(key);
      const drift = t ? layerDriftOf(t, layerKeyOf(d.layer), d.layer, state) : null;
      const origin = t?.origin ? state.things[t.origin] : undefined;
      const mountpoint = observedState === 'mounted' && info ? (mounts.get(`${info.major}:${info.minor}`) ?? d.mountpoint) : d.mountpoint;
      return {
        name: d.name,
        layer: d.layer,
        actualLayer: t ? (drift ? drift.from : t.origin === layerKeyOf(d.layer) ? d.layer : madeFromLayer(t, state)) : null,
        actualChainId: origin?.kind === 'layer' ? (origin.digest ?? (t!.origin === layerKeyOf(d.layer) ? (content.top[d.layer] ?? null) : null)) : null,
        layerDrift: drift !== null,
        state: observedState,
        desired: d.state,
        mountpoint,
        ...(observedState === 'mounted' && mountpoint && session.kernel.mountedAt ? { seenAt: session.kernel.mountedAt(mountpoint) } : {}),
        thinId: t?.thinId ?? null,
        dmName: t?.dmName ?? null,
        devPath: info?.devPath ?? null,
        stablePath: info?.devPath ? (obs.backend === 'sim' && t ? `/dev/mapper/${t.dmName}` : info.devPath) : null,
        ...(await mappedOf(session.kernel, info?.liveTable ? t!.dmName : null, t?.sizeBytes ?? null)),
      };
    }),
  );
  const snapshots = Object.values(state.snapshots ?? {}).map((r) => {
    const t = state.things[r.id];
    return {
      namespace: r.namespace,
      key: r.key,
      kind: r.kind,
      parent: r.parent ? (state.snapshots[r.parent]?.key ?? null) : null,
      thinId: t?.thinId ?? null,
      dmName: t?.dmName ?? null,
      active: t ? obs.devices[t.dmName]?.liveTable === true : false,
    };
  });
  const wantedKeys = new Set(['base', ...content.units.map((u) => thingKey('layer', chainHex(u.chainId))), ...devices.map((d) => thingKey('device', d.name))]);
  return {
    backend: obs.backend,
    stateDir: session.stateDir.root,
    pool,
    layers,
    devices,
    snapshots,
    unwanted: Object.keys(state.things).filter((k) => !wantedKeys.has(k) && state.things[k].kind !== 'snapshot'),
    pendingSteps: Object.keys(state.pending).length,
    lastRun: state.lastRun,
    holders: await liveHolders(session.stateDir).catch(() => []),
  };
}

/** What an active thin device maps in its pool, from its status line (`mapped_sectors highest_sector`). */
async function mappedOf(
  kernel: KernelPort,
  dmName: string | null,
  sizeBytes: number | null,
): Promise<{ sizeBytes: number | null; mappedBytes: number | null; mappedPercent: number | null }> {
  if (dmName === null) return { sizeBytes, mappedBytes: null, mappedPercent: null };
  const line = (await kernel.status(dmName).catch(() => [])).find((l) => l.type === 'thin');
  const st = line ? parseThinStatus(line.params) : null;
  if (!st || st.failed || !Number.isFinite(st.mappedSectors)) return { sizeBytes, mappedBytes: null, mappedPercent: null };
  const mappedBytes = st.mappedSectors * SECTOR_BYTES;
  const mappedPercent = sizeBytes ? Math.round((mappedBytes / sizeBytes) * 10000) / 100 : null;
  return { sizeBytes, mappedBytes, mappedPercent };
}

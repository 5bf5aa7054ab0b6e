// The status view: what the log knows joined with what the kernel shows, as plain data.

import { currentPool } from '../lifecycle/current-pool.ts';
import type { Session } from '../reconcile/session.ts';
import { observeSystem } from '../reconcile/observe.ts';
import { observeThing, mountIndex } from '../plan/planner.ts';
import { thingKey } from '../domain/names.ts';
import type { StableState } from '../lifecycle/machine.ts';
import type { Observation } from '../plan/observation.ts';
import { chainLayers, chainHex } from '../plan/layer-chain.ts';

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
  layers: Array<{ name: string; parent: string | null; chainId: string | null; state: StableState | 'failed'; error: string | null; mountpoint: string | null; thinId: number | null; ready: boolean; digest: string | null; usedBy: string[] }>;
  devices: Array<{ name: string; layer: string; state: StableState; desired: string; mountpoint: string | null; thinId: number | null; dmName: string | null; devPath: string | null }>;
  /** Things the log owns that the manifest no longer wants (deleted by the next apply). */
  unwanted: string[];
  pendingSteps: number;
  lastRun: Session['state']['lastRun'];
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
  const devices = (desired?.devices ?? []).map((d) => {
    const key = thingKey('device', d.name);
    const t = state.things[key];
    const info = t ? obs.devices[t.dmName] : undefined;
    const observedState = seen(key);
    return {
      name: d.name,
      layer: d.layer,
      state: observedState,
      desired: d.state,
      mountpoint: observedState === 'mounted' && info ? (mounts.get(`${info.major}:${info.minor}`) ?? d.mountpoint) : d.mountpoint,
      thinId: t?.thinId ?? null,
      dmName: t?.dmName ?? null,
      devPath: info?.devPath ?? null,
    };
  });
  const wantedKeys = new Set(['base', ...content.units.map((u) => thingKey('layer', chainHex(u.chainId))), ...devices.map((d) => thingKey('device', d.name))]);
  return {
    backend: obs.backend,
    stateDir: session.stateDir.root,
    pool,
    layers,
    devices,
    unwanted: Object.keys(state.things).filter((k) => !wantedKeys.has(k)),
    pendingSteps: Object.keys(state.pending).length,
    lastRun: state.lastRun,
  };
}

// Where the kernel has one thin device now, from one observation. Pure.

import type { ThingRecord } from '../model/engine-state.ts';
import { createInDoubt } from '../lifecycle/machine.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import type { Observation } from './observation.ts';

export interface SeenState {
  state: StableState;
  /** A create was logged but not its outcome. */
  uncertain: boolean;
  mountedAt: string | null;
}

/** Where the kernel has a thin device now. `uncertain`: a create was logged but its outcome was not. */
export function observeThing(t: ThingRecord | undefined, obs: Observation, mountsByDevice: Map<string, string>): SeenState {
  if (!t) return { state: 'absent', uncertain: false, mountedAt: null };
  const info = obs.devices[t.dmName];
  if (info?.liveTable) {
    const mountedAt = mountsByDevice.get(`${info.major}:${info.minor}`) ?? null;
    return { state: mountedAt ? 'mounted' : 'activated', uncertain: false, mountedAt };
  }
  return { state: 'created', uncertain: createInDoubt(t.lifecycle), mountedAt: null };
}

/** Mountpoint by the mounted device's major:minor. */
export function mountIndex(observed: Observation): Map<string, string> {
  const index = new Map<string, string>();
  for (const [mountpoint, m] of Object.entries(observed.mounts)) index.set(`${m.major}:${m.minor}`, mountpoint);
  return index;
}

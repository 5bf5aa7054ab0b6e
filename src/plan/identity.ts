// What a thin device IS a snapshot of, against what it must be: the one answer the planner (to
// replace it), status (to show it) and doctor (to report it) share. Pure.
//
// It is judged from the log's records of the thing itself (its origin, the thin id its create_snap
// recorded, the manifest layer it was made from), never from the manifest last asked for: a run
// interrupted in the middle of a layer change has recorded the new manifest but left devices that
// are still snapshots of the old layer, and only their own records say so.

import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import type { Manifest } from '../model/manifest.ts';

/**
 * The manifest layer a device was made from: recorded with it (create_snap's `layer`); in logs older
 * than that record, its origin layer's manifest name, else what the recorded manifest last said.
 */
export function madeFromLayer(t: ThingRecord, state: Pick<EngineState, 'things' | 'desired'>): string | null {
  if (t.layer !== undefined) return t.layer;
  const origin = t.origin ? state.things[t.origin] : undefined;
  if (origin?.kind === 'layer' && origin.label) return origin.label;
  return deviceNamed(state.desired, t.name)?.layer ?? null;
}

/**
 * A device that is a snapshot of another layer than the one it must be: its origin (the layer's
 * chain) differs and so does the manifest layer it was made from. The same manifest layer with a
 * new chain is a source edited in place, after which a device keeps its data (docs/manifest.md):
 * not a change of what it is. Null when it is what it must be.
 */
export function layerDriftOf(
  t: ThingRecord,
  wantOrigin: string | null,
  wantLayer: string | undefined,
  state: Pick<EngineState, 'things' | 'desired'>,
): { from: string; to: string } | null {
  if (t.kind !== 'device' || wantLayer === undefined || t.origin === wantOrigin) return null;
  const from = madeFromLayer(t, state);
  if (from === wantLayer) return null;
  return { from: from ?? `${t.origin ?? 'nothing'}`, to: wantLayer };
}

/**
 * A layer that is a snapshot of another thin id than its parent's, as the parent is (or will be,
 * once this plan rebuilds it): the parent was made again after it, so it must be made again too.
 * Unknown (an older log, a create whose outcome is not logged) is not a difference.
 */
export function staleOrigin(t: ThingRecord, origin: ThingRecord | undefined): boolean {
  return t.kind === 'layer' && origin !== undefined && t.originThinId !== undefined && t.originThinId !== origin.thinId;
}

type DeviceSpec = Manifest['devices'][number];
const byNameCache = new WeakMap<Manifest, Map<string, DeviceSpec>>();

/** A manifest's device of that name, indexed once per manifest: the planner asks for each device, so a scan each time would be quadratic. */
export function deviceNamed(m: Manifest | null, name: string): DeviceSpec | undefined {
  if (!m) return undefined;
  let index = byNameCache.get(m);
  if (!index) {
    index = new Map(m.devices.map((d) => [d.name, d]));
    byNameCache.set(m, index);
  }
  return index.get(name);
}

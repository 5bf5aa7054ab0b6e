// A writable device that exists, changed in the manifest. Pure; called by the planner for each
// wanted device before it is brought to its desired state.
//
// - A new `layer` is a replacement: the device's data is deleted with it and a fresh snapshot of the
//   new layer takes its name. The plan says so (a destroy step naming the data lost), so it needs
//   confirmation. A source edited in place (same manifest layer, new content) is not: the device
//   keeps its data, being a snapshot independent of its origin.
// - A raised `size` grows the thin device (its table reloaded with the new length while it is live)
//   and then its filesystem, online; lowered sizes are refused earlier (changes.ts).

import type { Manifest } from '../manifest/types.ts';
import { describeThing, type ThingRecord } from '../lifecycle/projection.ts';
import type { StableState } from '../lifecycle/machine.ts';
import { formatSize } from '../manifest/sizes.ts';
import type { StepWriter } from './step-writer.ts';
import { RANK, type Want } from './wants.ts';

export interface Seen {
  state: StableState;
  uncertain: boolean;
  mountedAt: string | null;
}

type DeviceSpec = Manifest['devices'][number];
const byNameCache = new WeakMap<Manifest, Map<string, DeviceSpec>>();

/** A manifest's devices by name, indexed once per manifest: the planner asks for each device, so a scan each time would be quadratic. */
function deviceNamed(m: Manifest | null, name: string): DeviceSpec | undefined {
  if (!m) return undefined;
  let index = byNameCache.get(m);
  if (!index) {
    index = new Map(m.devices.map((d) => [d.name, d]));
    byNameCache.set(m, index);
  }
  return index.get(name);
}

/** The manifest layer a device was made from, as last recorded, when it changed; null otherwise. */
function replacedLayer(recorded: Manifest | null, desired: Manifest, t: ThingRecord, want: Want): { from: string; to: string } | null {
  if (t.kind !== 'device' || t.origin === want.origin) return null;
  const was = deviceNamed(recorded, t.name)?.layer;
  const now = deviceNamed(desired, t.name)?.layer;
  return was !== undefined && now !== undefined && was !== now ? { from: was, to: now } : null;
}

/**
 * Steps for a device whose layer changed (its deletion; the caller makes it anew when this returns
 * null) or whose size was raised (the record as it will be). Other things come back unchanged.
 */
export function planDeviceChange(w: StepWriter, recorded: Manifest | null, desired: Manifest, t: ThingRecord, seen: Seen, want: Want): ThingRecord | null {
  if (t.kind !== 'device' || seen.uncertain) return t;
  const replaced = replacedLayer(recorded, desired, t, want);
  if (replaced) {
    w.lifecycle(t, seen.state, 'absent', seen.mountedAt, null);
    const deletion = w.steps[w.steps.length - 1];
    if (deletion?.op === 'thin.delete') {
      deletion.reason = `replace ${describeThing(t)}: its layer changed from ${replaced.from} to ${replaced.to}, so every file written in it is deleted with thin id ${t.thinId} (${formatSize(t.sizeBytes)}) and it starts again as a snapshot of ${replaced.to}`;
      deletion.args = { ...deletion.args, replacedBy: replaced.to };
    }
    return null;
  }
  const size = deviceNamed(desired, t.name)?.sizeBytes ?? null;
  if (size === null || size <= t.sizeBytes || seen.state === 'absent') return t;
  w.add(
    'thin.resize',
    t.key,
    'update',
    { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, fromBytes: t.sizeBytes, sizeBytes: size, live: RANK[seen.state] >= RANK.activated },
    `grow ${describeThing(t)} from ${formatSize(t.sizeBytes)} to ${formatSize(size)}${RANK[seen.state] >= RANK.activated ? ' (its table reloaded with the new length, online)' : ''}`,
  );
  // Its filesystem is grown next, once it is mounted (the planner's fs.grow for a device not ready).
  return { ...t, sizeBytes: size, ready: false };
}

// A writable device that exists, changed in the manifest. Pure; called by the planner for each
// wanted device before it is brought to its desired state.
//
// - A new `layer` is a replacement: the device's data is deleted with it and a fresh snapshot of the
//   new layer takes its name. The plan says so (a destroy step naming the data lost), so it needs
//   confirmation. A source edited in place (same manifest layer, new content) is not: the device
//   keeps its data, being a snapshot independent of its origin.
// - A raised `size` grows the thin device (its table reloaded with the new length while it is live)
//   and then its filesystem, online; lowered sizes are refused earlier (changes.ts).

import type { Manifest } from '../model/manifest.ts';
import { describeThing } from '../lifecycle/projection.ts';
import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import { formatSize } from '../manifest/sizes.ts';
import type { StepWriter } from './step-writer.ts';
import { RANK, type Want } from './wants.ts';
import { deviceNamed, layerDriftOf } from './identity.ts';

export interface Seen {
  state: StableState;
  uncertain: boolean;
  mountedAt: string | null;
}

/**
 * Steps for a device that is a snapshot of another layer than its desired one (its deletion; the
 * caller makes it anew when this returns null) or smaller than its desired size (the record as it
 * will be). Other things come back unchanged. Both are judged by what the device is (its own
 * record: identity.ts), not by the manifest last recorded, so a change an interrupted run left half
 * done is planned again by the next one.
 */
export function planDeviceChange(
  w: StepWriter,
  state: Pick<EngineState, 'things' | 'desired'>,
  desired: Manifest,
  t: ThingRecord,
  seen: Seen,
  want: Want,
): ThingRecord | null {
  if (t.kind !== 'device' || seen.uncertain) return t;
  const replaced = layerDriftOf(t, want.origin, want.layer, state);
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

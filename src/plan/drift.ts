// The desired state not reached: each wanted thin device that is absent, not finished, a snapshot of
// another layer or parent, smaller than desired or in another state; each thing the manifest no
// longer wants that is still there; a pool file smaller than desired. Pure: what doctor reports as
// `drift` (src/doctor/desired-findings.ts). The planner plans the same differences away; this says
// them in words, thing by thing, judged by what each thing is (identity.ts).

import type { Manifest } from '../model/manifest.ts';
import { describeThing } from '../lifecycle/projection.ts';
import type { EngineState } from '../model/engine-state.ts';
import { formatSize } from '../manifest/sizes.ts';
import type { Observation } from './observation.ts';
import type { LayerContent } from '../model/layer-content.ts';
import { wants, RANK, type PlanMode } from './wants.ts';
import { observeThing, mountIndex } from './observe-thing.ts';
import { layerDriftOf, staleOrigin } from './identity.ts';

export interface Drift {
  /** A thing key (`device:web1`), or `pool`. */
  subject: string;
  /** What it is, against what is desired, for people. */
  message: string;
  /** A layer `thinlayer commit` made that no manifest declares yet: expected right after a commit, not damage. */
  undeclaredCommit?: true;
}

export interface DriftInput {
  desired: Manifest;
  state: EngineState;
  observed: Observation;
  /** The desired layers, resolved (the recorded content). */
  content: LayerContent;
  mode: PlanMode;
}

/**
 * Every difference between what exists and the desired state. Things with a step in doubt are left
 * out (their intent is reported on its own), and so is a thing whose log disagrees with the kernel
 * about its state (doctor's device.* findings say that).
 */
export function driftOf({ desired, state, observed, content, mode }: DriftInput): Drift[] {
  const out: Drift[] = [];
  for (const role of ['data', 'metadata'] as const) {
    const spec = desired.pool[role];
    const seen = observed[role];
    if (spec.kind === 'file' && seen?.exists && seen.sizeBytes < spec.sizeBytes) {
      out.push({
        subject: 'pool',
        message: `the pool's ${role} file is ${formatSize(seen.sizeBytes)}, desired ${formatSize(spec.sizeBytes)} (a pool grow did not finish)`,
      });
    }
  }
  // With the pool down every device looks inactive: pool health says why, not each device.
  if (!observed.pool) return out;
  const inDoubt = new Set(Object.values(state.pending).map((p) => p.target));
  const mounts = mountIndex(observed);
  const wanted = wants(desired, mode, content);
  const wantedKeys = new Set(wanted.map((w) => w.key));
  for (const want of wanted) {
    if (inDoubt.has(want.key)) continue;
    const t = state.things[want.key];
    const who = describeThing({ kind: want.kind, name: want.name, label: want.label });
    if (!t) {
      out.push({ subject: want.key, message: `${who} is absent, desired ${want.state}` });
      continue;
    }
    if (t.kind === 'layer' && !t.ready) {
      // A layer whose content failed has its own finding (layer.failed).
      if (t.failed === undefined) out.push({ subject: want.key, message: `${who} is not finished: its content was never committed, desired complete` });
      continue;
    }
    if (t.kind === 'base' && !t.ready) {
      out.push({ subject: want.key, message: `${who} has no filesystem yet, desired formatted` });
      continue;
    }
    const layer = layerDriftOf(t, want.origin, want.layer, state);
    if (layer) out.push({ subject: want.key, message: `${who} is a snapshot of layer ${layer.from}, desired a snapshot of layer ${layer.to}` });
    const origin = want.origin ? state.things[want.origin] : undefined;
    if (staleOrigin(t, origin))
      out.push({
        subject: want.key,
        message: `${who} is a snapshot of thin id ${t.originThinId}, desired a snapshot of its parent's thin id ${origin!.thinId}`,
      });
    if (layer) continue; // replaced whole: its size and state are the new device's
    if (t.kind === 'device' && want.sizeBytes > t.sizeBytes) {
      out.push({ subject: want.key, message: `${who} is ${formatSize(t.sizeBytes)}, desired ${formatSize(want.sizeBytes)}` });
    } else if (t.kind === 'device' && !t.ready && RANK[want.state] >= RANK.activated && origin && t.sizeBytes > origin.sizeBytes) {
      out.push({ subject: want.key, message: `${who}'s filesystem is smaller than its ${formatSize(t.sizeBytes)}, desired grown to fill it` });
    }
    const seen = observeThing(t, observed, mounts);
    if (t.lifecycle.state !== seen.state || seen.uncertain) continue;
    if (seen.state !== want.state)
      out.push({ subject: want.key, message: `${who} is ${seen.state}, desired ${want.state}${want.state === 'mounted' ? ` at ${want.mountpoint}` : ''}` });
    else if (seen.state === 'mounted' && want.mountpoint && seen.mountedAt !== want.mountpoint)
      out.push({ subject: want.key, message: `${who} is mounted at ${seen.mountedAt}, desired at ${want.mountpoint}` });
  }
  for (const t of Object.values(state.things)) {
    if (wantedKeys.has(t.key) || t.kind === 'snapshot' || inDoubt.has(t.key)) continue;
    if (t.kind === 'layer' && t.committedFrom !== undefined && t.ready)
      out.push({
        subject: t.key,
        message: `${describeThing(t)} (thin id ${t.thinId}) was committed from ${t.committedFrom.replace(':', ' ')} and no manifest declares it yet, desired deleted`,
        undeclaredCommit: true,
      });
    else out.push({ subject: t.key, message: `${describeThing(t)} (thin id ${t.thinId}) is no longer in the manifest, desired deleted` });
  }
  return out.sort((a, b) => a.subject.localeCompare(b.subject, 'en', { numeric: true }));
}

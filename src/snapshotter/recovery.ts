// What a restarted snapshotter (and Cleanup) does with what a crash left. Every snapshot change
// makes its thin device before its record becomes visible and hides the record before deleting the
// device, so the rule is one: a snapshot's thin device without a record is half made or half
// removed, and is deleted (its thin id with it: none leaks); a record that is active or a view has
// its device activated again (after a reboot, after a crash mid-activation), and a committed one
// whose device a crash left active (mid-Usage) has it deactivated. Intents of snapshot
// steps whose outcome the crash lost are then settled in the log.
//
// Every decision here is taken from the session's projection, and that is the log's: Session.open
// replays the log before anything runs, starting from snapshot.json only when its own checksum and
// the digest of the log line it ends at both hold (src/events/snapshot.ts, replay.ts), and refusing a
// log with a damaged line (src/events/log-format.ts). So a thin device is deleted only when the log
// itself shows a snapshot device without a record; no cache can make a committed snapshot look
// like an orphan.

import type { Session } from '../engine/session.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { RunSteps } from './snapshot-steps.ts';
import { activate, deactivate, remove } from './snapshot-steps.ts';
import { forgetDeviceNode } from './device-node.ts';
import { releaseLeftMount } from './empty-root.ts';
import { createInDoubt } from '../lifecycle/machine.ts';
import type { StableState } from '../model/lifecycle-state.ts';

export interface RecoveryResult {
  deleted: number;
  reactivated: number;
  /** Committed snapshots whose device a crash left active (a Usage killed between its activate and deactivate). */
  deactivated: number;
  settled: number;
}

const isSnapshotTarget = (target: string) => target.startsWith('snapshot:');

/**
 * Deletes the thin devices of snapshots that have no record, except those `busy` names (a call in
 * flight is making or removing them: Cleanup while the snapshotter serves; at start there is none).
 */
export async function deleteOrphans(session: Session, runSteps: RunSteps, busy: (thingKey: string) => boolean = () => false): Promise<number> {
  const orphans = Object.values(session.state.things).filter((t) => t.kind === 'snapshot' && !session.state.snapshots[t.key] && !busy(t.key));
  for (const t of orphans) {
    await releaseLeftMount(session, runSteps, t);
    await runSteps(session, [remove(t)]);
    await forgetDeviceNode(t.dmName, session.stateDir);
  }
  return orphans.length;
}

/**
 * Where the kernel has the intent's device now, for the settling note: the device's lifecycle may
 * still be in the transient state of the step in doubt (a Usage killed after its activate's intent
 * is 'activating'), which the steps recovery ran after it could not move, and the note makes the
 * log say what the kernel shows. A snapshot's device is never left mounted under a record (the
 * empty root's mount is undone before the record is written; an orphan's is released above), so it
 * is active or not. A create in doubt keeps its doubt.
 */
async function seenNow(session: Session, kernel: KernelPort, target: string): Promise<{ observed?: StableState }> {
  const t = session.state.things[target];
  if (!t || createInDoubt(t.lifecycle)) return {};
  return { observed: (await kernel.info(t.dmName))?.liveTable ? 'activated' : 'created' };
}

export async function recoverSnapshots(session: Session, kernel: KernelPort, runSteps: RunSteps): Promise<RecoveryResult> {
  const stale = Object.values(session.state.pending).filter((p) => isSnapshotTarget(p.target));
  const deleted = await deleteOrphans(session, runSteps);
  let reactivated = 0;
  let deactivated = 0;
  // The kernel's devices read once, after the orphans went: with a thousand snapshots, one list is
  // what a start can afford, not a call per snapshot. Nothing else changes devices meanwhile (this
  // session holds the lock; each step below changes only its own snapshot's device).
  const devices = new Map((await kernel.listDevices()).map((d) => [d.name, d]));
  for (const r of Object.values(session.state.snapshots)) {
    const t = session.state.things[r.id];
    if (!t) continue;
    const info = devices.get(t.dmName) ?? null;
    if (r.kind === 'committed') {
      // A committed snapshot's device is active only for the length of a Usage call: live now, a
      // crash cut that call short, and it is deactivated as the call would have done.
      // A crash after the kernel removed it but before the outcome was logged leaves the log
      // saying "activated" with no device: the same deactivate (idempotent) brings the log to the
      // kernel, so doctor does not report a device that is not there.
      if (info || t.lifecycle.state === 'activated') {
        await runSteps(session, [deactivate(t)]);
        if (info) deactivated += 1;
      }
      continue;
    }
    if (info?.liveTable) continue;
    await runSteps(session, [activate(t)]);
    reactivated += 1;
  }
  const settled = stale.filter((p) => session.state.pending[p.stepId]);
  if (settled.length > 0) {
    const notes = [];
    for (const p of settled)
      notes.push({
        type: 'recovery.note' as const,
        kind: 'intent-resolved' as const,
        detail: { stepId: p.stepId, op: p.op, target: p.target, by: 'snapshotter', ...(await seenNow(session, kernel, p.target)) },
      });
    await session.append(notes);
  }
  return { deleted, reactivated, deactivated, settled: settled.length };
}

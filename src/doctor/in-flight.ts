// doctor beside a busy writer (the snapshotter, whose calls change the pool between bursts of the
// lock): the log is read, then the kernel, and work under way between the two looks shows as a
// difference that is no fault (a thin id made after the log was read looks like an orphan; one
// deleted, like a device whose data is gone; a metadata message sent, like a log behind its pool).
// Following the repair proposed for such a finding deletes data. So doctor reads the log a second
// time, after the kernel, and a finding is left out (counted in one `run.in-flight` note) when the
// two looks explain it:
//   - its subject (a thing, or `thin:ID`) changed between the looks, or is the target of a step
//     whose intent has no outcome yet in either look;
//   - the pool's transaction id is one the second look accounts for (its own, or the fence of a
//     step under way: ahead by exactly the pending steps), so neither `pool.log-behind` nor
//     `pool.transaction-mismatch` stands;
//   - a step that the first look saw without outcome has one in the second.
// Nothing explained is ever given gc, down or up as a repair. Pure.
//
// containerd's snapshots have findings of their own here (snapshotFindings): a record whose device
// is gone, and a snapshot device with no record that no call explains. Their repairs go through
// containerd or the snapshotter, never gc of a recorded snapshot's thin id.

import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import { accountedTxids } from '../plan/log-behind.ts';
import type { Finding } from './finding.ts';
import { sortFindings, doctorExitCode } from './finding.ts';
import type { DoctorFacts } from './findings.ts';
import type { DoctorReport } from './diagnose.ts';
import type { Plan } from '../model/step-contract.ts';
import type { SecondLook } from './second-look.ts';
import { logBehindText } from '../plan/log-behind.ts';

function thingShape(t: ThingRecord | undefined): string {
  return t ? JSON.stringify([t.thinId, t.dmName, t.lifecycle.state, t.ready]) : '';
}

/** Subjects (thing keys and `thin:ID`) that work under way explains, from two looks at the log. */
export function subjectsInFlight(first: EngineState, second: EngineState, touched: Iterable<string> = [], busy = false): Set<string> {
  const subjects = new Set<string>();
  const add = (key: string) => {
    subjects.add(key);
    for (const t of [first.things[key], second.things[key]]) if (t) subjects.add(`thin:${t.thinId}`).add(`dm:${t.dmName}`);
  };
  for (const key of new Set([...Object.keys(first.things), ...Object.keys(second.things)])) {
    if (thingShape(first.things[key]) !== thingShape(second.things[key])) add(key);
  }
  for (const key of touched) add(key);
  // A step that began or ended between the looks is under way; one without outcome in both looks
  // is only while a live process holds the lock (`busy`); otherwise a crash interrupted it.
  const steps = [...Object.values(first.pending), ...Object.values(second.pending)].filter(
    (p) => busy || !first.pending[p.stepId] !== !second.pending[p.stepId],
  );
  for (const p of steps) {
    add(p.target);
    const thinId = (p.args as { thinId?: unknown } | undefined)?.thinId;
    if (typeof thinId === 'number') subjects.add(`thin:${thinId}`);
  }
  // A snapshot's record changed (made, committed, removed) between the looks: its device too.
  for (const id of new Set([...Object.keys(first.snapshots ?? {}), ...Object.keys(second.snapshots ?? {})])) {
    if (first.snapshots?.[id] !== second.snapshots?.[id] && JSON.stringify(first.snapshots?.[id]) !== JSON.stringify(second.snapshots?.[id])) add(id);
  }
  return subjects;
}

const POOL_TX_CODES = new Set(['pool.log-behind', 'pool.transaction-mismatch']);

/** Whether a finding is explained by work under way between the two looks. */
function explained(f: Finding, subjects: Set<string>, facts: DoctorFacts, second: EngineState): boolean {
  if (POOL_TX_CODES.has(f.code)) {
    const txid = facts.observed.pool?.status.transactionId;
    if (txid === undefined) return false;
    // Between what the first look recorded and what the second accounts for (its own, or a fence
    // ahead by exactly the steps under way): the pool moved on while the log was catching up.
    const low = Math.min(...accountedTxids(facts.state));
    const high = Math.max(...accountedTxids(second));
    return txid >= low && txid <= high;
  }
  if (f.code === 'step.interrupted') {
    // Settled by the second look: it was under way, not interrupted.
    const pending = Object.values(facts.state.pending).filter((p) => p.target === f.subject);
    return pending.length > 0 && pending.every((p) => second.pending[p.stepId] === undefined);
  }
  return subjects.has(f.subject);
}

/** A recorded snapshot's thing key and thin id subjects. */
function recordedSubjects(state: EngineState): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of Object.values(state.snapshots ?? {})) {
    out.set(r.id, `${r.namespace ? `-n ${r.namespace} ` : ''}snapshots --snapshotter thinlayer rm ${r.key}`);
    const t = state.things[r.id];
    if (t) out.set(`thin:${t.thinId}`, out.get(r.id)!);
  }
  return out;
}

/** containerd's snapshots against their devices, on the second look, leaving out what is in flight. */
export function snapshotFindings(facts: DoctorFacts, second: EngineState, subjects: Set<string>): Finding[] {
  const findings: Finding[] = [];
  const inPool = facts.thinIds ? new Set(facts.thinIds) : null;
  for (const r of Object.values(second.snapshots ?? {})) {
    if (subjects.has(r.id)) continue;
    const t = second.things[r.id];
    const gone = !t ? 'has no thin device in the log' : inPool && !inPool.has(t.thinId) ? `has thin id ${t.thinId}, which the pool does not hold` : null;
    if (!gone) continue;
    findings.push({
      code: 'snapshot.device-missing',
      severity: 'error',
      subject: r.id,
      message: `containerd's snapshot ${r.key}${r.namespace ? ` (namespace ${r.namespace})` : ''} ${gone}: its data is gone, and containerd still lists it`,
      repair: `ctr ${recordedSubjects(second).get(r.id)} (containerd forgets it; thinlayer deletes nothing else)`,
    });
  }
  // While a live process holds the lock, a snapshot device without a record may be a call's under
  // way (the snapshotter holds its session through each call): only an idle state dir proves it left.
  for (const t of facts.runInProgress ? [] : Object.values(second.things)) {
    if (t.kind !== 'snapshot' || second.snapshots?.[t.key] || subjects.has(t.key)) continue;
    findings.push({
      code: 'snapshot.record-missing',
      severity: 'error',
      subject: t.key,
      message: `snapshot device ${t.dmName} (thin id ${t.thinId}) has no containerd record and no call is making or removing it: a half-made or half-removed snapshot`,
      repair:
        "none by hand: the snapshotter deletes it when containerd's garbage collection calls Cleanup, or at its next start (systemctl restart thinlayer-snapshotter)",
    });
  }
  return findings;
}

/**
 * The report as the two looks at the log explain it: findings of work under way left out and
 * counted in one note; findings about recorded snapshots repaired through containerd, never gc.
 */
export function settleInFlight(report: DoctorReport, facts: DoctorFacts, look: SecondLook): DoctorReport {
  const second = look.state;
  const subjects = subjectsInFlight(facts.state, second, look.touched, facts.runInProgress !== null);
  const kept: Finding[] = [];
  let left = 0;
  const snapshotRepair = recordedSubjects(second);
  const snapshotIssues = snapshotFindings(facts, second, subjects);
  const reported = new Set(snapshotIssues.map((f) => f.subject));
  for (const f of report.findings) {
    if (explained(f, subjects, facts, second)) {
      left += 1;
      continue;
    }
    // A recorded snapshot's device: reported above with a repair through containerd.
    if (reported.has(f.subject) && (f.code === 'thin.missing' || f.code === 'snapshot.device-missing')) continue;
    // gc, down and up do not manage containerd's snapshots (gc would delete a recorded one's thin id):
    // a snapshot's device is the snapshotter's to activate again (it does on Mounts and at start).
    const recorded = snapshotRepair.has(f.subject);
    if (recorded && f.repair && /thinlayer (gc|down|up)\b/.test(f.repair))
      kept.push({
        ...f,
        repair:
          "restart the snapshotter (it activates active snapshots and views again at start); not gc, down or up, which do not manage containerd's snapshots",
      });
    else kept.push(f);
  }
  kept.push(...snapshotIssues);
  if (left > 0) {
    kept.push({
      code: 'run.in-flight',
      severity: 'info',
      subject: 'log',
      message: `${left} difference(s) between the log and the kernel are work under way (the log moved on while doctor looked); run doctor again for them`,
      repair: null,
    });
  }
  const findings = sortFindings(kept);
  const thinInFlight = (id: number) => subjects.has(`thin:${id}`);
  return {
    ...report,
    orphans: report.orphans.filter((id) => !thinInFlight(id)),
    missing: report.missing.filter((m) => !subjects.has(m.key) && !thinInFlight(m.thinId)),
    findings,
    exitCode: doctorExitCode(findings),
  };
}

/** Whether the pool's transaction id lies between what the first look recorded and what the second accounts for. */
function txidInFlight(first: EngineState, second: EngineState, txid: number | undefined): boolean {
  if (txid === undefined || !first.pool || !second.pool) return false;
  return txid >= Math.min(...accountedTxids(first)) && txid <= Math.max(...accountedTxids(second));
}

/**
 * `status --detailed-exitcode` beside a busy writer: the plan made on the first look, less what the
 * second look explains (steps on things that changed between the looks; a log behind its pool by
 * no more than the writer's steps under way), and the first look's pending steps split into those
 * still without outcome and those the second look shows settled (in flight, not interrupted).
 */
export function settlePlanInFlight(
  plan: Plan,
  first: EngineState,
  look: SecondLook,
  txid: number | undefined,
  busy: boolean,
): { plan: Plan; stillPending: number } {
  const second = look.state;
  const subjects = subjectsInFlight(first, second, look.touched, busy);
  const behind = txidInFlight(first, second, txid) ? logBehindText({ poolTxid: txid!, logTxid: first.pool!.txid }) : null;
  const notBehind = (text: string) => behind === null || !text.startsWith(behind);
  const steps = plan.steps.filter((st) => !subjects.has(st.target));
  const settled = {
    ...plan,
    steps,
    blockers: plan.blockers.filter(notBehind),
    ...(plan.warnings ? { warnings: plan.warnings.filter(notBehind) } : {}),
  };
  const stillPending = Object.keys(first.pending).filter((id) => second.pending[id] !== undefined).length;
  return { plan: settled, stillPending };
}

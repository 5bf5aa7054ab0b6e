// The log against the kernel: what thinlayer's event log says it did, compared with what the pool's
// metadata and the device-mapper table show now. Pure: the facts are gathered by inspect.ts.
//
//   orphans   thin ids in the pool that the log does not own (a create whose log was lost, or a
//             tool other than thinlayer): they take space no device can reach.
//   missing   thin ids the log owns that the pool does not have (metadata rolled back or edited).
//   drift     devices the log says are active or mounted that are not, and the reverse.
//   tables    a thin table that names another thin id or pool than the log says.
//   unknown   a thinlayer-owned dm device on this pool that the log knows nothing about.

import { describeThing } from '../lifecycle/projection.ts';
import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import type { Observation } from '../plan/observation.ts';
import { observeThing, mountIndex } from '../plan/planner.ts';
import { createInDoubt } from '../lifecycle/machine.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import type { Finding } from './finding.ts';
import type { LogFacts } from './log-findings.ts';
import { logBehindOf, logBehindText, LOG_BEHIND_REPAIR } from '../plan/log-behind.ts';

/** A device-mapper device doctor looked at: every owned one, and any other whose thin table names the pool. */
export interface DmFact {
  name: string;
  uuid: string;
  /** Carries thinlayer's uuid prefix. */
  owned: boolean;
  liveTable: boolean;
  openCount: number;
  /** The thin target of its live table, when it has exactly one thin target. */
  thin: { pool: string; thinId: number } | null;
}

export interface DoctorFacts {
  state: EngineState;
  observed: Observation;
  poolDmName: string | null;
  /** Thin ids in the pool's metadata; null when they could not be read (see thinIdsError). */
  thinIds: number[] | null;
  thinIdsError: string | null;
  devices: DmFact[];
  /** A live process holds the state dir's lock: intents without outcome may simply be under way. */
  runInProgress: { pid: number; command: string } | null;
  /** The long-running processes alive on the state dir (holders/: the snapshotter, watch); absent in tests that build facts by hand. */
  liveHolders?: string[];
  /** The event log's own condition (torn tails kept or still there); absent in tests that build facts by hand. */
  log?: LogFacts;
}

export interface Orphan {
  thinId: number;
  /** A device whose live table maps it, if any (deleting an open thin id fails with EBUSY). */
  usedBy: DmFact | null;
}

export interface MissingThing {
  key: string;
  thinId: number;
  /** A dm device of it is live (its table names a thin id that is gone). */
  active: boolean;
}

function poolMajorMinor(facts: DoctorFacts): string | null {
  const info = facts.observed.pool?.info;
  return info ? `${info.major}:${info.minor}` : null;
}

/** Owned dm devices mapping this pool, as the kernel shows them, by the thin id they map. */
function usersOfPool(facts: DoctorFacts): Map<number, DmFact> {
  const pool = poolMajorMinor(facts);
  const users = new Map<number, DmFact>();
  for (const d of facts.devices) if (pool && d.thin?.pool === pool) users.set(d.thin.thinId, d);
  return users;
}

function ownedThinIds(state: EngineState): Set<number> {
  return new Set(Object.values(state.things).map((t) => t.thinId));
}

/** A create or a delete was logged but its outcome was not: the id may or may not be in the pool, and up settles it. */
function idInDoubt(t: ThingRecord): boolean {
  return createInDoubt(t.lifecycle) || t.lifecycle.state === 'deleting';
}

export function orphansOf(facts: DoctorFacts): Orphan[] {
  if (!facts.thinIds) return [];
  const owned = ownedThinIds(facts.state);
  const users = usersOfPool(facts);
  return [...facts.thinIds]
    .sort((a, b) => a - b)
    .filter((id) => !owned.has(id))
    .map((thinId) => ({ thinId, usedBy: users.get(thinId) ?? null }));
}

export function missingOf(facts: DoctorFacts): MissingThing[] {
  if (!facts.thinIds) return [];
  const inPool = new Set(facts.thinIds);
  return Object.values(facts.state.things)
    .filter((t) => !inPool.has(t.thinId) && !idInDoubt(t))
    .map((t) => ({ key: t.key, thinId: t.thinId, active: facts.observed.devices[t.dmName]?.liveTable === true }))
    .sort((a, b) => a.thinId - b.thinId);
}

/** Owned dm devices on this pool whose names the log has never given out. */
export function unknownDevicesOf(facts: DoctorFacts): DmFact[] {
  const pool = poolMajorMinor(facts);
  const known = new Set(Object.values(facts.state.things).map((t) => t.dmName));
  if (facts.poolDmName) known.add(facts.poolDmName);
  // A device mapping a thin id kept as foreign is part of what the user chose to keep.
  const kept = new Set(facts.state.pool?.foreign?.thinIds ?? []);
  return facts.devices.filter((d) => d.owned && !known.has(d.name) && pool !== null && d.thin?.pool === pool && !kept.has(d.thin.thinId));
}

const who = describeThing;

const STABLE: ReadonlySet<string> = new Set<StableState>(['absent', 'created', 'activated', 'mounted']);

function driftFinding(t: ThingRecord, logSays: StableState, seen: StableState, mountedAt: string | null): Finding | null {
  if (logSays === seen) {
    if (seen === 'mounted' && t.mountpoint && mountedAt && mountedAt !== t.mountpoint) {
      return {
        code: 'device.mounted-elsewhere',
        severity: 'warning',
        subject: t.key,
        message: `${who(t)} is mounted at ${mountedAt}, but the log says ${t.mountpoint}`,
        repair: 'thinlayer up',
      };
    }
    return null;
  }
  const base = { severity: 'warning' as const, subject: t.key, repair: 'thinlayer up' };
  if (logSays === 'mounted' && seen === 'activated')
    return { ...base, code: 'device.not-mounted', message: `${who(t)} should be mounted at ${t.mountpoint ?? '?'} by the log, but it is not mounted` };
  if ((logSays === 'mounted' || logSays === 'activated') && seen === 'created')
    return { ...base, code: 'device.not-active', message: `${who(t)} is ${logSays} by the log, but it has no device-mapper device` };
  if (seen === 'mounted')
    return { ...base, code: 'device.unexpectedly-mounted', message: `${who(t)} is mounted at ${mountedAt}, but the log says it is only ${logSays}` };
  if (seen === 'activated')
    return { ...base, code: 'device.unexpectedly-active', message: `${who(t)} has a live device-mapper device, but the log says it is only ${logSays}` };
  return null;
}

function tableFinding(t: ThingRecord, dm: DmFact | undefined, pool: string): Finding | null {
  if (!dm?.liveTable) return null;
  if (dm.thin && dm.thin.pool === pool && dm.thin.thinId === t.thinId) return null;
  const shows = dm.thin ? `thin id ${dm.thin.thinId} of ${dm.thin.pool === pool ? 'the pool' : `device ${dm.thin.pool}`}` : 'no thin target';
  return {
    code: 'thin.table-mismatch',
    severity: 'error',
    subject: t.key,
    message: `${who(t)}'s device ${t.dmName} maps ${shows}, but the log says thin id ${t.thinId} of the pool (${pool}): writes go somewhere thinlayer does not expect`,
    repair: 'thinlayer down && thinlayer up',
  };
}

function pendingFindings(facts: DoctorFacts): Finding[] {
  const pending = Object.values(facts.state.pending).sort((a, b) => a.seq - b.seq);
  if (pending.length === 0) return [];
  if (facts.runInProgress) {
    const { pid, command } = facts.runInProgress;
    return [
      {
        code: 'run.in-progress',
        severity: 'info',
        subject: 'log',
        message: `thinlayer ${command} (pid ${pid}) is running: ${pending.length} step(s) under way; findings may change when it ends`,
        repair: null,
      },
    ];
  }
  return pending.map((p) => ({
    code: 'step.interrupted',
    severity: 'warning' as const,
    subject: p.target,
    message: `step ${p.op} of ${p.target} (event ${p.seq}) was started and never finished: a crash or a kill interrupted it`,
    repair: p.op === 'orphan.delete' ? 'thinlayer gc --yes' : 'thinlayer up',
  }));
}

function backingFindings(facts: DoctorFacts): Finding[] {
  const { state, observed } = facts;
  if (!state.pool?.formatted) return [];
  const findings: Finding[] = [];
  for (const [role, b] of [
    ['data', observed.data],
    ['metadata', observed.metadata],
  ] as const) {
    // Missing is not lost: the pool and every device in it come back when the file or device does.
    if (b && !b.exists)
      findings.push({
        code: 'pool.backing-missing',
        severity: 'error',
        subject: 'pool',
        message: `the pool's ${role} ${b.kind === 'file' ? 'file' : 'device'} ${b.path} is missing; the log says the pool holds data there, so thinlayer changes nothing until it is back`,
        repair: `put ${b.path} back (${b.kind === 'file' ? 'move or restore the file there, or mount the disk it is on' : 'connect or assemble the device'}), then \`thinlayer up\``,
      });
  }
  if (findings.length === 0 && !observed.pool && observed.metadataBlank) {
    findings.push({
      code: 'pool.metadata-lost',
      severity: 'error',
      subject: 'pool',
      message: `the pool's metadata ${observed.metadata?.path ?? ''} is blank, but the log says it was formatted: every thin device's mappings are gone; thinlayer refuses to format over it`,
      repair: 'restore the metadata from a backup, or start over with `thinlayer destroy --yes`',
    });
  }
  return findings;
}

function transactionFinding(facts: DoctorFacts): Finding | null {
  const status = facts.observed.pool?.status;
  const logged = facts.state.pool?.txid;
  if (!status || status.mode === 'fail' || logged === undefined) return null;
  const behind = logBehindOf(facts.state, status);
  if (behind) {
    return {
      code: 'pool.log-behind',
      severity: 'error',
      subject: 'pool',
      message: `${logBehindText(behind)}; until it is settled apply, up and gc delete nothing and format nothing in this pool`,
      repair: LOG_BEHIND_REPAIR,
    };
  }
  const fenced = Object.values(facts.state.pending).flatMap((p) => (p.txid !== undefined ? [p.txid, p.txid + 1] : []));
  const expected = new Set([logged, ...fenced]);
  if (expected.has(status.transactionId)) return null;
  const why =
    status.transactionId > logged
      ? "something other than thinlayer changed the pool's metadata"
      : "the pool's metadata went back to an older transaction (restored, or repaired)";
  return {
    code: 'pool.transaction-mismatch',
    severity: 'info',
    subject: 'pool',
    message: `the pool's transaction id is ${status.transactionId}, the log's is ${logged}: ${why}; the orphan and missing findings say what differs`,
    repair: null,
  };
}

/** Layers whose content failed to apply and that are still in the pool, half made. */
function failedLayerFindings(facts: DoctorFacts): Finding[] {
  return Object.values(facts.state.things)
    .filter((t) => t.kind === 'layer' && !t.ready && t.failed !== undefined)
    .sort((a, b) => a.key.localeCompare(b.key))
    .map((t) => ({
      code: 'layer.failed',
      severity: 'warning' as const,
      subject: t.key,
      message: `${who(t)} failed: its content could not be applied (${t.failed}); it is half made and no device uses it`,
      repair: 'fix the layer source, then `thinlayer apply -f MANIFEST` (it deletes this layer and builds it again)',
    }));
}

/** Every finding from comparing the log with the kernel (pool health is judged in pool-health.ts). */
function foreignPoolFinding(facts: DoctorFacts): Finding | null {
  const f = facts.observed.foreignPool;
  if (!f) return null;
  const where = f.backingFiles.length > 0 ? ` (its backing files: ${f.backingFiles.join(', ')})` : '';
  return {
    code: 'pool.foreign',
    severity: 'error',
    subject: 'pool',
    message: `device ${f.dmName} holds this state directory's pool name but belongs to ${f.owner}${where}: ${f.why}; thinlayer will not load, format, snapshot or mount it`,
    repair: "give this manifest's pool another name (pool.name), or use the state directory that owns it",
  };
}

export function compareLogWithKernel(facts: DoctorFacts): Finding[] {
  const findings: Finding[] = [...backingFindings(facts), ...pendingFindings(facts), ...failedLayerFindings(facts)];
  const foreignPool = foreignPoolFinding(facts);
  if (foreignPool) findings.push(foreignPool);
  const tx = transactionFinding(facts);
  if (tx) findings.push(tx);

  if (facts.observed.pool && facts.thinIdsError) {
    findings.push({
      code: 'thin.ids-unreadable',
      severity: 'warning',
      subject: 'pool',
      message: `the thin ids in the pool's metadata could not be read: ${facts.thinIdsError}`,
      repair: 'thinlayer doctor (again, once the pool is healthy)',
    });
  }
  const created = new Set(facts.state.pool?.createdIds ?? []);
  const kept = new Set(facts.state.pool?.foreign?.thinIds ?? []);
  for (const o of orphansOf(facts)) {
    const foreign = o.usedBy && !o.usedBy.owned;
    const mapped = o.usedBy ? ` (device ${o.usedBy.name} maps it${foreign ? ', and thinlayer does not own that device' : ''})` : '';
    if (kept.has(o.thinId)) {
      findings.push({
        code: 'thin.foreign',
        severity: 'info',
        subject: `thin:${o.thinId}`,
        message: `thin id ${o.thinId} was kept as foreign: thinlayer never allocates or deletes it unless named${mapped}`,
        repair: null,
      });
      continue;
    }
    const ours = created.has(o.thinId);
    const gc = ours ? 'thinlayer gc --yes' : `thinlayer gc --thin-id ${o.thinId}`;
    findings.push({
      code: 'thin.orphan',
      severity: 'warning',
      subject: `thin:${o.thinId}`,
      message: ours
        ? `thin id ${o.thinId} is in the pool, and this log created it but no longer records it: it takes space no thinlayer device can reach${mapped}`
        : `thin id ${o.thinId} is in the pool but this log never created it (a newer log's device, or another tool's): it may hold someone's data; keep it with \`thinlayer gc --keep-foreign\`, or delete it by name${mapped}`,
      repair: foreign ? `dmsetup remove ${o.usedBy!.name} && ${gc}` : gc,
    });
  }
  for (const m of missingOf(facts)) {
    const t = facts.state.things[m.key];
    findings.push({
      code: 'thin.missing',
      severity: 'error',
      subject: m.key,
      message: `${who(t)} has thin id ${m.thinId} in the log, but the pool has no such thin id: its data is gone`,
      repair: m.active ? 'thinlayer down && thinlayer gc --yes && thinlayer up' : 'thinlayer gc --yes && thinlayer up',
    });
  }

  const pool = poolMajorMinor(facts);
  if (pool) {
    const mounts = mountIndex(facts.observed);
    const byName = new Map(facts.devices.map((d) => [d.name, d]));
    for (const t of Object.values(facts.state.things).sort((a, b) => a.key.localeCompare(b.key))) {
      const table = tableFinding(t, byName.get(t.dmName), pool);
      if (table) findings.push(table);
      if (!STABLE.has(t.lifecycle.state)) continue; // a step is in doubt: reported above
      const seen = observeThing(t, facts.observed, mounts);
      const drift = driftFinding(t, t.lifecycle.state as StableState, seen.state, seen.mountedAt);
      if (drift) findings.push(drift);
    }
    const behind = facts.observed.pool ? logBehindOf(facts.state, facts.observed.pool.status) !== null : false;
    for (const d of unknownDevicesOf(facts)) {
      findings.push({
        code: 'dm.unknown',
        severity: 'warning',
        subject: `dm:${d.name}`,
        message: `device ${d.name} carries thinlayer's uuid and maps thin id ${d.thin!.thinId} of the pool, but the log never created it${d.openCount > 0 ? ' (it is open)' : ''}`,
        // While the log is behind its pool, such a device is most likely a newer log's: settle that first.
        repair: behind ? LOG_BEHIND_REPAIR : d.openCount > 0 ? `close what holds ${d.name} open, then thinlayer gc --yes` : 'thinlayer gc --yes',
      });
    }
    const owned = ownedThinIds(facts.state);
    for (const d of facts.devices) {
      if (!d.owned && d.thin?.pool === pool && owned.has(d.thin.thinId)) {
        findings.push({
          code: 'dm.foreign-user',
          severity: 'error',
          subject: `dm:${d.name}`,
          message: `device ${d.name}, which thinlayer does not own, maps thin id ${d.thin.thinId}, a thinlayer device: two writers on one device corrupt it`,
          repair: `dmsetup remove ${d.name}`,
        });
      }
    }
  }
  return findings;
}

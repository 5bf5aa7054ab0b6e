// What `thinlayer gc` deletes, decided from doctor's facts. Pure.
//   - orphans that this log created (a thin id it asked the pool for whose record is gone): any other
//     thin id is deleted only when named (`gc --thin-id N`), after a confirmation with its mapped size;
//   - layers that the manifest no longer lists: layer devices, keyed by chain id, that no unit of the
//     desired content names (so no device in the desired state uses them);
//   - records of things whose thin id is gone from the pool (so that `up` can build them again);
//   - thinlayer-owned dm devices on the pool that the log never created, when nothing holds them open.
// Every deletion is a step, logged as an intent before and an outcome after, like any other.

import { makeStep, type Step } from '../model/step-contract.ts';
import { describeThing } from '../lifecycle/projection.ts';
import type { ThingRecord } from '../model/engine-state.ts';
import { observeThing, mountIndex } from '../plan/planner.ts';
import { pathBetween } from '../lifecycle/machine.ts';
import { thingKey } from '../domain/names.ts';
import { orphansOf, missingOf, unknownDevicesOf, type DoctorFacts } from './findings.ts';
import { chainLayers, chainHex } from '../plan/layer-chain.ts';
import { poolModeBlocker } from '../plan/pressure.ts';
import { logBehindOf, logBehindText, LOG_BEHIND_REPAIR } from '../plan/log-behind.ts';

export interface GcRequest {
  /** Delete this one thin id, which the log did not create (`gc --thin-id N`); nothing else is collected. */
  thinId?: number;
}

export const ORPHAN_DELETE = 'orphan.delete' as const;

/** An orphan delete whose intent was logged but not its outcome (a crash during an earlier gc). */
export interface InterruptedOrphanDelete {
  stepId: string;
  thinId: number;
  /** The fence: the pool's transaction id read just before the step. */
  txid: number | undefined;
}

export interface GcPlan {
  steps: Step[];
  settle: InterruptedOrphanDelete[];
  /** What gc leaves alone, and why. */
  skipped: Array<{ subject: string; reason: string }>;
  /** Reasons gc cannot run at all. */
  blockers: string[];
}

const who = describeThing;

/**
 * The keys of the layers the desired state wants, as the planner names them: the recorded content,
 * or for a log that holds none, the manifest's layers taken as empty. null when that cannot be known
 * safely: without recorded content, a layer with a source has a chain id no one here can compute,
 * and taking it as empty would collect the very layer the manifest lists.
 */
function listedLayerKeys(state: DoctorFacts['state']): Set<string> | null {
  if (!state.desired) return new Set();
  if (!state.content && state.desired.layers.some((l) => l.source)) return null;
  const content = state.content ?? chainLayers(state.desired);
  return new Set(content.units.map((u) => thingKey('layer', chainHex(u.chainId))));
}

function blockersOf(facts: DoctorFacts): string[] {
  const { state, observed } = facts;
  const pool = observed.pool;
  if (!state.pool) return ['no pool is recorded in the log: there is nothing to collect'];
  if (!pool)
    return [`pool ${facts.poolDmName ?? state.pool.dmName} is not active: run \`thinlayer up\` first (gc reads and deletes thin ids through the pool)`];
  if (pool.info.uuid !== state.pool.uuid)
    return [`device ${pool.info.name} has uuid "${pool.info.uuid}", not the "${state.pool.uuid}" the log created: gc touches only the pool thinlayer owns`];
  const blockers: string[] = [];
  const mode = poolModeBlocker(pool.status, pool.info.name);
  if (mode) blockers.push(mode);
  const behind = logBehindOf(state, pool.status);
  if (behind) blockers.push(`${logBehindText(behind)}: gc deletes nothing while it stands; ${LOG_BEHIND_REPAIR}`);
  if (!facts.thinIds) blockers.push(`the pool's thin ids could not be read${facts.thinIdsError ? `: ${facts.thinIdsError}` : ''}`);
  const interrupted = Object.values(state.pending).filter((p) => p.op !== ORPHAN_DELETE);
  if (interrupted.length > 0) blockers.push(`${interrupted.length} interrupted step(s) in the log: run \`thinlayer up\` first to settle them`);
  return blockers;
}

/** Thin ids this log asked the pool to create: the only ones gc deletes without being told which. */
export function createdByLog(facts: DoctorFacts): Set<number> {
  return new Set(facts.state.pool?.createdIds ?? []);
}

/** `gc --thin-id N`: that one id, when the pool holds it and no record of the log does. */
function planNamed(facts: DoctorFacts, thinId: number): GcPlan {
  const owner = Object.values(facts.state.things).find((t) => t.thinId === thinId);
  if (owner)
    return { steps: [], settle: [], skipped: [], blockers: [`thin id ${thinId} is ${who(owner)} in the log: change the manifest (and apply) to delete it`] };
  if (!facts.thinIds!.includes(thinId)) return { steps: [], settle: [], skipped: [], blockers: [`the pool holds no thin id ${thinId}`] };
  const user = facts.devices.find((d) => d.thin?.pool === `${facts.observed.pool!.info.major}:${facts.observed.pool!.info.minor}` && d.thin.thinId === thinId);
  if (user)
    return {
      steps: [],
      settle: [],
      skipped: [],
      blockers: [`thin id ${thinId} is mapped by device ${user.name}${user.owned ? '' : ', which thinlayer does not own'}: remove that device first`],
    };
  return {
    steps: [
      makeStep(
        ORPHAN_DELETE,
        `thin:${thinId}`,
        'destroy',
        { thinId, named: true },
        `delete thin id ${thinId}, named on the command line (the log did not create it)`,
      ),
    ],
    settle: [],
    skipped: [],
    blockers: [],
  };
}

export function planGc(facts: DoctorFacts, request: GcRequest = {}): GcPlan {
  const blockers = blockersOf(facts);
  if (blockers.length > 0) return { steps: [], settle: [], skipped: [], blockers };
  if (request.thinId !== undefined) return planNamed(facts, request.thinId);
  const { state, observed } = facts;
  const steps: Step[] = [];
  const skipped: GcPlan['skipped'] = [];

  const settle = Object.values(state.pending)
    .filter((p) => p.op === ORPHAN_DELETE)
    .sort((a, b) => a.seq - b.seq)
    .flatMap((p) => (p.op === ORPHAN_DELETE ? [{ stepId: p.stepId, thinId: p.args.thinId, txid: p.txid }] : []));

  // Devices first: a thin id a live device maps cannot be deleted (EBUSY).
  const removed = new Set<string>();
  for (const d of unknownDevicesOf(facts)) {
    if (d.openCount > 0) {
      skipped.push({ subject: `dm:${d.name}`, reason: `device ${d.name} is open: close what holds it, then run gc again` });
      continue;
    }
    removed.add(d.name);
    steps.push(
      makeStep(
        'thin.deactivate',
        `dm:${d.name}`,
        'destroy',
        { dmName: d.name },
        `remove device ${d.name}, which thinlayer's log never created (thin id ${d.thin!.thinId})`,
      ),
    );
  }

  // Layers the manifest no longer lists, children before parents.
  const missing = new Map(missingOf(facts).map((m) => [m.key, m]));
  const listed = listedLayerKeys(state);
  if (!listed)
    skipped.push({
      subject: 'layers',
      reason: "the log records no resolved content for the manifest's layers, so which layers it lists is unknown: run `thinlayer apply` first",
    });
  const depth = (t: ThingRecord): number => (t.origin && state.things[t.origin] ? 1 + depth(state.things[t.origin]) : 0);
  const mounts = mountIndex(observed);
  const unlisted = Object.values(state.things)
    .filter((t) => listed && t.kind === 'layer' && !listed.has(t.key) && !missing.has(t.key))
    .sort((a, b) => depth(b) - depth(a) || a.key.localeCompare(b.key));
  for (const t of unlisted) {
    const seen = observeThing(t, observed, mounts);
    if (seen.uncertain) {
      skipped.push({ subject: t.key, reason: `${who(t)}'s creation is in doubt: run \`thinlayer up\` first` });
      continue;
    }
    const mountpoint = seen.mountedAt ?? t.mountpoint;
    for (const command of pathBetween(seen.state, 'absent')) {
      if (command === 'UNMOUNT' && mountpoint)
        steps.push(makeStep('fs.unmount', t.key, 'update', { dmName: t.dmName, mountpoint }, `unmount ${who(t)} from ${mountpoint}`));
      if (command === 'DEACTIVATE') steps.push(makeStep('thin.deactivate', t.key, 'update', { dmName: t.dmName }, `deactivate ${who(t)}`));
      if (command === 'DELETE')
        steps.push(
          makeStep(
            'thin.delete',
            t.key,
            'destroy',
            { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes, discard: true },
            `delete ${who(t)} (thin id ${t.thinId}): the manifest no longer lists it`,
          ),
        );
    }
  }

  // Records of thin ids the pool no longer has: forget them, so that `up` builds them again.
  for (const m of missing.values()) {
    const t = state.things[m.key];
    if (m.active) {
      skipped.push({ subject: t.key, reason: `${who(t)}'s thin id ${t.thinId} is gone but its device ${t.dmName} is live: run \`thinlayer down\` first` });
      continue;
    }
    steps.push(
      makeStep(
        'thin.delete',
        t.key,
        'destroy',
        { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes, discard: false },
        `forget ${who(t)}: its thin id ${t.thinId} is gone from the pool`,
      ),
    );
  }

  // This log's own, and ids whose delete the user already chose (an orphan delete a crash interrupted).
  const created = new Set([...createdByLog(facts), ...settle.map((s) => s.thinId)]);
  const foreign = new Set(state.pool?.foreign?.thinIds ?? []);
  for (const o of orphansOf(facts)) {
    if (!created.has(o.thinId)) {
      // Not this log's: someone's data, as far as this log can tell (a newer log's device, another tool's).
      skipped.push({
        subject: `thin:${o.thinId}`,
        reason: `thin id ${o.thinId} was ${foreign.has(o.thinId) ? 'kept as foreign' : 'not created by this log'}: gc deletes it only when named, \`thinlayer gc --thin-id ${o.thinId}\``,
      });
      continue;
    }
    const user = o.usedBy;
    if (user && !removed.has(user.name)) {
      skipped.push({
        subject: `thin:${o.thinId}`,
        reason: `orphan thin id ${o.thinId} is mapped by device ${user.name}${user.owned ? '' : ', which thinlayer does not own'}: remove that device first`,
      });
      continue;
    }
    steps.push(
      makeStep(
        ORPHAN_DELETE,
        `thin:${o.thinId}`,
        'destroy',
        { thinId: o.thinId },
        `delete orphan thin id ${o.thinId} (this log created it; no record of the log holds it now)`,
      ),
    );
  }
  return { steps, settle, skipped, blockers: [] };
}

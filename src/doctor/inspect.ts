// Gather what doctor and gc judge: the projection, one observation of the system, every dm device
// that is thinlayer's or maps this pool, the pool's thin ids, and whether a run holds the lock.
// Reads only (the metadata snapshot a thin-id read holds is released before it returns).

import { currentPool } from '../lifecycle/current-pool.ts';
import type { Session } from '../engine/session.ts';
import type { DmTarget, KernelPort } from '../kernel/kernel-port.ts';
import { observeSystem } from '../engine/observe-system.ts';
import { ownershipJudge } from '../domain/ownership.ts';
import { readLockHolder, isLockHolderAlive } from '../events/lock.ts';
import { liveHolders } from '../events/holders.ts';
import type { DoctorFacts, DmFact } from './findings.ts';
import { KernelError } from '../errors/index.ts';
import { listKeptTornTails } from '../events/torn-tail.ts';

/** The single thin target of a table: `<pool major:minor> <thin id> [external origin]`. */
export function thinTargetOf(table: DmTarget[]): DmFact['thin'] {
  const thins = table.filter((t) => t.type === 'thin');
  if (thins.length !== 1 || table.length !== 1) return null;
  const [pool, id] = thins[0].params.trim().split(/\s+/);
  return pool && /^\d+$/.test(id ?? '') ? { pool, thinId: Number(id) } : null;
}

async function dmFacts(kernel: KernelPort, poolMajorMinor: string | null, judge: ReturnType<typeof ownershipJudge>): Promise<DmFact[]> {
  const facts: DmFact[] = [];
  for (const d of await kernel.listDevices()) {
    // Owned: exactly the uuid the log recorded for that name, or a uuid carrying this state dir's identity.
    const owned = judge(d) !== 'foreign';
    // A device that vanishes between the list and the read is simply not there any more.
    const table = d.liveTable ? await kernel.table(d.name).catch(() => [] as DmTarget[]) : [];
    const thin = thinTargetOf(table);
    if (owned || (poolMajorMinor !== null && thin?.pool === poolMajorMinor)) {
      facts.push({ name: d.name, uuid: d.uuid, owned, liveTable: d.liveTable, openCount: d.openCount, thin });
    }
  }
  return facts.sort((a, b) => a.name.localeCompare(b.name));
}

function describeReadError(e: unknown): string {
  if (e instanceof KernelError) return e.message;
  const err = e as { stderr?: string; message?: string };
  const stderr = typeof err?.stderr === 'string' ? err.stderr.trim().split('\n')[0] : '';
  return stderr || String(err?.message ?? e);
}

export async function inspect(session: Session): Promise<DoctorFacts> {
  // The projection was replayed from snapshot.json's offset on: the lines before it are checked here.
  await session.verifyLog();
  const state = session.state;
  const pool = currentPool(state);
  const poolDmName = pool?.dmName ?? null;
  const observed = await observeSystem(session.kernel, session.stateDir, pool?.spec ?? null, state);
  const poolInfo = observed.pool?.info;
  const devices = await dmFacts(session.kernel, poolInfo ? `${poolInfo.major}:${poolInfo.minor}` : null, ownershipJudge(state));

  let thinIds: number[] | null = null;
  let thinIdsError: string | null = null;
  if (observed.pool && poolDmName && observed.metadata) {
    if (observed.pool.status.mode === 'fail') thinIdsError = 'the pool has failed';
    else {
      const metadataDev = observed.metadata.loop?.path ?? observed.metadata.path;
      try {
        thinIds = await session.kernel.listThinIds(poolDmName, metadataDev);
      } catch (e) {
        thinIdsError = describeReadError(e);
      }
    }
  }

  const holder = await readLockHolder(session.stateDir);
  // Another holder than this session (gc holds the lock itself; a read-only doctor never does, even
  // when a snapshotter in the same process, as in tests, holds it).
  const ours = holder?.pid === process.pid && session.holdsLock;
  const runInProgress = holder && !ours && (await isLockHolderAlive(holder)) ? { pid: holder.pid, command: holder.command } : null;
  const liveHolderKinds = (await liveHolders(session.stateDir)).map((h) => h.kind);
  const log = { keptTornTails: await listKeptTornTails(session.stateDir), unrepairedTornTail: session.unrepairedTornTail };
  return { state, observed, poolDmName, thinIds, thinIdsError, devices, runInProgress, liveHolders: liveHolderKinds, log };
}

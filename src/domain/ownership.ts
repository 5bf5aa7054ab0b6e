// Whose a device-mapper device is, judged from the log's projection. Pure.
//
//   recorded  its uuid is exactly one the log recorded for the pool or for a thin device
//   identity  its uuid carries this state directory's identity, but the log has no record of it
//             (a device made by this state dir whose record was lost with the log's tail)
//   foreign   anything else: another state directory's devices (same pool name or not), devices of
//             the releases before identities that this log did not record, other tools' devices
//
// A uuid is not enough to adopt a device: src/engine/observe-system.ts and actions.ts also check that
// its table is the one thinlayer would load (the pool on our backing devices, a thin device on our
// pool with our thin id).

import { dmIdentity, identityOfUuid } from './names.ts';
import type { PoolRecord, ThingRecord } from '../model/engine-state.ts';

export type Ownership = 'recorded' | 'identity' | 'foreign';

export interface OwnerView {
  identity: string | null;
  pool: Pick<PoolRecord, 'name' | 'dmName' | 'uuid'> | null;
  things: Record<string, Pick<ThingRecord, 'dmName' | 'uuid'>>;
}

/** The uuids the log recorded, by dm name. */
export function recordedUuids(state: OwnerView): Map<string, string> {
  const byName = new Map<string, string>();
  if (state.pool) byName.set(state.pool.dmName, state.pool.uuid);
  for (const t of Object.values(state.things)) byName.set(t.dmName, t.uuid);
  return byName;
}

/** Judges devices by name and uuid against one projection (build once, ask for every device). */
export function ownershipJudge(state: OwnerView): (d: { name: string; uuid: string }) => Ownership {
  const recorded = recordedUuids(state);
  return (d) => {
    const expected = recorded.get(d.name);
    if (expected !== undefined) return d.uuid === expected ? 'recorded' : 'foreign';
    return state.identity !== null && identityOfUuid(d.uuid) === state.identity ? 'identity' : 'foreign';
  };
}

/** The pool's dm name and uuid: as the log recorded them for this pool name, else as this identity names it. */
export function poolIdentityOf(state: Pick<OwnerView, 'identity' | 'pool'>, poolName: string): { dmName: string; uuid: string } {
  if (state.pool && state.pool.name === poolName) return { dmName: state.pool.dmName, uuid: state.pool.uuid };
  return dmIdentity(poolName, 'pool', undefined, state.identity);
}

/** Who owns a uuid, for messages: the identity it carries, or what kind of uuid it is. */
export function describeOwner(uuid: string): string {
  const id = identityOfUuid(uuid);
  if (id) return `the thinlayer state directory with identity ${id}`;
  if (uuid.startsWith('thinlayer-')) return `a thinlayer state directory of a release before identities (uuid "${uuid}")`;
  return uuid === '' ? "a device with no uuid (not thinlayer's)" : `uuid "${uuid}" (not thinlayer's)`;
}

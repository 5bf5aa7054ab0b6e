// Which pool is current, answered once: the desired manifest's pool, else the last one asked for
// (the projection keeps it after a destroy is asked, until the pool is gone, so that it can be torn
// down), with the dm identity thinlayer gives it: as the log recorded it for this pool name, else as
// this state directory's identity names it (src/domain/ownership.ts). Pure.

import type { Manifest, PoolSpec } from '../model/manifest.ts';
import { poolIdentityOf, type OwnerView } from '../domain/ownership.ts';
import type { EngineState } from '../model/engine-state.ts';

export interface CurrentPool {
  spec: PoolSpec;
  dmName: string;
  uuid: string;
}

type PoolView = Pick<EngineState, 'desired' | 'poolSpec'> & Pick<OwnerView, 'identity' | 'pool'>;

/** The pool of `desired` (by default the recorded desired state), else the last pool asked for; null when none was ever asked for. */
export function currentPoolSpec(state: Pick<EngineState, 'desired' | 'poolSpec'>, desired: Manifest | null = state.desired): PoolSpec | null {
  return desired?.pool ?? state.poolSpec;
}

/** The current pool with its dm name and uuid. */
export function currentPool(state: PoolView, desired: Manifest | null = state.desired): CurrentPool | null {
  const spec = currentPoolSpec(state, desired);
  return spec ? { spec, ...poolIdentity(state, spec.name) } : null;
}

/** The dm name and uuid of the pool of this name, for this state directory. */
export function poolIdentity(state: Pick<OwnerView, 'identity' | 'pool'>, poolName: string): { dmName: string; uuid: string } {
  return poolIdentityOf(state, poolName);
}

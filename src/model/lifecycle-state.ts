// The states of one thin device's lifecycle, as names: the stable ones (absent, created, activated,
// mounted), the transient ones a step passes through, and `failed`. The xstate machine that moves
// between them is src/lifecycle/machine.ts; these names are what the projection records.

export const STABLE_STATES = ['absent', 'created', 'activated', 'mounted'] as const;
export type StableState = (typeof STABLE_STATES)[number];
export type TransientState = 'creating' | 'activating' | 'mounting' | 'unmounting' | 'deactivating' | 'deleting';
export type LifecycleState = StableState | TransientState | 'failed';

/** A plain-data form of the machine's snapshot, kept in the projection and the read model. */
export interface LifecycleRecord {
  state: LifecycleState;
  /** The stable state a transient or failed state came from. */
  from: StableState;
  error: string | null;
}

// containerd's view of the snapshots, read from the projection: records by namespace and key, the
// children of a snapshot, and the Info that Stat, List and Update answer with.

import type { EngineState } from '../model/engine-state.ts';
import type { SnapshotRecord } from '../model/events.ts';
import type { SnapshotFields } from './filters.ts';

/** The one key of a snapshot in its namespace: containerd's keys are opaque strings. */
export const scoped = (namespace: string, key: string): string => `${namespace}\u0000${key}`;

/** Each record's scoped key, made once: records are replaced, never changed, so the cache holds. */
const scopedKeys = new WeakMap<SnapshotRecord, string>();
function scopedKeyOf(r: SnapshotRecord): string {
  let k = scopedKeys.get(r);
  if (k === undefined) scopedKeys.set(r, (k = scoped(r.namespace, r.key)));
  return k;
}

export class RecordIndex {
  #seq = -1;
  #state: EngineState | null = null;
  #byKey = new Map<string, SnapshotRecord>();
  #children = new Map<string, number>();

  /** The index of `state` (rebuilt when the projection moved on). */
  of(state: EngineState): this {
    if (state === this.#state && state.lastSeq === this.#seq) return this;
    this.#state = state;
    this.#seq = state.lastSeq;
    this.#byKey.clear();
    this.#children.clear();
    for (const r of Object.values(state.snapshots)) {
      this.#byKey.set(scopedKeyOf(r), r);
      if (r.parent) this.#children.set(r.parent, (this.#children.get(r.parent) ?? 0) + 1);
    }
    return this;
  }

  get(namespace: string, key: string): SnapshotRecord | undefined {
    return this.#byKey.get(scoped(namespace, key));
  }

  hasChildren(id: string): boolean {
    return (this.#children.get(id) ?? 0) > 0;
  }

  inNamespace(namespace: string): SnapshotRecord[] {
    return [...this.#byKey.values()].filter((r) => r.namespace === namespace);
  }
}

export function parentName(state: EngineState, r: SnapshotRecord): string {
  return r.parent ? (state.snapshots[r.parent]?.key ?? '') : '';
}

export function fieldsOf(state: EngineState, r: SnapshotRecord): SnapshotFields {
  return { kind: r.kind, name: r.key, parent: parentName(state, r), labels: r.labels };
}

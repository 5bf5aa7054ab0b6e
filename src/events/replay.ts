// Rebuilds the projected state: the snapshot (when still usable) plus the events after it, folded
// in order. It does not save a new snapshot; the caller does, when it likes.

import type { EventLog } from './log.ts';
import type { SnapshotStore } from './snapshot.ts';
import type { ThinlayerEvent } from '../model/events.ts';

export interface Replayed<S> {
  state: S;
  seq: number; // the last event folded in (0 for an empty log)
  replayed: number; // events folded by this call
  fromSnapshot: boolean;
}

export async function replay<S>(
  log: EventLog,
  store: SnapshotStore<S>,
  fold: (state: S, e: ThinlayerEvent) => S,
  initial: () => S,
  schema: number,
): Promise<Replayed<S>> {
  const snapshot = await store.load();
  // A snapshot of another schema was folded by other code; one beyond the log's end belongs to a
  // log that has since been replaced. Either way only a full replay is trustworthy.
  // It must also end at the very line it was made after: the digest of that line, checked, tells a
  // snapshot of this log from one of another (or of an older copy put back) with the same seq.
  const fits = snapshot !== null && snapshot.schema === schema && snapshot.seq <= log.lastSeq;
  const usable =
    fits &&
    (snapshot.seq === 0 ||
      (snapshot.offset !== undefined && snapshot.lineDigest !== undefined && (await log.lineDigestEndingAt(snapshot.offset)) === snapshot.lineDigest));
  let state = usable ? snapshot.state : initial();
  let seq = usable ? snapshot.seq : 0;
  const events = await log.readFrom(seq, usable ? snapshot.offset : undefined);
  for (const event of events) {
    state = fold(state, event);
    seq = event.seq;
  }
  return { state, seq, replayed: events.length, fromSnapshot: usable };
}

// doctor's (and status's) second look at the log, taken after the kernel was read (in-flight.ts says
// why): the log replayed again, read-only, as a session replays it, and the things the events since
// the first look touched (a thing activated and deactivated again between the looks is as it was,
// yet the kernel may have been read in the middle). Null when there is no log.

import type { StateDir } from '../events/state-dir.ts';
import { EventLog } from '../events/log.ts';
import { SnapshotStore } from '../events/snapshot.ts';
import { replay } from '../events/replay.ts';
import type { ThinlayerEvent } from '../model/events.ts';
import { foldInto, initialState, ownCopy, PROJECTION_SCHEMA } from '../lifecycle/projection.ts';
import type { EngineState } from '../model/engine-state.ts';

export interface SecondLook {
  state: EngineState;
  /** Thing keys that events after the first look named (steps' targets, snapshot records). */
  touched: Set<string>;
}

function touchedBy(e: ThinlayerEvent, into: Set<string>): void {
  if (e.type === 'step.intent') into.add(e.target);
  else if (e.type === 'snapshot.set') into.add(e.snapshot.id);
  else if (e.type === 'snapshot.removed') into.add(e.id);
}

/** The log as it stands now, and what changed in it after event `since` (the first look's last). */
export async function readLogAgain(stateDir: StateDir, since = Number.MAX_SAFE_INTEGER): Promise<SecondLook | null> {
  const log = await EventLog.openForReading(stateDir);
  if (!log) return null;
  try {
    const store = await SnapshotStore.open<EngineState>(stateDir);
    const touched = new Set<string>();
    const fold = (state: EngineState, e: ThinlayerEvent) => {
      if (e.seq > since) touchedBy(e, touched);
      foldInto(state, e);
      return state;
    };
    const replayed = await replay(log, store, fold, () => ownCopy(initialState()), PROJECTION_SCHEMA);
    // A projection saved between the looks covers some of those events: read them from the log.
    if (replayed.seq - replayed.replayed > since) for (const e of await log.readFrom(since)) touchedBy(e, touched);
    return { state: replayed.state, touched };
  } finally {
    await log.close();
  }
}

// doctor's second look at the log, taken after the kernel was read (in-flight.ts says why): the log
// replayed again, read-only, as a session replays it. Null when there is no log.

import type { StateDir } from '../events/state-dir.ts';
import { EventLog } from '../events/log.ts';
import { SnapshotStore } from '../events/snapshot.ts';
import { replay } from '../events/replay.ts';
import { foldInto, initialState, ownCopy, PROJECTION_SCHEMA, type EngineState } from '../lifecycle/projection.ts';

export async function readLogAgain(stateDir: StateDir): Promise<EngineState | null> {
  const log = await EventLog.openForReading(stateDir);
  if (!log) return null;
  try {
    const store = await SnapshotStore.open<EngineState>(stateDir);
    const replayed = await replay(log, store, (state, e) => (foldInto(state, e), state), () => ownCopy(initialState()), PROJECTION_SCHEMA);
    return replayed.state;
  } finally {
    await log.close();
  }
}

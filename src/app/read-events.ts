// `events`: the event log read, from a sequence number or a time, and followed as it grows.

import { openStateDir } from '../events/state-dir.ts';
import { EventLog } from '../events/log.ts';
import type { ThinlayerEvent } from '../model/events.ts';
import { UserError } from '../errors/index.ts';

/** Where reading starts: after a sequence number, or at a time. */
export type Since = { seq: number } | { time: number };

export interface EventsOptions {
  stateDir: string;
  since: Since;
  /**
   * Keep reading new events once the recorded ones are read: called then, it answers the signal
   * that ends following (so that a caller can start listening for what stops it only then).
   */
  follow?: () => AbortSignal;
}

function after(e: ThinlayerEvent, since: Since): boolean {
  return 'seq' in since ? e.seq > since.seq : Date.parse(e.at) >= since.time;
}

/** The events after `since`, then (following) each new one until the signal is aborted. Nothing when there is no log yet. */
export async function* readEvents(opts: EventsOptions): AsyncGenerator<ThinlayerEvent> {
  const dir = await openStateDir(opts.stateDir, { readOnly: true });
  const log = await EventLog.openForReading(dir);
  if (!log) {
    if (opts.follow)
      throw new UserError(
        `${dir.root} has no event log yet: nothing to follow (run \`thinlayer apply -f MANIFEST\` first)`,
        { path: '--state-dir' },
        'E_NO_LOG',
      );
    return;
  }
  try {
    const { events } = await log.readAll();
    let last = 'seq' in opts.since ? opts.since.seq : 0;
    for (const e of events) {
      if (after(e, opts.since)) yield e;
      last = Math.max(last, e.seq);
    }
    if (opts.follow) yield* log.follow(last, { signal: opts.follow() });
  } finally {
    await log.close();
  }
}

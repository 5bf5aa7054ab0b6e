// `snapshotter`: containerd's snapshotter service on this state dir, until stopped (src/snapshotter/command.ts).

import { runSnapshotter, type SnapshotterOptions } from '../snapshotter/command.ts';

export type { SnapshotterOptions };

/** Serves until the signal is aborted or a stop is requested; says when it has stopped. */
export async function serveSnapshotter(opts: SnapshotterOptions): Promise<{ snapshots: number }> {
  const served = await runSnapshotter(opts);
  opts.reporter.notify({ code: 'snapshotter.stopped' });
  return served;
}

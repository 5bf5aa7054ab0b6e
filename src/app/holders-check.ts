// destroy and down take the pool away (destroy deletes it, down deactivates it): a running snapshotter
// would go on serving a pool that is gone, and a running watch would make it all again at its next
// run. So they refuse while either runs, naming it and how to stop it. Given --force, they ask each
// to stop (a stop request it polls for: src/events/holders.ts) and wait until it has exited, and
// only then open their session. Under the lock they look once more: a holder that started in
// between (a supervisor restarting it) is refused, never run over.

import { openStateDir, type StateDir } from '../events/state-dir.ts';
import { heldError, liveHolders, requestStop, waitForExit } from '../events/holders.ts';
import type { Reporter } from '../messages/message-port.ts';

export interface HoldersCheckOptions {
  stateDir: string;
  reporter: Reporter;
  /** Ask the holders to stop and wait for them, instead of refusing. */
  force: boolean;
  signal?: AbortSignal;
  /** How long to wait for each holder to stop (default: $THINLAYER_HOLDER_STOP_WAIT_MS, else 60 s). */
  stopWaitMs?: number;
}

/** Before the session: refuses (E_HELD) while a holder runs, or with `force` stops each one and waits. */
export async function clearHolders(command: 'destroy' | 'down', opts: HoldersCheckOptions): Promise<void> {
  const dir = await openStateDir(opts.stateDir);
  const live = await liveHolders(dir);
  if (live.length === 0) return;
  if (!opts.force)
    throw await heldError(
      dir,
      live,
      command,
      `${live.length > 1 ? 'these run' : 'this runs'} on state dir ${dir.root}, and ${command} would take the pool from under ${live.length > 1 ? 'them' : 'it'}`,
    );
  for (const h of live) {
    await requestStop(dir, h, command);
    opts.reporter.notify({ code: 'holder.stopping', kind: h.kind, pid: h.pid });
  }
  for (const h of live) {
    await waitForExit(dir, h, { waitMs: opts.stopWaitMs, signal: opts.signal, command });
    opts.reporter.notify({ code: 'holder.stopped', kind: h.kind, pid: h.pid });
  }
}

/** Inside the session (the lock held): a holder that runs now started after clearHolders looked. */
export async function refuseHolders(command: 'destroy' | 'down', stateDir: StateDir): Promise<void> {
  const live = await liveHolders(stateDir);
  if (live.length > 0)
    throw await heldError(
      stateDir,
      live,
      command,
      `${live.length > 1 ? 'these run' : 'this runs'} on state dir ${stateDir.root} (started again after it was asked to stop?), and ${command} would take the pool from under ${live.length > 1 ? 'them' : 'it'}`,
    );
}

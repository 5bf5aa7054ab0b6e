// `down`: unmount and deactivate everything, keep all data; `up` brings it back.

import type { RunResult } from '../reconcile/reconcile.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { stateDirExists } from './checked-session.ts';
import { clearHolders, refuseHolders } from './holders-check.ts';
import { confirmer, reporterOf, withSession, type TakeDownOptions } from './options.ts';

/** Refused while a snapshotter or watch runs, unless `force`; null when nothing is recorded. */
export async function down(opts: TakeDownOptions): Promise<RunResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  await clearHolders('down', { stateDir: opts.stateDir, reporter: reporterOf(opts), force: opts.force === true, signal: opts.signal });
  return withSession(opts, true, 'down', async (s) => {
    await refuseHolders('down', s.stateDir);
    if (!s.state.desired) return null;
    return reconcile(s, {
      desired: s.state.desired,
      mode: 'down',
      command: 'down',
      reporter: reporterOf(opts),
      confirm: confirmer(opts),
      recordDesired: false,
      signal: opts.signal,
    });
  });
}

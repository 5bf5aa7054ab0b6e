// `destroy`: delete every device, the pool and its backing files.

import type { RunResult } from '../reconcile/reconcile.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { stateDirExists } from './checked-session.ts';
import { clearHolders, refuseHolders } from './holders-check.ts';
import { confirmer, reporterOf, withSession, type TakeDownOptions } from './options.ts';

/** Refused while a snapshotter or watch runs, unless `force`; null when nothing is recorded in the state dir (it does not exist): nothing is created to say so. */
export async function destroy(opts: TakeDownOptions): Promise<RunResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  await clearHolders('destroy', { stateDir: opts.stateDir, reporter: reporterOf(opts), force: opts.force === true, signal: opts.signal });
  return withSession(opts, true, 'destroy', async (s) => {
    await refuseHolders('destroy', s.stateDir);
    return reconcile(s, {
      desired: null,
      mode: 'converge',
      command: 'destroy',
      reporter: reporterOf(opts),
      confirm: confirmer(opts),
      recordDesired: true,
      signal: opts.signal,
    });
  });
}

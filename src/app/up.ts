// `up`: converge to the desired state already recorded (after a reboot, a crash or `down`).

import type { RunResult } from '../reconcile/reconcile.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { stateDirExists } from './checked-session.ts';
import { confirmer, reporterOf, withSession, type MutateOptions } from './options.ts';

/** null when nothing is recorded: no state dir, nothing to bring up, and nothing is created to say so. */
export async function up(opts: MutateOptions): Promise<RunResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  return withSession(opts, true, 'up', async (s) => {
    if (!s.state.desired && !s.state.poolSpec) return null;
    return reconcile(s, {
      desired: s.state.desired,
      mode: 'converge',
      command: 'up',
      reporter: reporterOf(opts),
      confirm: confirmer(opts),
      recordDesired: false,
      signal: opts.signal,
    });
  });
}

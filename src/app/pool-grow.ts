// `pool grow`: grow a file-backed pool: extend its sparse files, resize the loop devices, reload the pool table.

import { growPool, type GrowRequest, type GrowResult } from '../actions/grow-pool.ts';
import { stateDirExists } from './checked-session.ts';
import { withSession, type CommonOptions } from './options.ts';

/** Grow a file-backed pool; null when nothing is recorded in the state dir (like up). */
export async function growPoolTo(request: GrowRequest, opts: CommonOptions): Promise<GrowResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  return withSession(opts, true, 'pool grow', async (s) => {
    if (!s.state.desired && !s.state.poolSpec) return null;
    return growPool(s, request, { reporter: opts.reporter });
  });
}

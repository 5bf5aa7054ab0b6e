// A log behind its pool: the pool's metadata moved on past what this log recorded (an older
// events.ndjson put back, a log from a backup, the pool changed by another tool). It is a standing
// fact, judged on every run from the pool's transaction id, never overwritten by a pool load: while
// it stands, nothing is deleted or formatted in that pool (the planner, gc) and doctor says what to
// do. Pure.

import type { EngineState } from '../model/engine-state.ts';
import type { PoolStatus } from '../kernel/thin-pool.ts';

export interface LogBehind {
  /** The pool's transaction id now. */
  poolTxid: number;
  /** The last one this log recorded (or accepted with `gc --keep-foreign`). */
  logTxid: number;
}

/** The transaction ids the log can account for: its own, and the fences of steps in doubt (before and after). */
export function accountedTxids(state: EngineState): Set<number> {
  const ids = new Set<number>();
  if (state.pool) ids.add(state.pool.txid);
  for (const p of Object.values(state.pending)) if (p.txid !== undefined) ids.add(p.txid).add(p.txid + 1);
  return ids;
}

/** Whether the pool's transaction id is ahead of everything the log accounts for. */
export function logBehindOf(state: EngineState, status: PoolStatus | null | undefined): LogBehind | null {
  if (!status || !state.pool || status.mode === 'fail' || !state.pool.formatted) return null;
  const accounted = accountedTxids(state);
  const top = Math.max(...accounted);
  return status.transactionId > top ? { poolTxid: status.transactionId, logTxid: state.pool.txid } : null;
}

/** The repair, in words, for messages and doctor. */
export const LOG_BEHIND_REPAIR =
  'put the newer events.ndjson back (thinlayer doctor then finds nothing), or keep what the pool holds beyond this log as foreign with `thinlayer gc --keep-foreign`';

export function logBehindText(lb: LogBehind): string {
  return `the pool's transaction id is ${lb.poolTxid} but this log recorded ${lb.logTxid}: the pool holds changes this log never made (an older events.ndjson put back, or another tool)`;
}

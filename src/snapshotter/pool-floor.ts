// pool.minFree for containerd's calls: a Prepare or View on a pool whose free data or metadata space
// is below the floor is refused (ResourceExhausted) before anything is made, the way apply's planner
// refuses new snapshots (src/plan/pressure.ts words both). A snapshot made on a nearly full pool
// would fail on its container's first writes, or take the last metadata blocks every other
// snapshot needs; refusing it leaves the log and the pool as they were. A pool whose mode forbids
// metadata changes (failed, needs_check, read-only) is Unavailable: the operator, not the
// container's owner, has to act.
//
// The pool's status is read at each call (one status ioctl), so space freed by a Remove, `gc`, or a
// grow by `thinlayer watch` or `thinlayer pool grow` counts at once.

import type { KernelPort } from '../kernel/kernel-port.ts';
import { parsePoolStatus } from '../kernel/thin-pool.ts';
import { poolModeBlocker, pressureBlocker } from '../plan/pressure.ts';
import { SnapshotError } from './errors.ts';

const NODE_ADVICE =
  "Remove containers, images or snapshots (containerd's garbage collection then frees their thin devices), " +
  'grow the pool (`thinlayer pool grow`, or `thinlayer watch` beside the snapshotter for autoextend), or lower pool.minFree';

export interface PoolFloor {
  poolDmName: string;
  /** pool.minFree of the snapshotter's manifest, as a fraction. */
  minFreeFraction: number;
}

/** Throws ResourceExhausted (below the floor) or Unavailable (the pool's mode forbids changes); returns when a snapshot may be made. */
export async function refuseBelowFloor(kernel: KernelPort, floor: PoolFloor): Promise<void> {
  const line = (await kernel.status(floor.poolDmName)).find((l) => l.type === 'thin-pool');
  // No pool line: the create itself fails with the kernel's own error, as it did before this check.
  if (!line) return;
  const status = parsePoolStatus(line.params);
  const mode = poolModeBlocker(status, floor.poolDmName);
  if (mode) throw new SnapshotError('unavailable', mode);
  const short = pressureBlocker(status, floor.minFreeFraction, 1, NODE_ADVICE);
  if (short) throw new SnapshotError('resource-exhausted', short);
}

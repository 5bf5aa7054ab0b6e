// Pool pressure: the planner refuses new snapshots when the pool is nearly full or not writable,
// rather than creating devices that will fail on their first writes. Pure.

import type { PoolStatus } from '../kernel/thin-pool.ts';

/** Default for pool.minFree: keep a tenth of the pool's data and metadata free. */
export const DEFAULT_MIN_FREE_FRACTION = 0.1;

/** What an apply's user can do about it (the snapshotter says what a node's operator can). */
const APPLY_ADVICE = 'Free space with `thinlayer gc --yes` or by removing devices, give the pool more space, or lower pool.minFree';

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

function freeFraction(used: number, total: number): number | null {
  return total > 0 ? Math.max(0, total - used) / total : null;
}

/**
 * A message saying why `creates` new snapshots may not be made, when free data or metadata space
 * is below `minFreeFraction` (pool.minFree); null when there is room, or when nothing is created.
 */
export function pressureBlocker(status: PoolStatus, minFreeFraction: number, creates: number, advice: string = APPLY_ADVICE): string | null {
  if (creates <= 0 || status.mode === 'fail') return null;
  const short: string[] = [];
  for (const [what, used, total] of [
    ['data', status.dataUsed, status.dataTotal],
    ['metadata', status.metadataUsed, status.metadataTotal],
  ] as const) {
    const free = freeFraction(used, total);
    if (free !== null && free < minFreeFraction) short.push(`${what} ${percent(free)} free (${total - used} of ${total} blocks)`);
  }
  if (short.length === 0) return null;
  return (
    `the pool has ${short.join(' and ')}, below pool.minFree ${percent(minFreeFraction)}: ` +
    `refusing to create ${creates} new snapshot${creates === 1 ? '' : 's'}. ` +
    advice
  );
}

/** A message when the pool's mode forbids any metadata change (Fail, needs_check, read-only); null otherwise. */
export function poolModeBlocker(status: PoolStatus, poolDmName?: string): string | null {
  const pool = poolDmName ? `pool ${poolDmName}` : 'the pool';
  if (status.mode === 'fail') return `${pool} has failed: run \`thinlayer doctor\``;
  if (status.needsCheck) return `${pool} needs a metadata check (needs_check): run \`thinlayer doctor\``;
  if (status.mode === 'ro') return `${pool} is read-only: run \`thinlayer doctor\``;
  return null;
}

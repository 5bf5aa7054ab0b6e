// A pool's data or metadata that is not there (a file moved or on a disk not mounted, a device not
// connected) is missing, not lost: putting it back brings the pool and every device in it back. So
// the plan changes nothing and says where to put it; it never proposes to destroy. Pure.

import type { Observation } from './observation.ts';

export function missingBackingBlocker(observed: Observation, formatted: boolean): string | null {
  if (!formatted) return null; // nothing was written there yet: a missing file is simply created
  const missing = (['data', 'metadata'] as const).flatMap((role) => {
    const b = observed[role];
    return b && !b.exists ? [`the pool's ${role} ${b.kind === 'file' ? 'file' : 'device'} ${b.path}`] : [];
  });
  if (missing.length === 0) return null;
  return `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing, and the log says the pool holds data there: put ${missing.length > 1 ? 'them' : 'it'} back (move or restore the file to that path, mount the disk it is on, or connect the device), then run the same command again; nothing was changed`;
}

// `sim reboot`: the simulated kernel forgets its devices, loops and mounts, as a reboot would; pool
// metadata and device contents remain. Under the state dir's lock, so no run is cut in half.

import type { BackendChoice } from '../kernel/select.ts';
import { openStateDir } from '../events/state-dir.ts';
import { acquireLock } from '../events/lock.ts';
import { UserError, inFile } from '../errors/index.ts';

export interface SimRebootOptions {
  stateDir: string;
  backend?: BackendChoice;
}

export async function simReboot(opts: SimRebootOptions): Promise<{ rebooted: true }> {
  if (opts.backend === 'kernel')
    throw new UserError(
      'sim reboot reboots the simulated kernel only: it cannot be given --backend kernel',
      { path: '--backend', expected: 'sim or auto' },
      'E_USAGE',
    );
  const dir = await openStateDir(opts.stateDir);
  const lock = await acquireLock(dir, { command: 'sim reboot' }).catch(inFile(dir.path('lock')));
  try {
    // Imported when used: the simulator is not part of what the other commands load.
    const { SimKernel } = await import('../kernel/sim/index.ts');
    const sim = new SimKernel({ dir: dir.path('sim') });
    await sim.reboot().catch(inFile(dir.path('sim')));
    await sim.close();
  } finally {
    await lock.release();
  }
  return { rebooted: true };
}

// Choose the kernel backend: the real kernel where device-mapper is there and we are root,
// otherwise the simulated kernel (said in one line by the caller).

import { existsSync } from 'node:fs';
import type { KernelPort } from './port.ts';
import type { StateDir } from '../events/state-dir.ts';
import { UserError } from '../errors/index.ts';

export type BackendChoice = 'auto' | 'kernel' | 'sim';

export function kernelBackendUsable(): boolean {
  return existsSync('/dev/mapper/control') && process.geteuid?.() === 0;
}

/** `simDir`: where the simulated kernel keeps its state, when not the state dir's `sim` (a read-only command's throwaway one). */
export async function openKernel(choice: BackendChoice, stateDir: StateDir, simDir?: () => Promise<string>): Promise<{ kernel: KernelPort; notice: string | null }> {
  const useKernel = choice === 'kernel' || (choice === 'auto' && kernelBackendUsable());
  if (useKernel) {
    if (!kernelBackendUsable()) {
      throw new UserError('--backend kernel needs device-mapper (/dev/mapper/control) and root; this host has ' + (existsSync('/dev/mapper/control') ? 'device-mapper but you are not root' : 'no device-mapper'), { path: '--backend' });
    }
    const { LinuxKernel } = await import('./linux/index.ts');
    return { kernel: new LinuxKernel(), notice: null };
  }
  const { SimKernel } = await import('./sim/index.ts');
  const notice = choice === 'auto' ? 'no device-mapper here (or not root): using the simulated kernel in ' + stateDir.path('sim') : null;
  return { kernel: new SimKernel({ dir: simDir ? await simDir() : stateDir.path('sim') }), notice };
}

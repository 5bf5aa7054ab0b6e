// Choose the kernel backend, so that it is never a surprise: `auto` takes the real kernel wherever
// device-mapper is (its control node, or its line in /proc/misc), and refuses (exit 1) where it is but
// thinlayer is not root, rather than quietly simulating; only a host without device-mapper gets the
// simulated kernel from `auto` (said in one line by the caller). A state dir records the backend it
// was first changed with (`state.backend`, src/engine/session.ts) and is refused to the other one.

import { existsSync, readFileSync } from 'node:fs';
import type { KernelPort } from './kernel-port.ts';
import type { StateDir } from '../events/state-dir.ts';
import { StateError, UserError } from '../errors/index.ts';

export type BackendChoice = 'auto' | 'kernel' | 'sim';
export type Backend = KernelPort['kind'];

/** What the choice depends on: whether the host has device-mapper, and whether we are root. */
export interface HostFacts {
  deviceMapper: boolean;
  root: boolean;
}

export function hostFacts(): HostFacts {
  let misc = '';
  try {
    misc = readFileSync('/proc/misc', 'utf8');
  } catch {
    // no /proc: only the control node can tell
  }
  return { deviceMapper: existsSync('/dev/mapper/control') || /^\s*\d+\s+device-mapper\s*$/m.test(misc), root: process.geteuid?.() === 0 };
}

export function kernelBackendUsable(facts: HostFacts = hostFacts()): boolean {
  return facts.deviceMapper && facts.root;
}

/** The backend a choice comes to on a host (pure). Refuses what cannot be done or would surprise. */
export function chooseBackend(choice: BackendChoice, facts: HostFacts): Backend {
  if (choice === 'sim') return 'sim';
  if (choice === 'kernel') {
    if (!kernelBackendUsable(facts)) {
      throw new UserError(
        '--backend kernel needs device-mapper (/dev/mapper/control) and root; this host has ' +
          (facts.deviceMapper ? 'device-mapper but you are not root' : 'no device-mapper'),
        { path: '--backend' },
      );
    }
    return 'kernel';
  }
  if (!facts.deviceMapper) return 'sim';
  if (!facts.root) {
    throw new StateError(
      'this host has device-mapper, but thinlayer is not running as root: run it as root to use the real kernel, or give --backend sim to use the simulated kernel (nothing it makes is real)',
      'E_BACKEND',
    );
  }
  return 'kernel';
}

const BACKEND_NAME: Record<Backend, string> = { sim: 'the simulated kernel (--backend sim)', kernel: 'the real kernel (--backend kernel)' };

/** A state dir is used with the backend it recorded, or refused (exit 1) naming that backend. */
export function refuseOtherBackend(recorded: Backend | null | undefined, chosen: Backend, root: string): void {
  if (!recorded || recorded === chosen) return;
  throw new StateError(
    `the state dir ${root} was made with ${BACKEND_NAME[recorded]}, and this command would use ${BACKEND_NAME[chosen]}: give --backend ${recorded}, or another --state-dir for the other backend`,
    'E_BACKEND_MISMATCH',
  );
}

/** `simDir`: where the simulated kernel keeps its state, when not the state dir's `sim` (a read-only command's throwaway one). */
export async function openKernel(
  choice: BackendChoice | Backend,
  stateDir: StateDir,
  simDir?: () => Promise<string>,
  facts?: HostFacts,
): Promise<{ kernel: KernelPort; notice: string | null }> {
  const backend = chooseBackend(choice, facts ?? hostFacts());
  if (backend === 'kernel') {
    const { LinuxKernel } = await import('./linux/index.ts');
    return { kernel: new LinuxKernel(), notice: null };
  }
  const { SimKernel } = await import('./sim/index.ts');
  const notice = choice === 'auto' ? `no device-mapper on this host: using the simulated kernel in ${stateDir.path('sim')} (nothing it makes is real)` : null;
  return { kernel: new SimKernel({ dir: simDir ? await simDir() : stateDir.path('sim') }), notice };
}

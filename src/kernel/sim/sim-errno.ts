// The simulator's pure parts fail with an errno before they know which port operation they
// serve; the shell (sim-kernel.ts) turns that into a KernelError naming the operation and device.

import { ERRNO, KernelError } from '../../errors/index.ts';

/** The errnos the simulator returns: the shared table plus the few only the simulator needs. */
export const SIM_ERRNO = { ...ERRNO, ENOTDIR: 20, ENOTTY: 25, ERANGE: 34 } as const;
export type SimErrnoName = keyof typeof SIM_ERRNO;

export class SimErrno extends Error {
  constructor(
    readonly errnoName: SimErrnoName,
    readonly detail: string,
  ) {
    super(`${errnoName}: ${detail}`);
    this.name = 'SimErrno';
  }
}

export function fail(errnoName: SimErrnoName, detail: string): never {
  throw new SimErrno(errnoName, detail);
}

/** A SimErrno becomes the KernelError the real backend would throw; anything else passes through. */
export function toKernelError(e: unknown, operation: string, device: string): unknown {
  if (e instanceof SimErrno) return new KernelError(operation, device, SIM_ERRNO[e.errnoName], e.detail);
  return e;
}

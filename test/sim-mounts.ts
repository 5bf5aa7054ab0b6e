// Where a test finds the files of a mount made by the simulated kernel: under the state dir's
// simulator (src/kernel/sim/sim-fs.ts simMountPath), never at the mountpoint itself, since the
// simulated kernel writes nothing outside its state dir.

import { join } from 'node:path';
import { simMountPath } from '../src/kernel/sim/sim-fs.ts';

/** The path on this host of `below` inside the mount at `mountpoint` of the state dir's simulated kernel. */
export function simMounted(stateDir: string, mountpoint: string, ...below: string[]): string {
  return join(simMountPath(join(stateDir, 'sim'), mountpoint), ...below);
}

/** The same, for a simulated kernel kept in `simDir` (one simulated host shared by several state dirs). */
export function simMountedIn(simDir: string, mountpoint: string, ...below: string[]): string {
  return join(simMountPath(simDir, mountpoint), ...below);
}

// The mountpoints a manifest asks for, checked on the host before any step runs (plan time), so a
// bad one is a user error (exit 2) naming the manifest field and the path component at fault:
//   - no symlink anywhere in the path (a symlink would send a root mount wherever it points);
//   - every existing parent a directory only root can change (src/host/path-trust.ts);
//   - not inside the state directory, and not above it (a mount there would hide the event log);
//   - nothing but one of thinlayer's own devices mounted there already (the kernel would stack the
//     mount on top of, say, /home and hide it).
// The kernel backend checks the same things again as it mounts (src/kernel/linux/mountpoint.ts),
// through descriptors, so nothing changed in between is followed either.

import { lstatSync, type Stats } from 'node:fs';
import { UserError } from '../errors/index.ts';
import type { DmInfo, KernelPort, MountEntry } from '../kernel/kernel-port.ts';
import type { Manifest } from '../model/manifest.ts';
import { isWithin } from '../manifest/paths.ts';
import { untrustedDirectory } from './path-trust.ts';

export interface MountpointCheckInput {
  desired: Manifest | null;
  mode: 'converge' | 'down';
  stateDirRoot: string;
  /** The whole mount table, not only thinlayer's mounts. */
  mounts: MountEntry[];
  /** major:minor of thinlayer's own devices. */
  owned: Set<string>;
}

interface Wanted {
  field: string; // e.g. devices.web1.mountpoint
  mountpoint: string;
}

/** The mountpoints the manifest wants mounted in this mode. */
export function wantedMountpoints(desired: Manifest | null, mode: 'converge' | 'down'): Wanted[] {
  if (!desired || mode === 'down') return [];
  const out: Wanted[] = [];
  for (const layer of desired.layers) if (layer.mountpoint) out.push({ field: `layers.${layer.name}.mountpoint`, mountpoint: layer.mountpoint });
  for (const device of desired.devices)
    if (device.state === 'mounted' && device.mountpoint) out.push({ field: `devices.${device.name}.mountpoint`, mountpoint: device.mountpoint });
  return out;
}

/** Throws a UserError for the first mountpoint the host makes unsafe. */
export function checkMountpoints(input: MountpointCheckInput): void {
  const wanted = wantedMountpoints(input.desired, input.mode);
  if (wanted.length === 0) return;
  const top = new Map<string, MountEntry>();
  for (const m of input.mounts) top.set(m.mountpoint, m); // the last one listed is on top
  const judged = new Map<string, string | null>(); // parent directory -> why it is refused (shared by siblings)
  const seen = new Map<string, Stats | null>(); // path -> its lstat, so a shared parent is looked at once, not once a device
  for (const w of wanted) {
    const why = problemWith(w.mountpoint, input, top, judged, seen);
    if (why === null) continue;
    const file = input.desired?.file || 'manifest';
    throw new UserError(
      `${file}: ${w.field}: refusing mountpoint ${w.mountpoint}: ${why}`,
      { file: input.desired?.file, path: w.field, expected: 'a directory reached without symlinks, below directories only root can change' },
      'E_MOUNTPOINT',
    );
  }
}

function problemWith(
  mountpoint: string,
  input: MountpointCheckInput,
  top: Map<string, MountEntry>,
  judged: Map<string, string | null>,
  seen: Map<string, Stats | null>,
): string | null {
  const lstatOnce = (path: string): Stats | null => {
    if (!seen.has(path)) seen.set(path, lstatOrNull(path));
    return seen.get(path)!;
  };
  const stateDir = input.stateDirRoot;
  if (isWithin(mountpoint, stateDir)) return `it is inside the state directory ${stateDir}`;
  if (isWithin(stateDir, mountpoint)) return `the state directory ${stateDir} is inside it, and a mount there would hide it`;

  const names = mountpoint.split('/').filter((n) => n !== '');
  let reached = '';
  for (const [i, name] of names.entries()) {
    const parent = reached || '/';
    let verdict = judged.get(parent);
    if (verdict === undefined) {
      const st = lstatOnce(parent);
      verdict = st === null ? null : untrustedDirectory(st) && `${parent}: ${untrustedDirectory(st)}, so it could be changed to redirect the mount`;
      judged.set(parent, verdict);
    }
    if (verdict) return verdict;
    reached = `${reached}/${name}`;
    const st = lstatOnce(reached);
    if (st === null) return null; // the rest is made at mount time, without following symlinks
    const last = i === names.length - 1;
    const mounted = last ? top.get(reached) : undefined;
    const ours = mounted !== undefined && input.owned.has(`${mounted.major}:${mounted.minor}`);
    // The simulated kernel's mounts are symlinks at the mountpoint: one of its own mounts is not refused.
    if (st.isSymbolicLink() && !ours) return `${reached} is a symlink`;
    if (!st.isSymbolicLink() && !st.isDirectory()) return `${reached} is not a directory`;
    if (mounted && !ours)
      return `${mounted.source} (${mounted.major}:${mounted.minor}) is mounted there already, and thinlayer does not mount over what is not its own`;
  }
  return null;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return null; // a file above: the mount fails with ENOTDIR and says so
    throw e;
  }
}

/** checkMountpoints with the kernel's mount table, read only when the manifest wants something mounted. */
export async function checkMountpointsOnHost(
  kernel: KernelPort,
  stateDirRoot: string,
  desired: Manifest | null,
  mode: 'converge' | 'down',
  ownDevices: Record<string, DmInfo>,
): Promise<void> {
  if (wantedMountpoints(desired, mode).length === 0) return;
  const owned = new Set(Object.values(ownDevices).map((d) => `${d.major}:${d.minor}`));
  checkMountpoints({ desired, mode, stateDirRoot, mounts: await kernel.mounts(), owned });
}

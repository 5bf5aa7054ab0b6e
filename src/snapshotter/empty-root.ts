// A parentless snapshot's root must be empty, as an image's first layer expects (containerd's
// conformance suite compares it with a directory the layer alone was applied to). ext4's mkfs puts
// lost+found in the base's root, and the base is shared with manifest layers, so it is taken out of
// each parentless snapshot instead: mounted in the state dir's \`mnt/\`, lost+found removed,
// unmounted, all before the snapshot's record exists (a crash in between leaves a device that
// recovery unmounts and deletes). xfs has no lost+found.

import { lstat, mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { filesAt } from '../kernel/kernel-port.ts';
import type { Session } from '../engine/session.ts';
import type { ThingRecord } from '../model/engine-state.ts';
import type { Filesystem } from '../model/manifest.ts';
import { mount, unmount, type RunSteps } from './snapshot-steps.ts';

export type Thin = Pick<ThingRecord, 'key' | 'dmName' | 'uuid' | 'thinId' | 'sizeBytes'>;

/**
 * Where a snapshot's device is mounted before its record exists (here, and to grow it: root-size.ts),
 * so that one release undoes either after a crash. `mnt/` is resolved inside the state dir; the
 * mountpoint itself is left as it is (a mount is on it).
 */
export function privateMountpoint(session: Session, t: Thin): string {
  return join(session.stateDir.path('mnt'), t.dmName);
}

export async function emptyRoot(session: Session, runSteps: RunSteps, t: Thin, filesystem: Filesystem): Promise<void> {
  if (filesystem !== 'ext4') return;
  await mkdir(session.stateDir.path('mnt'), { recursive: true, mode: 0o700 });
  const where = privateMountpoint(session, t);
  await runSteps(session, [mount(t, where, filesystem)]);
  try {
    await rmdir(join(filesAt(session.kernel, where), 'lost+found')).catch((e) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  } finally {
    await runSteps(session, [unmount(t, where)]);
  }
  await rmdir(where).catch(() => undefined);
}

/** Lets go of a mount a crash left in the middle of emptyRoot or growRoot, before the device is deleted. */
export async function releaseLeftMount(session: Session, runSteps: RunSteps, t: Thin): Promise<void> {
  const where = privateMountpoint(session, t);
  if (!(await lstat(filesAt(session.kernel, where)).catch(() => null))) return;
  await runSteps(session, [unmount(t, where)]);
  await rmdir(where).catch(() => undefined);
}

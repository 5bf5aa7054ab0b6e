// A root size per container. An active snapshot is as large as its parent unless it asks for more:
// the label `containerd.io/snapshot/thinlayer.size` (what `ctr run --snapshotter-label` and the Go
// client's snapshots.WithLabels hand a snapshotter), else the manifest's `snapshotter.writableSize`.
//
// The larger snapshot is made at its size, as apply makes a device larger than its layer: its
// create_snap records the new length and leaves it not ready, its activation loads the longer
// table, and its filesystem is grown online in the private mount that empty-root.ts uses (resize2fs
// or xfs_growfs: the fs.grow step). All of it before the record is written, so a crash anywhere in
// between leaves a record-less device that recovery unmounts and deletes (recovery.ts), and a
// failed grow deletes it at once: containerd never sees a root of the wrong size.

import { mkdir, rmdir } from 'node:fs/promises';
import type { Session } from '../engine/session.ts';
import type { Filesystem } from '../model/manifest.ts';
import { makeStep } from '../model/step-contract.ts';
import { SECTOR_BYTES } from '../model/units.ts';
import { formatSize, readSize } from '../manifest/sizes.ts';
import { SnapshotError } from './errors.ts';
import { mount, unmount, type RunSteps } from './snapshot-steps.ts';
import { privateMountpoint, type Thin } from './empty-root.ts';

/** The label a Prepare sizes its snapshot with, in the manifest's size syntax (`640M`, `2G`) or bytes. */
export const SIZE_LABEL = 'containerd.io/snapshot/thinlayer.size';

export interface SizeRequest {
  labels: Record<string, string>;
  kind: 'active' | 'view';
  /** The size of what the snapshot is taken of: its parent's device, or the pool's base. */
  parentBytes: number;
  /** The manifest's `snapshotter.writableSize`, when it has one. */
  writableBytes: number | null;
}

/**
 * The size the new snapshot's device gets. InvalidArgument, before anything is made, for a label
 * that is not a size, is not whole sectors, is below the parent's size, or is on a view (a view is
 * read-only: its filesystem cannot be grown, and containerd mounts it as its parent is).
 */
export function snapshotSize(r: SizeRequest): number {
  const text = r.labels[SIZE_LABEL];
  if (text === undefined) return r.kind === 'active' && r.writableBytes !== null ? Math.max(r.parentBytes, r.writableBytes) : r.parentBytes;
  const bad = (why: string) => new SnapshotError('invalid-argument', `label ${SIZE_LABEL}=${JSON.stringify(text)}: ${why}`);
  if (r.kind === 'view') throw bad("a view is read-only and keeps its parent's size; only an active snapshot takes a size");
  const reading = readSize(text);
  if (!reading.ok) throw bad(reading.reason);
  const bytes = reading.bytes;
  if (bytes % SECTOR_BYTES !== 0) throw bad(`not a whole number of ${SECTOR_BYTES}-byte sectors`);
  if (bytes < r.parentBytes) throw bad(`below its parent's size, ${formatSize(r.parentBytes)}: a snapshot cannot be smaller than what it is taken of`);
  return bytes;
}

/** Grows the filesystem of a snapshot made larger than its parent to fill its device, in a private mount. */
export async function growRoot(session: Session, runSteps: RunSteps, t: Thin, filesystem: Filesystem): Promise<void> {
  await mkdir(session.stateDir.path('mnt'), { recursive: true, mode: 0o700 });
  const where = privateMountpoint(session, t);
  await runSteps(session, [mount(t, where, filesystem)]);
  try {
    await runSteps(session, [
      makeStep(
        'fs.grow',
        t.key,
        'update',
        { dmName: t.dmName, mountpoint: where, filesystem },
        `grow the filesystem of ${t.key} to fill its ${formatSize(t.sizeBytes)}`,
      ),
    ]);
  } finally {
    await runSteps(session, [unmount(t, where)]);
    await rmdir(where).catch(() => undefined);
  }
}

// A thin device opened for reading its files, and the steps that put it back after: a device that
// is mounted is read where it is; otherwise it is activated (when it is not) and mounted read-only at
// a private mountpoint in the state dir. Those activations and mounts are steps like any other (an
// intent before, an outcome after), so a crash in the middle leaves what the log shows. Shared by
// `diff` and `commit`, which read a device and its layer side by side.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Session } from '../engine/session.ts';
import { filesAt, type DmInfo } from '../kernel/kernel-port.ts';
import { makeStep, type Step } from '../model/step-contract.ts';
import { chainHex } from '../plan/layer-chain.ts';
import { describeThing } from '../lifecycle/projection.ts';
import type { ThingRecord } from '../model/engine-state.ts';

/** How a thin device is being read: where its files are, and the steps that put it back after. */
export interface Reading {
  files: string;
  undo: Step[];
}

/** Where a thin device is mounted for reading: a private mountpoint in the state dir's mnt/. */
export function readingMountpoint(s: Session, t: ThingRecord): string {
  return s.stateDir.path(join('mnt', `read-${t.kind === 'layer' ? chainHex(t.name) : `${t.kind}-${t.thinId}`}`));
}

/** The device is mounted at its private reading mountpoint: a reading a crash cut short. */
async function mountedForReading(s: Session, t: ThingRecord, info: DmInfo | null): Promise<boolean> {
  if (!info?.liveTable) return false;
  const at = readingMountpoint(s, t);
  return (await s.kernel.mounts()).some((m) => m.mountpoint === at && m.major === info.major && m.minor === info.minor);
}

/** A layer is only ever desired inactive, or mounted at its own mountpoint for inspection: active otherwise, a reading left it so. */
function strayLayer(t: ThingRecord, info: DmInfo | null): boolean {
  return t.kind === 'layer' && info?.liveTable === true && !(t.lifecycle.state === 'mounted' && t.mountpoint);
}

/** The steps that put back a reading a crash cut short: unmounted, and a layer deactivated. */
export async function leftoverReading(s: Session, t: ThingRecord): Promise<Step[]> {
  const info = await s.kernel.info(t.dmName);
  const undo: Step[] = [];
  if (await mountedForReading(s, t, info))
    undo.push(
      makeStep(
        'fs.unmount',
        t.key,
        'update',
        { dmName: t.dmName, mountpoint: readingMountpoint(s, t) },
        `unmount ${describeThing(t)}, left mounted by an interrupted reading`,
      ),
    );
  if (strayLayer(t, info) || (undo.length > 0 && t.kind !== 'device'))
    undo.push(makeStep('thin.deactivate', t.key, 'update', { dmName: t.dmName }, `deactivate ${describeThing(t)} again`));
  return undo;
}

export async function openForReading(s: Session, t: ThingRecord, filesystem: 'ext4' | 'xfs', run: (steps: Step[]) => Promise<void>): Promise<Reading> {
  const info = await s.kernel.info(t.dmName);
  // Left mounted here by a reading a crash cut short: read it there, and put it back after.
  if (await mountedForReading(s, t, info)) return { files: filesAt(s.kernel, readingMountpoint(s, t)), undo: await leftoverReading(s, t) };
  if (t.lifecycle.state === 'mounted' && t.mountpoint && info?.liveTable) {
    return { files: filesAt(s.kernel, t.mountpoint), undo: [] };
  }
  const steps: Step[] = [];
  const undo: Step[] = [];
  const thin = { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes };
  if (!info?.liveTable) steps.push(makeStep('thin.activate', t.key, 'update', thin, `activate ${describeThing(t)} to read it`));
  if (!info?.liveTable || strayLayer(t, info))
    undo.unshift(makeStep('thin.deactivate', t.key, 'update', { dmName: t.dmName }, `deactivate ${describeThing(t)} again`));
  // The private mountpoints live in the state dir's mnt/, made 0700 as layer commits make it.
  await mkdir(s.stateDir.path('mnt'), { recursive: true, mode: 0o700 });
  const mountpoint = readingMountpoint(s, t);
  steps.push(
    makeStep('fs.mount', t.key, 'update', { dmName: t.dmName, mountpoint, filesystem, readOnly: true }, `mount ${describeThing(t)} read-only to read it`),
  );
  undo.unshift(makeStep('fs.unmount', t.key, 'update', { dmName: t.dmName, mountpoint }, `unmount ${describeThing(t)} from ${mountpoint}`));
  await run(steps);
  return { files: filesAt(s.kernel, mountpoint), undo };
}

// In-memory builders for planner and projection tests: manifests (through test/builders/manifest.ts), observations and event streams.

import type { Manifest } from '../../src/model/manifest.ts';
import type { Observation } from '../../src/plan/observation.ts';
import type { DmInfo, MountEntry } from '../../src/kernel/kernel-port.ts';
import { intentEvent, doneEvent } from '../../src/events/step-events.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../../src/model/events.ts';
import type { StepOp, StepArgs, StepResult, CreateArgs } from '../../src/model/step-contract.ts';
import type { ThingKind } from '../../src/model/thing-kind.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { exampleManifest, loadedManifest } from '../builders/manifest.ts';

const G = 1024 ** 3;

/** The example manifest of docs/manifest.md as the engine sees it, read by the CLI's parser; `over` replaces its layers or devices. */
export function manifest(over: Partial<Pick<Manifest, 'layers' | 'devices'>> = {}): Manifest {
  const example = loadedManifest(exampleManifest(), '/m/web.yaml');
  return { ...example, layers: over.layers ?? example.layers, devices: over.devices ?? example.devices };
}

let minor = 0;
export function dm(name: string, uuid = name, live = true): DmInfo {
  minor += 1;
  return {
    name,
    uuid,
    major: 253,
    minor,
    openCount: 0,
    suspended: false,
    liveTable: live,
    inactiveTable: false,
    readOnly: false,
    eventNr: 0,
    targetCount: live ? 1 : 0,
    devPath: `/dev/dm-${minor}`,
  };
}

/** A host with nothing on it yet. */
export function emptyObservation(): Observation {
  return {
    backend: 'sim',
    data: { path: '/s/data.img', kind: 'file', exists: false, sizeBytes: 0, loop: null, majorMinor: null },
    metadata: { path: '/s/metadata.img', kind: 'file', exists: false, sizeBytes: 0, loop: null, majorMinor: null },
    metadataBlank: true,
    foreignPool: null,
    pool: null,
    devices: {},
    mounts: {},
  };
}

/** A host with the pool files attached and the pool active at a transaction id. */
export function poolUp(txid = 0, devices: DmInfo[] = [], mounts: MountEntry[] = []): Observation {
  const pool = dmIdentity('demo', 'pool');
  const poolInfo = dm(pool.dmName, pool.uuid);
  const loop = (n: number, path: string) => ({ path: `/dev/loop${n}`, major: 7, minor: n, backingFile: path, sizeBytes: G, readOnly: false });
  const obs = emptyObservation();
  obs.data = { ...obs.data!, exists: true, loop: loop(0, '/s/data.img'), majorMinor: '7:0' };
  obs.metadata = { ...obs.metadata!, exists: true, loop: loop(1, '/s/metadata.img'), majorMinor: '7:1' };
  obs.metadataBlank = false;
  obs.pool = { info: poolInfo, status: parsePoolStatus(`${txid} 100/16384 10/327680 - rw discard_passdown queue_if_no_space - 1024`) };
  obs.devices = { [poolInfo.name]: poolInfo, ...Object.fromEntries(devices.map((d) => [d.name, d])) };
  obs.mounts = Object.fromEntries(mounts.map((m) => [m.mountpoint, m]));
  return obs;
}

export function mountOf(info: DmInfo, mountpoint: string): MountEntry {
  return { source: info.devPath, major: info.major, minor: info.minor, mountpoint, fstype: 'ext4', options: ['rw'] };
}

/** A step's intent and its outcome, as the runner logs them: args and result are checked against the op's contract. */
export function stepEvents<O extends StepOp>(
  op: O,
  target: string,
  args: StepArgs<O>,
  result: StepResult<O>,
  opts: { id?: string; txid?: number } = {},
): ThinlayerEventBody[] {
  const id = opts.id ?? `r:${op}:${target}`;
  return [intentEvent(op, id, target, args, opts.txid), doneEvent(op, id, target, result)];
}

/** What the planner writes into a create of a thin device of the fixture pool. */
export function createArgs(kind: ThingKind, name: string, thinId: number, sizeBytes = manifest().pool.baseSizeBytes): CreateArgs {
  return { kind, name, thinId, sizeBytes, ...dmIdentity('demo', kind, name) };
}

/** What the planner writes into a snapshot of `origin`. */
export function snapArgs(
  kind: ThingKind,
  name: string,
  thinId: number,
  origin: { key: string; thinId: number; dmName: string },
  opts: { sizeBytes?: number; ready?: boolean } = {},
): StepArgs<'snap.create'> {
  return {
    ...createArgs(kind, name, thinId, opts.sizeBytes),
    origin: origin.key,
    originThinId: origin.thinId,
    originDmName: origin.dmName,
    ready: opts.ready ?? true,
  };
}

/** Stamp bodies into events with consecutive sequence numbers. */
export function stamp(bodies: ThinlayerEventBody[], from = 1): ThinlayerEvent[] {
  return bodies.map((b, i) => ({ ...b, seq: from + i, at: '2026-11-28T00:00:00.000Z' }) as ThinlayerEvent);
}

// What the engine saw of the system in one read: plain data, so the planner stays pure and tests
// can build observations in memory.

import type { DmInfo, LoopDevice, MountEntry } from '../kernel/kernel-port.ts';
import type { PoolStatus } from '../kernel/thin-pool.ts';

export interface BackingObservation {
  /** The resolved path (a file in the state dir, or the block device). */
  path: string;
  kind: 'file' | 'device';
  exists: boolean;
  sizeBytes: number;
  /** Loop device the file is attached to (files only). */
  loop: LoopDevice | null;
  /** Major:minor the pool table names (the loop device for files, the device itself otherwise). */
  majorMinor: string | null;
}

/** A device with the pool's dm name that is not this state directory's pool. */
export interface ForeignPool {
  dmName: string;
  uuid: string;
  /** Who owns it, for people (src/domain/ownership.ts describeOwner). */
  owner: string;
  /** The state directory identity its uuid carries, if any. */
  identity: string | null;
  /** The files behind its loop devices: where the owning state directory is. */
  backingFiles: string[];
  /** Why it is not ours: its uuid, or its table. */
  why: string;
}

export interface Observation {
  backend: 'sim' | 'kernel';
  data: BackingObservation | null;
  metadata: BackingObservation | null;
  /** First 4 KiB of the metadata device are zero: a blank pool, safe to format. */
  metadataBlank: boolean;
  pool: { info: DmInfo; status: PoolStatus } | null;
  /** A device holds the pool's dm name but is not this state directory's pool: nothing is done in it. */
  foreignPool: ForeignPool | null;
  /** Owned device-mapper devices by dm name (the pool included). */
  devices: Record<string, DmInfo>;
  /** Mounts of owned devices, by mountpoint. */
  mounts: Record<string, MountEntry>;
}

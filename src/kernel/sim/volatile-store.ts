// What a reboot loses: device-mapper devices (names, minors, tables, suspend state, the pool
// objects' runtime mode), loop attachments and mounts. Kept under <sim dir>/volatile as one
// journal of whole-record puts, with indexes rebuilt in memory, so lookups stay O(1) with
// thousands of devices.

import { Journal, type JournalCodec } from './journal.ts';
import { devicesHeld, DM_MAJOR, LOOP_MAJOR, type ParsedTarget } from './dm-table.ts';
import { formatDevT, type PoolMode } from './status-format.ts';
import type { Filesystem } from '../../model/manifest.ts';

/** A table as loaded: its targets, and what the constructors opened. */
export interface LoadedTable {
  parsed: ParsedTarget[];
  /** For a thin-pool table: the pool model (persistent store) it opened. */
  poolId?: string;
  /** For a thin table: the pool model of the pool device it names. */
  thinPoolId?: string;
}

/** The in-kernel pool object's state (struct pool): lives as long as the pool device. */
export interface PoolRuntime {
  poolId: string;
  mode: PoolMode;
  lowWaterTriggered: boolean;
}

export interface DmDeviceRecord {
  name: string;
  uuid: string;
  minor: number;
  readOnly: boolean;
  suspended: boolean;
  eventNr: number;
  deferredRemove: boolean;
  live: LoadedTable | null;
  inactive: LoadedTable | null;
  pool: PoolRuntime | null;
}

export interface LoopRecord {
  minor: number;
  backingFile: string;
  sizeBytes: number;
  readOnly: boolean;
  /** Detach asked for while in use: the loop goes when its last user lets go (autoclear). */
  detachPending: boolean;
}

export interface MountRecord {
  mountpoint: string;
  source: string;
  minor: number; // of the dm device
  fstype: Filesystem;
  readOnly: boolean;
  discard: boolean;
  /** Mounted without nosuid / nodev (absent in journals written before the options existed: false). */
  suid?: boolean;
  dev?: boolean;
  poolId: string;
  thinId: number;
}

export type VolatileOp =
  | { t: 'dev'; name: string; v: DmDeviceRecord | null }
  | { t: 'loop'; minor: number; v: LoopRecord | null }
  | { t: 'mount'; mountpoint: string; v: MountRecord | null };

export function dmDevT(minor: number): string {
  return formatDevT({ major: DM_MAJOR, minor });
}
export function loopDevT(minor: number): string {
  return formatDevT({ major: LOOP_MAJOR, minor });
}

function tablesOf(rec: DmDeviceRecord): LoadedTable[] {
  return [rec.live, rec.inactive].filter((t): t is LoadedTable => t !== null);
}

/** The devices a record's tables hold open, each once (dm keeps one reference per device). */
export function heldBy(rec: DmDeviceRecord): string[] {
  const held = new Set<string>();
  for (const table of tablesOf(rec)) for (const dev of devicesHeld(table.parsed)) held.add(formatDevT(dev));
  return [...held];
}

function thinUsesOf(rec: DmDeviceRecord): string[] {
  const uses = new Set<string>();
  for (const table of tablesOf(rec)) {
    if (!table.thinPoolId) continue;
    for (const t of table.parsed) if (t.type === 'thin') uses.add(`${table.thinPoolId}/${t.thinId}`);
  }
  return [...uses];
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(value);
}
function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

export class VolatileState {
  readonly devices = new Map<string, DmDeviceRecord>();
  readonly loops = new Map<number, LoopRecord>();
  readonly mounts = new Map<string, MountRecord>();
  // Indexes.
  readonly byMinor = new Map<number, string>();
  readonly byUuid = new Map<string, string>();
  /** dev_t "M:m" -> names of the dm devices whose tables hold it open. */
  readonly holders = new Map<string, Set<string>>();
  /** "<pool id>/<thin id>" -> names of the dm devices with a table using that thin id. */
  readonly thinUsers = new Map<string, Set<string>>();
  /** Pool model id -> name of the dm device whose table opened it. */
  readonly poolDevice = new Map<string, string>();
  /** dm minor -> mountpoints. */
  readonly mountsByMinor = new Map<number, Set<string>>();
  private lowestFreeMinorHint = 0;
  private lowestFreeLoopHint = 0;

  apply(op: VolatileOp): void {
    if (op.t === 'dev') this.putDevice(op.name, op.v);
    else if (op.t === 'loop') this.putLoop(op.minor, op.v);
    else this.putMount(op.mountpoint, op.v);
  }

  private putDevice(name: string, rec: DmDeviceRecord | null): void {
    const old = this.devices.get(name);
    if (old) {
      this.byMinor.delete(old.minor);
      if (old.uuid) this.byUuid.delete(old.uuid);
      for (const dev of heldBy(old)) removeFrom(this.holders, dev, name);
      for (const use of thinUsesOf(old)) removeFrom(this.thinUsers, use, name);
      for (const t of tablesOf(old)) if (t.poolId && this.poolDevice.get(t.poolId) === name) this.poolDevice.delete(t.poolId);
      this.devices.delete(name);
      if (old.minor < this.lowestFreeMinorHint) this.lowestFreeMinorHint = old.minor;
    }
    if (!rec) return;
    this.devices.set(name, rec);
    this.byMinor.set(rec.minor, name);
    if (rec.uuid) this.byUuid.set(rec.uuid, name);
    for (const dev of heldBy(rec)) addTo(this.holders, dev, name);
    for (const t of tablesOf(rec)) if (t.poolId) this.poolDevice.set(t.poolId, name);
    for (const use of thinUsesOf(rec)) addTo(this.thinUsers, use, name);
  }

  private putLoop(minor: number, rec: LoopRecord | null): void {
    if (rec) this.loops.set(minor, rec);
    else {
      this.loops.delete(minor);
      if (minor < this.lowestFreeLoopHint) this.lowestFreeLoopHint = minor;
    }
  }

  private putMount(mountpoint: string, rec: MountRecord | null): void {
    const old = this.mounts.get(mountpoint);
    if (old) removeFrom(this.mountsByMinor, old.minor, mountpoint);
    if (rec) {
      this.mounts.set(mountpoint, rec);
      addTo(this.mountsByMinor, rec.minor, mountpoint);
    } else this.mounts.delete(mountpoint);
  }

  /** The kernel hands out the lowest free minor (idr_alloc), so minors are reused. */
  lowestFreeMinor(): number {
    let m = this.lowestFreeMinorHint;
    while (this.byMinor.has(m)) m++;
    this.lowestFreeMinorHint = m;
    return m;
  }
  lowestFreeLoop(): number {
    let m = this.lowestFreeLoopHint;
    while (this.loops.has(m)) m++;
    this.lowestFreeLoopHint = m;
    return m;
  }

  /** Open count as DM_DEV_STATUS reports it: tables of other devices holding it, plus a mount. */
  openCount(rec: DmDeviceRecord): number {
    return (this.holders.get(dmDevT(rec.minor))?.size ?? 0) + (this.mountsByMinor.has(rec.minor) ? 1 : 0);
  }
  loopInUse(minor: number): boolean {
    return this.holders.has(loopDevT(minor));
  }
  thinInUse(poolId: string, thinId: number): boolean {
    return this.thinUsers.has(`${poolId}/${thinId}`);
  }

  toJSON(): unknown {
    return { devices: [...this.devices.values()], loops: [...this.loops.values()], mounts: [...this.mounts.values()] };
  }

  static fromJSON(json: unknown): VolatileState {
    const j = json as { devices: DmDeviceRecord[]; loops: LoopRecord[]; mounts: MountRecord[] };
    const state = new VolatileState();
    for (const rec of j.devices) state.putDevice(rec.name, rec);
    for (const loop of j.loops) state.putLoop(loop.minor, loop);
    for (const mount of j.mounts) state.putMount(mount.mountpoint, mount);
    return state;
  }
}

const codec: JournalCodec<VolatileState, VolatileOp> = {
  empty: () => new VolatileState(),
  apply: (state, op) => state.apply(op),
  toJSON: (state) => state.toJSON(),
  fromJSON: (json) => VolatileState.fromJSON(json),
};

export class VolatileStore {
  readonly journal: Journal<VolatileState, VolatileOp>;
  constructor(root: string, fsync: boolean) {
    this.journal = new Journal(root, 'devices', codec, { fsync });
  }
  get state(): VolatileState {
    return this.journal.state;
  }
}
